import { createSecretKey, type KeyObject } from 'node:crypto'
import { SIGNATURE_HEADER_NAME, verify, VerifyOptions } from 'messagebird/lib/webhook-signature-jwt.js'

// MessageBird signs each webhook with a JWT in the `MessageBird-Signature-JWT` header, HMAC'd
// with the account's signing key: iss=MessageBird, nbf/exp (60 s apart), a unique jti, url_hash =
// SHA-256 of the full URL as sent, payload_hash = SHA-256 of the raw body (absent without a body).
// We call the SDK's `verify` and await it; its Express middleware does not wait for the result.

export const SIGNATURE_HEADER = SIGNATURE_HEADER_NAME

/** Seconds of clock difference accepted on nbf and exp (the SDK's own default). */
export const CLOCK_TOLERANCE_SECONDS = 5

export type SignatureFailure = 'malformed' | 'bad-signature' | 'expired' | 'not-yet-valid' | 'wrong-url' | 'wrong-body' | 'claims'

export class SignatureError extends Error {
  constructor (readonly failure: SignatureFailure, detail: string) {
    super(detail)
    this.name = 'SignatureError'
  }
}

export interface VerifiedSignature {
  jti: string
  /** When the token stops being accepted (exp plus the clock tolerance). */
  acceptedUntil: Date
}

export function signingKey (key: string): KeyObject {
  return createSecretKey(Buffer.from(key, 'utf8'))
}

function classify (message: string): SignatureFailure {
  if (message.includes('"exp" claim timestamp check failed')) return 'expired'
  if (message.includes('"nbf" claim timestamp check failed')) return 'not-yet-valid'
  if (message.includes('url_hash')) return 'wrong-url'
  if (message.includes('payload_hash') || message.includes('payload is not-empty')) return 'wrong-body'
  if (message.includes('signature verification failed')) return 'bad-signature'
  if (message.includes('claim')) return 'claims'
  return 'malformed'
}

/**
 * Verifies a webhook signature over the exact public URL and raw body at the given time. Requires
 * nbf, exp and jti (the SDK alone accepts tokens without nbf/exp forever). Rejects with a
 * SignatureError; replay protection (jti uniqueness) is the caller's job.
 */
export async function verifyMessageBirdSignature (input: { url: string, body: Buffer | null, token: string, key: KeyObject, now: Date }): Promise<VerifiedSignature> {
  let jti: unknown
  const options = new VerifyOptions(true, true, {
    issuer: 'MessageBird',
    algorithms: ['HS256', 'HS384', 'HS512'],
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    currentDate: input.now,
    requiredClaims: ['nbf', 'exp', 'jti']
  }, (value) => {
    jti = value
    return typeof value === 'string' && value.length > 0 && value.length <= 200
  })
  const body = input.body === null || input.body.length === 0 ? null : input.body
  try {
    await verify(input.url, body, input.token, input.key, options)
  } catch (err) {
    const message = String((err as Error)?.message ?? err)
    throw new SignatureError(message.includes('invalid jti') ? 'claims' : classify(message), message)
  }
  // Safe to read without checking again: verify() has just authenticated these bytes.
  const claims = JSON.parse(Buffer.from(input.token.split('.')[1], 'base64url').toString('utf8')) as { exp: number }
  return { jti: jti as string, acceptedUntil: new Date((claims.exp + CLOCK_TOLERANCE_SECONDS) * 1000) }
}
