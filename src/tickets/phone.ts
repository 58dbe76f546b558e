import { parsePhoneNumberFromString } from 'libphonenumber-js/max'

export class InvalidPhoneNumber extends Error {
  readonly statusCode = 400
  constructor (readonly input: string) {
    super(`"${input.slice(0, 40)}" is not a valid phone number; use international format with country code, e.g. +31612345678`)
    this.name = 'InvalidPhoneNumber'
  }
}

/**
 * Normalises a phone number to E.164. MessageBird sends MSISDNs as bare digits with the country
 * code (31612345678), so digits-only input is read as international. Uses libphonenumber's full
 * metadata so that numbers no country issues are refused.
 */
// Customers write again and again from the same numbers; parsing with full metadata is not free.
const CACHE_SIZE = 10_000
const cache = new Map<string, string>()

export function toE164 (input: string): string {
  const hit = cache.get(input)
  if (hit !== undefined) return hit
  const e164 = parseE164(input)
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string)
  cache.set(input, e164)
  return e164
}

function parseE164 (input: string): string {
  const cleaned = input.trim().replace(/[\s().-]/g, '')
  const candidate = /^\d+$/.test(cleaned) ? '+' + cleaned : cleaned.replace(/^00/, '+')
  if (!/^\+\d{6,15}$/.test(candidate)) throw new InvalidPhoneNumber(input)
  const parsed = parsePhoneNumberFromString(candidate)
  if (parsed === undefined || !parsed.isValid()) throw new InvalidPhoneNumber(input)
  return parsed.number
}

/** For logs: keeps the country code and last three digits, e.g. +3161****678. */
export function maskPhone (e164: string): string {
  if (e164.length <= 7) return '****'
  return e164.slice(0, 5) + '****' + e164.slice(-3)
}
