import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import type { WebhookReplayGuard } from '../auth/webhook-replay-guard.js'
import type { Clock } from '../clock.js'
import type { Executor } from '../db/database.js'
import { UserError } from '../errors.js'
import { pathOnly } from '../http/log-privacy.js'
import { SIGNATURE_HEADER, SignatureError, signingKey, verifyMessageBirdSignature, type SignatureFailure } from '../messaging/messagebird-signature.js'

/** Spends a verified signature's jti together with what the webhook stores (architecture invariant 2). */
export interface JtiSpender {
  /** Spends it in `trx`, the unit of work that stores the webhook; a concurrent replay that spent it first makes this throw a 401, so the unit stores nothing. */
  inUnit: (trx: Executor) => Promise<void>
  /** Spends it in a commit of its own, for a webhook that stores nothing else. */
  alone: () => Promise<void>
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the signature check: the verified jti, not yet spent. */
    webhookJti?: JtiSpender
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
 * The hook for the webhook scope: `verify` (preHandler) refuses any request without a valid,
 * unspent signature with 401 before a handler can store anything. It only reads: the handler
 * spends the jti (`req.webhookJti`) in the same commit as what it stores, so a request that fails
 * or a process that dies before that commit leaves the jti unspent, and MessageBird's retry with
 * the same token is accepted.
 */
export function messagebirdSignature (deps: SignatureDeps): { verify: preHandlerAsyncHookHandler } {
  const key = signingKey(deps.signingKey)
  const replayed = (): UserError => new UserError(401, MESSAGES.replayed, 'INVALID_SIGNATURE')

  const refuse = async (req: FastifyRequest, reply: FastifyReply, reason: keyof typeof MESSAGES, url?: string): Promise<FastifyReply> => {
    // The URL is logged because a wrong PUBLIC_URL behind a proxy is the usual cause of wrong-url;
    // without its query string, which carries the text and numbers of GET webhooks.
    req.log.warn({ reason, url: reason === 'wrong-url' && url !== undefined ? pathOnly(url) : undefined }, 'webhook refused: signature check failed')
    return await reply.code(401).send({ statusCode: 401, error: 'INVALID_SIGNATURE', message: MESSAGES[reason] })
  }

  const verify: preHandlerAsyncHookHandler = async function (req, reply) {
    const token = req.headers[SIGNATURE_HEADER]
    if (typeof token !== 'string' || token === '') return await refuse(req, reply, 'missing')
    const url = signedUrl(req, deps.publicUrl)
    try {
      const { jti, acceptedUntil } = await verifyMessageBirdSignature({ url, body: req.rawBody ?? null, token, key, now: deps.clock.now() })
      if (await deps.replay.isSpent(jti)) return await refuse(req, reply, 'replayed')
      req.webhookJti = {
        inUnit: async (trx) => {
          if (!await deps.replay.spend(trx, jti, acceptedUntil)) throw replayed()
        },
        alone: async () => {
          if (!await deps.replay.spendAlone(jti, acceptedUntil)) throw replayed()
        }
      }
    } catch (err) {
      if (err instanceof SignatureError) return await refuse(req, reply, err.failure, url)
      throw err
    }
  }

  return { verify }
}
