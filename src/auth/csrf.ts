import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

// Synchronizer tokens. The page carries an HMAC of a server-side secret (the session's
// csrf_secret, or before sign-in the random value of the login cookie), never the secret itself.

export type CsrfPurpose = 'session' | 'login'

export function newSecret (): string {
  return randomBytes(32).toString('base64url')
}

export function csrfTokenFor (secret: string, purpose: CsrfPurpose): string {
  return createHmac('sha256', secret).update(`textdesk-csrf-v1:${purpose}`).digest('base64url')
}

export function csrfTokenMatches (secret: string, purpose: CsrfPurpose, presented: unknown): boolean {
  if (typeof presented !== 'string' || presented === '') return false
  const expected = Buffer.from(csrfTokenFor(secret, purpose))
  const given = Buffer.from(presented)
  return given.length === expected.length && timingSafeEqual(given, expected)
}
