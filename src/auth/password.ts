import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'

// Hashes look like `$scrypt$ln=15,r=8,p=3$<salt>$<hash>` (base64url), so the cost can be raised
// later without invalidating stored passwords: each hash carries the parameters it was made with.

export const MIN_PASSWORD_LENGTH = 12
export const MAX_PASSWORD_LENGTH = 1024

const BLOCK_SIZE = 8
const PARALLELISM = 3
const KEY_LENGTH = 32
const SALT_LENGTH = 16

export interface HashParams { logN: number, r: number, p: number }

function derive (password: string, salt: Buffer, params: HashParams): Promise<Buffer> {
  const options: ScryptOptions = {
    N: 2 ** params.logN,
    r: params.r,
    p: params.p,
    // Node refuses above 32 MiB by default; the memory scrypt needs is 128 · N · r bytes.
    maxmem: 128 * 2 ** params.logN * params.r * 2
  }
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, KEY_LENGTH, options, (err, key) => { if (err !== null) reject(err); else resolve(key) })
  })
}

export function defaultParams (logN: number): HashParams {
  return { logN, r: BLOCK_SIZE, p: PARALLELISM }
}

export async function hashPassword (password: string, params: HashParams): Promise<string> {
  const salt = randomBytes(SALT_LENGTH)
  const key = await derive(password, salt, params)
  return `$scrypt$ln=${params.logN},r=${params.r},p=${params.p}$${salt.toString('base64url')}$${key.toString('base64url')}`
}

interface Parsed { params: HashParams, salt: Buffer, key: Buffer }

function parse (stored: string): Parsed | null {
  const m = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/.exec(stored)
  if (m === null) return null
  const params = { logN: Number(m[1]), r: Number(m[2]), p: Number(m[3]) }
  // Bounds keep a corrupted or hostile row from turning one sign-in into a memory bomb.
  if (params.logN < 10 || params.logN > 20 || params.r < 1 || params.r > 32 || params.p < 1 || params.p > 16) return null
  return { params, salt: Buffer.from(m[4], 'base64url'), key: Buffer.from(m[5], 'base64url') }
}

/** Constant-time comparison; false for a malformed hash rather than an exception. */
export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const parsed = parse(stored)
  if (parsed === null || parsed.key.length !== KEY_LENGTH) return false
  const key = await derive(password, parsed.salt, parsed.params)
  return timingSafeEqual(key, parsed.key)
}

/** True when a hash was made with weaker parameters than the current ones. */
export function needsRehash (stored: string, current: HashParams): boolean {
  const parsed = parse(stored)
  if (parsed === null) return true
  return parsed.params.logN < current.logN || parsed.params.r < current.r || parsed.params.p < current.p
}

/** A reason the password is not acceptable, or null. */
export function passwordProblem (password: string): string | null {
  const length = [...password].length
  if (length < MIN_PASSWORD_LENGTH) return `The password is too short (${length} characters): use at least ${MIN_PASSWORD_LENGTH}. A few unrelated words make a strong one.`
  if (length > MAX_PASSWORD_LENGTH) return `The password is too long: use at most ${MAX_PASSWORD_LENGTH} characters.`
  if (password.trim() !== password) return 'The password must not start or end with spaces.'
  return null
}
