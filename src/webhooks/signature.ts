import type { FastifyReply, FastifyRequest, onResponseAsyncHookHandler, preHandlerAsyncHookHandler } from 'fastify'
import type { WebhookReplayGuard } from '../auth/webhook-replay-guard.js'
import type { Clock } from '../clock.js'
import { SIGNATURE_HEADER, SignatureError, signingKey, verifyMessageBirdSignature, type SignatureFailure } from '../messaging/messagebird-signature.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The jti of a verified webhook signature, spent unless the request fails. */
    webhookJti?: string
  }
}

export interface SignatureDeps {
  signingKey: string
  /** PUBLIC_URL: the base URL MessageBird calls, when it differs from what this process sees. */
  publicUrl: string | null
  clock: Clock
  replay: WebhookReplayGuard
}

const MESSAGES: Record<SignatureFailure | 'missing' | 'replayed', string> = {
  missing: 'The MessageBird-Signature-JWT header is missing.',
  malformed: 'The MessageBird-Signature-JWT header is not a valid token.',
  'bad-signature': 'The MessageBird-Signature-JWT signature does not match the signing key.',
  expired: 'The MessageBird-Signature-JWT token has expired.',
  'not-yet-valid': 'The MessageBird-Signature-JWT token is not valid yet.',
  'wrong-url': 'The MessageBird-Signature-JWT token was issued for a different URL.',
  'wrong-body': 'The MessageBird-Signature-JWT token does not match the request body.',
  claims: 'The MessageBird-Signature-JWT token lacks a required claim.',
  replayed: 'The MessageBird-Signature-JWT token has already been used.'
}

/** The URL MessageBird hashed: scheme, host with port, path and the query exactly as sent. */
export function signedUrl (req: FastifyRequest, publicUrl: string | null): string {
  return publicUrl !== null ? publicUrl + req.url : `${req.protocol}://${req.host}${req.url}`
}

/**
 * Hooks for the webhook scope: `verify` (preHandler) refuses any request without a valid,
 * unused signature with 401 before a handler can store anything; `release` (onResponse) hands
 * the jti back when the request was not acknowledged.
 */
export function messagebirdSignature (deps: SignatureDeps): { verify: preHandlerAsyncHookHandler, release: onResponseAsyncHookHandler } {
  const key = signingKey(deps.signingKey)

  const refuse = async (req: FastifyRequest, reply: FastifyReply, reason: keyof typeof MESSAGES, url?: string): Promise<FastifyReply> => {
    // The URL is logged because a wrong PUBLIC_URL behind a proxy is the usual cause of wrong-url.
    req.log.warn({ reason, url: reason === 'wrong-url' ? url : undefined }, 'webhook refused: signature check failed')
    return await reply.code(401).send({ statusCode: 401, error: 'INVALID_SIGNATURE', message: MESSAGES[reason] })
  }

  const verify: preHandlerAsyncHookHandler = async function (req, reply) {
    const token = req.headers[SIGNATURE_HEADER]
    if (typeof token !== 'string' || token === '') return await refuse(req, reply, 'missing')
    const url = signedUrl(req, deps.publicUrl)
    try {
      const signature = await verifyMessageBirdSignature({ url, body: req.rawBody ?? null, token, key, now: deps.clock.now() })
      if (!await deps.replay.claim(signature.jti, signature.acceptedUntil)) return await refuse(req, reply, 'replayed')
      req.webhookJti = signature.jti
    } catch (err) {
      if (err instanceof SignatureError) return await refuse(req, reply, err.failure, url)
      throw err
    }
  }

  const release: onResponseAsyncHookHandler = async function (req, reply) {
    if (req.webhookJti !== undefined && (reply.statusCode < 200 || reply.statusCode >= 300)) {
      await deps.replay.release(req.webhookJti)
    }
  }

  return { verify, release }
}
