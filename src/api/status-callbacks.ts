import { createHmac, randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import type { Db, Executor } from '../db/database.js'
import type { Dispatch, Message, OutboxRow } from '../db/schema.js'
import { backoffMs } from '../messaging/backoff.js'
import { listDispatchMessages } from '../messaging/dispatch-repository.js'
import { findMessage } from '../messaging/message-repository.js'
import type { FailoverService } from '../messaging/failover.js'
import { deleteOutbox, insertOutbox, rescheduleOutbox } from '../messaging/outbox-repository.js'
import type { OutboxWorker } from '../messaging/outbox-worker.js'
import type { StatusService } from '../messaging/status-service.js'
import { dispatchReport, linker, messageView, type LinkFn } from './api-views.js'

export const SIGNATURE_HEADER = 'textdesk-signature'
export const TIMESTAMP_HEADER = 'textdesk-timestamp'
export const DELIVERY_HEADER = 'textdesk-delivery-id'
export const EVENT_HEADER = 'textdesk-event'

/** `sha256=` + hex HMAC-SHA256 of `${timestamp}.${body}`: what a receiver recomputes to trust a callback. */
export function signCallback (secret: string, timestamp: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')
}

interface CallbackPayload { delivery_id: string, event: string, body: string }

/**
 * Signed status callbacks for what the notifications API sent: every status change of a
 * notification message, and the end of every API dispatch. Each event is an outbox row written in
 * the transaction that changed the status, so none is lost; the worker POSTs it and retries with
 * exponential backoff while the receiver is down. Delivery is at least once: the delivery id is the
 * same on every attempt, for the receiver to drop repeats.
 */
export class StatusCallbacks {
  private readonly link: LinkFn
  private wake: () => void = () => {}

  constructor (private readonly deps: {
    db: Db
    clock: Clock
    config: Pick<Config, 'statusCallbackUrl' | 'statusCallbackSecret' | 'statusCallback' | 'publicUrl'>
    log: FastifyBaseLogger
  }) {
    this.link = linker(deps.config.publicUrl)
  }

  get enabled (): boolean {
    return this.deps.config.statusCallbackUrl !== null && this.deps.config.statusCallbackSecret !== null
  }

  attach (parts: { status: StatusService, failover: FailoverService, worker: OutboxWorker }): void {
    // Always handled, so rows queued before STATUS_CALLBACK_URL was unset are cleared, not stuck.
    parts.worker.register('status_callback', async (row) => await this.deliver(row))
    this.wake = () => parts.worker.wake()
    if (!this.enabled) return
    parts.status.addListener(async (trx, message) => await this.onMessage(trx, message))
    parts.failover.onDispatchStatus(async (trx, dispatch, _status, now) => await this.onDispatch(trx, dispatch, now))
  }

  private async onMessage (trx: Executor, message: Message): Promise<void> {
    if (message.kind !== 'notification') return
    const current = await findMessage(trx, message.id)
    if (current === undefined) return
    const now = this.deps.clock.now().toISOString()
    await this.enqueue(trx, 'message.status', { event: 'message.status', timestamp: now, ...messageView(current, this.link) }, { messageId: current.id }, now)
  }

  private async onDispatch (trx: Executor, dispatch: Dispatch, now: string): Promise<void> {
    if (dispatch.api_key_id === null) return
    const messages = await listDispatchMessages(trx, dispatch.id)
    await this.enqueue(trx, 'dispatch.status', { event: 'dispatch.status', timestamp: now, ...dispatchReport(dispatch, messages, this.link) }, { dispatchId: dispatch.id }, now)
  }

  private async enqueue (trx: Executor, event: string, body: unknown, ref: { messageId?: string, dispatchId?: string }, now: string): Promise<void> {
    const payload: CallbackPayload = { delivery_id: randomUUID(), event, body: JSON.stringify(body) }
    await insertOutbox(trx, { kind: 'status_callback', ...ref, payload, runAt: now }, now)
    // Listeners run inside the status transaction; the row is visible once it commits.
    setImmediate(() => this.wake())
  }

  private async deliver (row: OutboxRow): Promise<void> {
    const { db, clock, config, log } = this.deps
    const url = config.statusCallbackUrl
    const secret = config.statusCallbackSecret
    if (url === null || secret === null || row.payload === null) {
      await deleteOutbox(db, row.id)
      return
    }
    const payload = JSON.parse(row.payload) as CallbackPayload
    const timestamp = String(Math.floor(clock.now().getTime() / 1000))
    const attempt = row.attempts + 1
    let failure: string | null = null
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Textdesk-StatusCallbacks/1',
          [SIGNATURE_HEADER]: signCallback(secret, timestamp, payload.body),
          [TIMESTAMP_HEADER]: timestamp,
          [DELIVERY_HEADER]: payload.delivery_id,
          [EVENT_HEADER]: payload.event,
          'textdesk-attempt': String(attempt)
        },
        body: payload.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(config.statusCallback.timeoutMs)
      })
      await res.body?.cancel()
      if (res.status < 200 || res.status >= 300) failure = `receiver answered HTTP ${res.status}`
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } }
      failure = e.name === 'TimeoutError' ? `no answer within ${config.statusCallback.timeoutMs} ms` : `could not reach the receiver (${e.cause?.code ?? e.message})`
    }
    if (failure === null) {
      await deleteOutbox(db, row.id)
      return
    }
    if (attempt >= config.statusCallback.maxAttempts) {
      await deleteOutbox(db, row.id)
      log.error({ deliveryId: payload.delivery_id, event: payload.event, attempts: attempt, failure }, 'status callback given up')
      return
    }
    const retryAt = new Date(clock.now().getTime() + backoffMs(attempt, { baseMs: config.statusCallback.backoffBaseMs, maxMs: config.statusCallback.backoffMaxMs })).toISOString()
    await rescheduleOutbox(db, row.id, retryAt, failure)
    log.warn({ deliveryId: payload.delivery_id, attempt, retryAt, failure }, 'status callback failed; will retry')
  }
}
