// The SDK ships no types for its webhook signature module; this covers the part we call.
declare module 'messagebird/lib/webhook-signature-jwt.js' {
  import type { KeyObject } from 'node:crypto'

  export interface JwtVerifyOptions {
    issuer?: string
    algorithms?: string[]
    clockTolerance?: number
    currentDate?: Date
    requiredClaims?: string[]
  }

  export class VerifyOptions {
    constructor (validateUrl?: boolean, validatePayload?: boolean, jwtVerifyOptions?: JwtVerifyOptions, jwtVerifyJti?: (jti: unknown) => boolean)
    validateUrl: boolean
    validatePayload: boolean
    jwtVerifyOptions: JwtVerifyOptions
    jwtVerifyJti: (jti: unknown) => boolean
  }

  export function verify (url: string, payload: Buffer | string | null, jwt: string, sk: KeyObject | Uint8Array, opts?: VerifyOptions): Promise<true>
  export const SIGNATURE_HEADER_NAME: 'messagebird-signature-jwt'
}
