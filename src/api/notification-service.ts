import { insertMedia } from '../media/media-repository.js'
import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import { isUniqueViolation, type Db, type Executor, type TxExecutor } from '../db/database.js'
import type { Channel, QuietHoursPolicy } from '../db/schema.js'
import { notFound, UserError } from '../errors.js'
import type { EventBus } from '../events/bus.js'
import type { FailoverService, StepSpec } from '../messaging/failover.js'
import { findDispatch } from '../messaging/dispatch-repository.js'
import { findMessage } from '../messaging/message-repository.js'
import { preview, type OutboundQueue } from '../messaging/outbound.js'
import { findConversation, findOrOpenTicket, type Conversation } from '../tickets/conversations.js'
import { maskPhone } from '../tickets/phone.js'
import { findApiMessageKey, insertApiMessage } from './api-message-repository.js'
import type { MessageInput } from './api-validation.js'
import { dispatchPath, dispatchView, linker, messagePath, messageView, type LinkFn } from './api-views.js'
import * as idempotency from './idempotency-repository.js'

export const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000

export interface ApiAnswer { statusCode: number, body: Record<string, unknown>, replayed: boolean }
export interface IdempotencyRequest { key: string, requestHash: string }

/** What identifies "the same request" for an Idempotency-Key: method, path and the body with keys sorted. */
export function requestHash (method: string, path: string, body: unknown): string {
  return createHash('sha256').update(`${method} ${path}\n${canonicalJson(body)}`).digest('hex')
}

function canonicalJson (v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`
  }
  return JSON.stringify(v) ?? 'null'
}

/** A business system's message waits out the recipient's quiet hours unless it says it is urgent. */
const quietHoursFor = (urgent: boolean): QuietHoursPolicy => urgent ? 'urgent' : 'hold'

const optedOut = (field: string, address: string): UserError => new UserError(409,
  `${address} has opted out (texted STOP) and gets no messages until they text START. Nothing was sent or stored.`,
  'RECIPIENT_OPTED_OUT', [{ field, message: 'the recipient has opted out' }])

/**
 * Proactive notifications from a business system. Each message lands on the customer's open
 * ticket (or opens one, without the inbound confirmation), so their answer joins the thread the
 * agent sees. The send, the ticket and the idempotency record commit in one transaction.
 */
export class NotificationService {
  private readonly link: LinkFn

  constructor (private readonly deps: {
    db: Db
    clock: Clock
    config: Pick<Config, 'publicUrl'>
    failover: FailoverService
    outbound: OutboundQueue
    log: FastifyBaseLogger
    wake: () => void
    /** Live updates for agents' inbox pages; published when the request's transaction commits. */
    events?: EventBus
  }) {
    this.link = linker(deps.config.publicUrl)
  }

  async sendMessage (apiKeyId: number, input: MessageInput, idem: IdempotencyRequest | null): Promise<ApiAnswer> {
    return await this.once(apiKeyId, idem, async (trx, now) => {
      const { ticketId } = await this.ticketFor(trx, [{ channel: input.channel, address: input.to, field: 'to' }], input.text, now)
      const queued = await this.deps.outbound.queue(trx, { ticketId, kind: 'notification', channel: input.channel, to: input.to, body: input.text, quietHours: quietHoursFor(input.urgent) }, now)
      await insertApiMessage(trx, queued.messageId, apiKeyId)
      if (input.mediaUrl !== null) await insertMedia(trx, queued.messageId, [{ kind: 'image', url: input.mediaUrl, caption: null, contentType: null }], now)
      this.deps.log.info({ messageId: queued.messageId, ticketId, to: maskPhone(input.to), apiKeyId }, 'notification queued')
      return {
        statusCode: 202,
        body: { message_uuid: queued.messageId, status: queued.status, ticket_id: ticketId, _links: { self: { href: this.link(messagePath(queued.messageId)) } } }
      }
    })
  }

  async startDispatch (apiKeyId: number, steps: StepSpec[], idem: IdempotencyRequest | null, urgent = false): Promise<ApiAnswer> {
    return await this.once(apiKeyId, idem, async (trx, now) => {
      const { ticketId } = await this.ticketFor(trx, steps.map((s, i) => ({ channel: s.channel, address: s.to, field: `workflow[${i}].to.${s.channel === 'messenger' ? 'id' : 'number'}` })), steps[0].body, now)
      const started = await this.deps.failover.start(trx, { ticketId, kind: 'notification', apiKeyId, steps, quietHours: quietHoursFor(urgent) }, now)
      this.deps.log.info({ dispatchId: started.dispatchId, ticketId, steps: steps.length, apiKeyId }, 'dispatch started')
      return {
        statusCode: 202,
        body: { dispatch_uuid: started.dispatchId, status: started.status, ticket_id: ticketId, _links: { self: { href: this.link(dispatchPath(started.dispatchId)) } } }
      }
    })
  }

  /**
   * A message sent through this API, for the key that sent it (or whose dispatch sent it). Any
   * other key gets the same 404 as for an id that does not exist, so ids reveal nothing.
   */
  async getMessage (apiKeyId: number, id: string) {
    const m = await findMessage(this.deps.db, id)
    // Only what came in through this API: agents' replies are not the business system's to read.
    if (m === undefined || m.kind !== 'notification' || await this.ownerOf(m) !== apiKeyId) throw notFound(`Message ${id.slice(0, 40)}`)
    return messageView(m, this.link)
  }

  /** A dispatch, for the key that started it; 404 for any other, as for an unknown id. */
  async getDispatch (apiKeyId: number, id: string) {
    const v = await this.deps.failover.find(id)
    if (v === undefined || v.dispatch.api_key_id !== apiKeyId) throw notFound(`Dispatch ${id.slice(0, 40)}`)
    return dispatchView(v, this.link)
  }

  private async ownerOf (m: { id: string, dispatch_id: string | null }): Promise<number | undefined> {
    if (m.dispatch_id === null) return await findApiMessageKey(this.deps.db, m.id)
    return (await findDispatch(this.deps.db, m.dispatch_id))?.api_key_id ?? undefined
  }

  /**
   * Runs `action` at most once per (API key, Idempotency-Key) within 24 hours: a repeat with the same
   * request gets the stored answer and sends nothing; a repeat with a different request is refused.
   * Only accepted requests are remembered, so a refused one can be corrected and retried with its key.
   */
  private async once (apiKeyId: number, idem: IdempotencyRequest | null, action: (trx: Executor, now: string) => Promise<{ statusCode: number, body: Record<string, unknown> }>): Promise<ApiAnswer> {
    for (let attempt = 1; ; attempt++) {
      try {
        const answer = await this.deps.db.transaction().execute(async (trx): Promise<ApiAnswer> => {
          const now = this.deps.clock.now()
          const cutoff = new Date(now.getTime() - IDEMPOTENCY_WINDOW_MS).toISOString()
          if (idem !== null) {
            const previous = await idempotency.findIdempotencyRecord(trx, apiKeyId, idem.key)
            if (previous !== undefined && previous.created_at >= cutoff) {
              if (previous.request_hash !== idem.requestHash) {
                throw new UserError(422, `The Idempotency-Key "${idem.key.slice(0, 80)}" was already used with a different request in the last 24 hours. Use a new key for a new request.`, 'IDEMPOTENCY_KEY_REUSED', [{ field: 'Idempotency-Key', message: 'already used with a different request' }])
              }
              return { statusCode: previous.status_code, body: JSON.parse(previous.response_body) as Record<string, unknown>, replayed: true }
            }
            await idempotency.deleteIdempotencyRecordsBefore(trx, cutoff)
          }
          const result = await action(trx, now.toISOString())
          if (idem !== null) {
            await idempotency.insertIdempotencyRecord(trx, { apiKeyId, key: idem.key, requestHash: idem.requestHash, statusCode: result.statusCode, responseBody: JSON.stringify(result.body) }, now.toISOString())
          }
          return { ...result, replayed: false }
        })
        if (!answer.replayed) this.deps.wake()
        return answer
      } catch (err) {
        // A concurrent request with the same Idempotency-Key won the race: running the whole
        // transaction again sees its result. (The customer's ticket never raises: see
        // tickets/conversations.ts.)
        if (!isUniqueViolation(err) || attempt >= 3) throw err
      }
    }
  }

  /**
   * The ticket for a notification: the open ticket of the customer who owns one of the addresses
   * (their phone or one of their extra addresses), or a new one, found or opened by the tickets
   * room's one implementation. Refuses when any address belongs to a customer who opted out.
   */
  private async ticketFor (trx: Executor, addresses: Array<{ channel: Channel, address: string, field: string }>, text: string, now: string): Promise<{ ticketId: number }> {
    let owner: { conversation: Conversation, address: string } | undefined
    for (const a of addresses) {
      const conversation = await findConversation(trx, a.address)
      if (conversation === undefined) continue
      if (conversation.optedOutAt !== null) throw optedOut(a.field, a.address)
      owner ??= { conversation, address: a.address }
    }
    const target = owner ?? { conversation: undefined, address: (addresses.find((a) => a.channel === 'sms') ?? addresses[0]).address }
    const found = await findOrOpenTicket(trx, target.address, target.conversation, now, { preview: preview(text), direction: 'outbound', sender: 'api' })
    // A contact a concurrent writer created after the loop above read nothing may have opted out.
    if (found.optedOutAt !== null) throw optedOut(addresses.find((a) => a.address === target.address)?.field ?? 'to', target.address)
    await this.deps.events?.publishInTransaction(trx as TxExecutor, { ticketId: found.ticketId, change: found.newTicket ? 'created' : 'message' })
    return { ticketId: found.ticketId }
  }
}
