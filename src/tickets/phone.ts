import { parsePhoneNumberFromString, type CountryCode, type PhoneNumber } from 'libphonenumber-js/max'

export class InvalidPhoneNumber extends Error {
  readonly statusCode = 400
  constructor (readonly input: string) {
    super(`"${input.slice(0, 40)}" is not a valid phone number; use international format with country code, e.g. +31612345678`)
    this.name = 'InvalidPhoneNumber'
  }
}

// Customers write again and again from the same numbers; parsing with full metadata is not free.
const CACHE_SIZE = 10_000
const strictCache = new Map<string, string>()
const providerCache = new Map<string, string>()

/**
 * Normalises a number a person typed (an agent, an API client) to E.164. MessageBird-style bare
 * digits (31612345678) are read as international. Full metadata, so numbers that no country
 * issues are refused.
 */
export function toE164 (input: string): string {
  return cached(strictCache, input, (n) => n.isValid())
}

/**
 * Normalises a sender number reported by the SMS provider. The provider has just received a text
 * from it, so it exists even when our numbering metadata does not know its range yet (new ranges
 * appear faster than library releases): refusing it would lose the customer's message. Only the
 * shape is checked: a known country code and a possible length.
 */
export function senderToE164 (input: string): string {
  return cached(providerCache, input, (n) => n.isPossible())
}

function cached (cache: Map<string, string>, input: string, accept: (n: PhoneNumber) => boolean): string {
  const hit = cache.get(input)
  if (hit !== undefined) return hit
  const e164 = parseE164(input, accept)
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string)
  cache.set(input, e164)
  return e164
}

function parseE164 (input: string, accept: (n: PhoneNumber) => boolean): string {
  const cleaned = input.trim().replace(/[\s().-]/g, '')
  const candidate = /^\d+$/.test(cleaned) ? '+' + cleaned : cleaned.replace(/^00/, '+')
  if (!/^\+\d{6,15}$/.test(candidate)) throw new InvalidPhoneNumber(input)
  const parsed = parsePhoneNumberFromString(candidate)
  if (parsed === undefined || !accept(parsed)) throw new InvalidPhoneNumber(input)
  return parsed.number
}

/**
 * A number as a person types it into search, in E.164, or null when it is not one: `+31 6 1234
 * 5678`, `0031…`, bare international digits (`31612345678`), or a national number of
 * `defaultCountry` (`0612345678`, `06-12 34 56 78` for NL). Only its shape is checked (a search
 * finds what is stored; it need not refuse a number our metadata does not know yet).
 */
export function typedNumberToE164 (input: string, defaultCountry: CountryCode | null): string | null {
  const cleaned = input.trim().replace(/[\s().-]/g, '')
  if (!/^(\+|00)?\d{4,15}$/.test(cleaned)) return null
  const international = (digits: string): string | null => {
    const parsed = parsePhoneNumberFromString('+' + digits)
    return parsed?.isPossible() === true ? parsed.number : null
  }
  if (cleaned.startsWith('+')) return international(cleaned.slice(1))
  if (cleaned.startsWith('00')) return international(cleaned.slice(2))
  if (defaultCountry !== null) {
    const national = parsePhoneNumberFromString(cleaned, defaultCountry)
    if (national?.isValid() === true) return national.number
  }
  return cleaned.length >= 8 ? international(cleaned) : null
}

/** For logs: keeps the country code and last three digits, e.g. +3161****678. */
export function maskPhone (e164: string): string {
  if (e164.length <= 7) return '****'
  return e164.slice(0, 5) + '****' + e164.slice(-3)
}
