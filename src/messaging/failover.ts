import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import type { Db, Executor } from '../db/database.js'
import type { Channel, Dispatch, DispatchStatus, Message, MessageKind, MessageStatus, OutboxRow, QuietHoursPolicy } from '../db/schema.js'
import { invalid } from '../errors.js'
import { insertMedia } from '../media/media-repository.js'
import { findMessage } from './message-repository.js'
import * as repo from './dispatch-repository.js'
import { optOutBlock, type OutboundQueue } from './outbound.js'
import { claimDue, deleteOutbox, deleteOutboxFor, insertOutbox } from './outbox-repository.js'
import type { OutboxWorker } from './outbox-worker.js'
import { isFailure, meetsCondition } from './status.js'
import type { TicketPort } from './ports.js'
import type { StatusService } from './status-service.js'

// The limits of Nexmo's Dispatch API `failover` template, which this engine reproduces.
export const MIN_EXPIRY_SECONDS = 15
export const MAX_EXPIRY_SECONDS = 86_400
export const MAX_STEPS = 10
// Deadline wake-ups are grouped into buckets this wide, so 1,000 deadlines do not need 1,000 timers.
const WAKE_BUCKET_MS = 10
const DEADLINE_BATCH = 100
const DEADLINE_LEASE_MS = 30_000

export type Condition = 'delivered' | 'read'

/** What each channel can report back: SMS delivery reports stop at `delivered`; WhatsApp also reports `read`. */
export const CONDITIONS_BY_CHANNEL: Record<Channel, readonly Condition[]> = {
  sms: ['delivered'],
  mms: ['delivered'],
  whatsapp: ['delivered', 'read'],
  messenger: ['delivered', 'read']
}

/** Why a channel cannot wait for `read`, in words for the 422. */
const NO_READ_REASON: Partial<Record<Channel, string>> = {
  sms: 'SMS delivery reports stop at delivered (a phone never reports that a text was read)',
  mms: 'MMS delivery reports stop at delivered (a phone never reports that a message was read)'
}

export interface StepSpec {
  channel: Channel
  to: string
  /** The sender the caller chose (an originator or a channel id, checked by messaging/senders.ts); null: the default. */
  from?: string | null
  body: string
  /** mms: the https URL of the image it sends (MessageBird MMS API `mediaUrls`); `body` is its optional text. */
  mediaUrl?: string | null
  /** Required on every step but the last. On the last step it bounds how long the dispatch waits. */
  failover?: { condition: Condition, expirySeconds: number } | null
}

export interface DispatchInput {
  ticketId: number
  kind: MessageKind
  agentId?: number | null
  apiKeyId?: number | null
  steps: StepSpec[]
  /** Whether quiet hours hold the first step; later steps (handovers) are held unless this is 'urgent'. */
  quietHours?: QuietHoursPolicy | null
}

export interface Problem { field: string, message: string }

/** Called in the transaction that ended a dispatch, so a status callback commits with it. */
export type DispatchListener = (trx: Executor, dispatch: Dispatch, status: DispatchStatus, now: string) => Promise<void>

/** Workflow rules for one step, on input that may be incomplete; field names follow the Dispatch request. */
export function stepProblems (step: { channel?: Channel, failover?: { condition?: unknown, expirySeconds?: unknown } | null }, index: number, isLast: boolean): Problem[] {
  const at = `workflow[${index}].failover`
  const problems: Problem[] = []
  const f = step.failover
  if (f === undefined || f === null) {
    if (!isLast) problems.push({ field: at, message: 'is required on every step but the last: give condition_status and expiry_time, or the next step could never start' })
    return problems
  }
  if (f.condition !== 'delivered' && f.condition !== 'read') {
    problems.push({ field: `${at}.condition_status`, message: 'must be "delivered" or "read"' })
  } else if (step.channel !== undefined && !CONDITIONS_BY_CHANNEL[step.channel].includes(f.condition)) {
    const why = NO_READ_REASON[step.channel] ?? `it only reports ${CONDITIONS_BY_CHANNEL[step.channel].join(' and ')}`
    problems.push({ field: `${at}.condition_status`, message: `"${f.condition}" cannot be used with ${step.channel}: ${why}. Use "delivered"` })
  }
  const e = f.expirySeconds
  if (typeof e !== 'number' || !Number.isInteger(e) || e < MIN_EXPIRY_SECONDS || e > MAX_EXPIRY_SECONDS) {
    problems.push({ field: `${at}.expiry_time`, message: `must be a whole number of seconds from ${MIN_EXPIRY_SECONDS} to ${MAX_EXPIRY_SECONDS}${typeof e === 'number' ? ` (got ${e})` : ''}` })
  }
  return problems
}

export function workflowProblems (steps: StepSpec[]): Problem[] {
  if (steps.length === 0) return [{ field: 'workflow', message: 'must have at least one step' }]
  if (steps.length > MAX_STEPS) return [{ field: 'workflow', message: `may have at most ${MAX_STEPS} steps` }]
  return steps.flatMap((s, i) => stepProblems({ channel: s.channel, failover: s.failover === undefined || s.failover === null ? null : { condition: s.failover.condition, expirySeconds: s.failover.expirySeconds } }, i, i === steps.length - 1))
}

/**
 * Failover workflows on the transactional outbox. A step is a queued message plus, once the
 * provider has accepted it, a `failover_deadline` outbox row. All state is in the database, so a
 * restart resumes where it stopped and a deadline that passed while the service was down fires at
 * the worker's first poll. Every decision happens inside the transaction that caused it: the status
 * change of a step's message, or the deadline row.
 */
export class FailoverService {
  private readonly listeners: DispatchListener[] = []
  private readonly wakeTimers = new Map<number, NodeJS.Timeout>()
  private wake: () => void = () => {}
  private handedOver: () => void = () => {}
  private firing: Promise<void> | null = null
  private fireAgain = false
  private closed = false

  constructor (private readonly deps: { db: Db, clock: Clock, status: StatusService, outbound: OutboundQueue, tickets: TicketPort, log: FastifyBaseLogger }) {
    deps.status.addListener(async (trx, message, status, now) => await this.onMessageStatus(trx, message, status, now))
  }

  /** Deadlines are outbox rows; new steps are sends the worker should pick up right away. */
  attach (worker: OutboxWorker): void {
    worker.register('failover_deadline', async (row) => await this.handleDeadline(row))
    this.wake = () => worker.wake()
  }

  /** Stops the deadline timers; the deadlines themselves stay in the outbox for the next start. */
  async close (): Promise<void> {
    this.closed = true
    for (const timer of this.wakeTimers.values()) clearTimeout(timer)
    this.wakeTimers.clear()
    await this.firing
  }

  /** Told of each step handed over to the next one (metrics). */
  onHandover (fn: () => void): void {
    this.handedOver = fn
  }

  onDispatchStatus (fn: DispatchListener): void {
    this.listeners.push(fn)
  }

  /** Creates the dispatch and queues its first step in `trx`; the caller wakes the worker after commit. */
  async start (trx: Executor, input: DispatchInput, now: string): Promise<{ dispatchId: string, messageId: string, status: DispatchStatus }> {
    const problems = workflowProblems(input.steps)
    if (problems.length > 0) throw invalid('The workflow is not valid', problems)
    const id = randomUUID()
    await repo.insertDispatch(trx, { id, template: 'failover', ticketId: input.ticketId, apiKeyId: input.apiKeyId ?? null, now }, input.steps.map((s) => ({
      channel: s.channel,
      to: s.to,
      from: s.from ?? null,
      body: s.body,
      mediaUrl: s.mediaUrl ?? null,
      condition: s.failover?.condition ?? null,
      expirySeconds: s.failover?.expirySeconds ?? null
    })))
    const dispatch = await repo.findDispatch(trx, id) as Dispatch
    const started = await this.startStep(trx, dispatch, 0, { kind: input.kind, agentId: input.agentId ?? null, quietHours: input.quietHours ?? null }, now)
    return { dispatchId: id, messageId: started.messageId, status: started.dispatchStatus }
  }

  /** A dispatch with its steps and the current state of each step's message. */
  async find (id: string) {
    const dispatch = await repo.findDispatch(this.deps.db, id)
    if (dispatch === undefined) return undefined
    const [steps, messages] = await Promise.all([repo.listSteps(this.deps.db, id), repo.listDispatchMessages(this.deps.db, id)])
    return { dispatch, steps, messages }
  }

  private async onMessageStatus (trx: Executor, message: Message, status: MessageStatus, now: string): Promise<void> {
    if (message.dispatch_id === null) return
    const found = await repo.findStepWithDispatch(trx, { messageId: message.id })
    // A report for a step that already handed over (or already met its condition) is recorded by
    // the status service and changes nothing here.
    if (found === undefined || found.step.status !== 'active' || found.dispatch.status !== 'pending') return
    const { step, dispatch } = found

    // The last step without a failover object simply waits for delivery, as in Dispatch.
    const condition = step.condition_status ?? 'delivered'
    // Rows are locked in the order the deadline path locks them (its outbox row, the step, the
    // dispatch), so a report and a deadline of one step never deadlock on PostgreSQL; whichever
    // commits first ends the step, and the other finds it ended.
    if (meetsCondition(status, condition)) {
      await deleteOutboxFor(trx, 'failover_deadline', { dispatchId: dispatch.id })
      if (!await repo.endActiveStep(trx, dispatch.id, step.position, { status: 'met', ended_at: now })) return
      await this.finish(trx, dispatch, 'completed', now)
      return
    }
    if (isFailure(status)) {
      await deleteOutboxFor(trx, 'failover_deadline', { dispatchId: dispatch.id })
      if (!await repo.endActiveStep(trx, dispatch.id, step.position, { status: 'failed', ended_at: now })) return
      await this.startStep(trx, dispatch, step.position + 1, originOf(message), now)
      this.wakeAfterCommit()
      return
    }
    // The expiry counts from the provider's acceptance of the message, whatever status reports it
    // first (a fast `delivered` can overtake `sent` when the condition is `read`).
    if (step.deadline_at === null && step.expiry_seconds !== null && status !== 'queued' && status !== 'sending') {
      const deadline = new Date(Date.parse(now) + step.expiry_seconds * 1000).toISOString()
      await repo.updateStep(trx, dispatch.id, step.position, { deadline_at: deadline })
      await insertOutbox(trx, { kind: 'failover_deadline', dispatchId: dispatch.id, payload: { position: step.position }, runAt: deadline }, now)
      this.wakeAt(deadline)
    }
  }

  /** The worker's handler for a deadline row (after a restart, or when the timer was not first). */
  private async handleDeadline (row: OutboxRow): Promise<void> {
    const handedOver = await this.deps.db.transaction().execute(async (trx) => await this.expire(trx, row))
    if (handedOver) this.wake()
  }

  /** Removes a deadline row and, if its step is still waiting for its condition, hands over. */
  private async expire (trx: Executor, row: OutboxRow): Promise<boolean> {
    await deleteOutbox(trx, row.id)
    const position = (JSON.parse(row.payload ?? '{}') as { position?: number }).position
    if (row.dispatch_id === null || typeof position !== 'number') return false
    const found = await repo.findStepWithDispatch(trx, { dispatchId: row.dispatch_id, position })
    if (found === undefined || found.dispatch.status !== 'pending' || found.step.status !== 'active') return false
    const { step, dispatch } = found
    const now = this.deps.clock.now().toISOString()
    const message = step.message_id === null ? undefined : await findMessage(trx, step.message_id)
    if (message !== undefined && meetsCondition(message.status, step.condition_status ?? 'delivered')) {
      if (await repo.endActiveStep(trx, dispatch.id, step.position, { status: 'met', ended_at: now })) await this.finish(trx, dispatch, 'completed', now)
      return false
    }
    if (!await repo.endActiveStep(trx, dispatch.id, step.position, { status: 'expired', ended_at: now })) return false
    await this.startStep(trx, dispatch, step.position + 1, originOf(message), now)
    this.deps.log.info({ dispatchId: dispatch.id, step: step.position, lateMs: Date.parse(now) - Date.parse(step.deadline_at ?? now) }, 'failover step expired')
    return true
  }

  /**
   * Queues the step at `position`, or ends the dispatch as failed when there is none. An opted-out
   * customer ends it at once: STOP covers every channel, so trying the next address would be wrong.
   */
  private async startStep (trx: Executor, dispatch: Dispatch, position: number, origin: Origin, now: string): Promise<{ messageId: string, dispatchStatus: DispatchStatus }> {
    const step = await repo.findStep(trx, dispatch.id, position)
    if (step === undefined) {
      await this.finish(trx, dispatch, 'failed', now)
      return { messageId: '', dispatchStatus: 'failed' }
    }
    const optedOutAt = await this.deps.tickets.optedOutAt(trx, dispatch.ticket_id)
    const queued = await this.deps.outbound.queue(trx, {
      ticketId: dispatch.ticket_id,
      kind: origin.kind,
      channel: step.channel,
      to: step.to_address,
      body: step.body,
      from: step.from_address,
      agentId: origin.agentId,
      dispatchId: dispatch.id,
      blockedReason: optOutBlock(optedOutAt),
      quietHours: origin.quietHours
    }, now)
    // The image rides on the message, as POST /api/v1/messages stores it: the worker sends it as
    // `mediaUrls` and the thread shows it through GET /media/:id. A blocked message keeps it too.
    if (step.media_url !== null) await insertMedia(trx, queued.messageId, [{ kind: 'image', url: step.media_url, caption: null, contentType: null }], now)
    if (queued.status === 'blocked') {
      await repo.updateStep(trx, dispatch.id, position, { status: 'failed', message_id: queued.messageId, started_at: now, ended_at: now })
      await this.finish(trx, { ...dispatch, current_step: position }, 'failed', now)
      return { messageId: queued.messageId, dispatchStatus: 'failed' }
    }
    await repo.updateStep(trx, dispatch.id, position, { status: 'active', message_id: queued.messageId, started_at: now })
    if (position > 0) this.handedOver()
    if (position !== dispatch.current_step) await repo.updateDispatch(trx, dispatch.id, { current_step: position }, now)
    return { messageId: queued.messageId, dispatchStatus: 'pending' }
  }

  /**
   * Ends the dispatch and tells the listeners (the final status callback), only if this
   * transaction is the one that ended it: a concurrent report, deadline or instance finds it ended.
   */
  private async finish (trx: Executor, dispatch: Dispatch, status: 'completed' | 'failed', now: string): Promise<void> {
    if (!await repo.endDispatch(trx, dispatch.id, status, now)) return
    const ended: Dispatch = { ...dispatch, status, ended_at: now, updated_at: now }
    for (const fn of this.listeners) await fn(trx, ended, status, now)
    this.deps.log.info({ dispatchId: dispatch.id, status }, 'dispatch ended')
  }

  /**
   * Left to the worker's polling, a handover would wait up to a poll interval and then queue behind
   * every send and report due at the same moment. A timer at the deadline claims the due deadline
   * rows itself, with the same lease as the worker, so handovers are on time under load. The row in
   * the outbox stays the truth: a missed timer (a restart) leaves it to the worker's next poll.
   */
  private wakeAt (deadline: string): void {
    if (this.closed) return
    const bucket = Math.ceil(Date.parse(deadline) / WAKE_BUCKET_MS)
    if (this.wakeTimers.has(bucket)) return
    const delay = Math.max(0, bucket * WAKE_BUCKET_MS - this.deps.clock.now().getTime())
    const timer = setTimeout(() => {
      this.wakeTimers.delete(bucket)
      void this.fireDue()
    }, delay)
    timer.unref()
    this.wakeTimers.set(bucket, timer)
  }

  /** Handles every deadline that is due now; concurrent calls fold into one more pass. */
  async fireDue (): Promise<void> {
    if (this.firing !== null) {
      this.fireAgain = true
      return await this.firing
    }
    this.firing = (async () => {
      do {
        this.fireAgain = false
        await this.fireDueOnce()
      } while (this.fireAgain && !this.closed)
    })().catch((err) => this.deps.log.error({ err }, 'failover deadlines failed'))
      .finally(() => { this.firing = null })
    return await this.firing
  }

  /**
   * All due deadlines in one transaction: a single turn on the database connection, instead of one
   * turn per deadline queued behind every concurrent send. On an error nothing is changed and the
   * rows wait for the worker.
   */
  private async fireDueOnce (): Promise<void> {
    const { db, clock } = this.deps
    for (;;) {
      if (this.closed) return
      const { claimed, handedOver } = await db.transaction().execute(async (trx) => {
        const now = clock.now()
        const rows = await claimDue(trx, now.toISOString(), new Date(now.getTime() + DEADLINE_LEASE_MS).toISOString(), DEADLINE_BATCH, 'failover_deadline')
        let n = 0
        for (const row of rows) if (await this.expire(trx, row)) n++
        return { claimed: rows.length, handedOver: n }
      })
      if (handedOver > 0) this.wake()
      if (claimed < DEADLINE_BATCH) return
    }
  }

  /** Listeners run inside the status transaction; the worker should look for the new send once it commits. */
  private wakeAfterCommit (): void {
    setImmediate(() => this.wake())
  }
}

interface Origin { kind: MessageKind, agentId: number | null, quietHours: QuietHoursPolicy | null }

/**
 * Every step goes out as the same kind of message, by the same agent, as the step before it. A
 * handover is nobody typing live, so quiet hours hold it, unless the API asked for urgency.
 */
function originOf (message: Message | undefined): Origin {
  return { kind: message?.kind ?? 'notification', agentId: message?.agent_id ?? null, quietHours: message?.quiet_hours === 'urgent' ? 'urgent' : 'hold' }
}

export type DispatchView = NonNullable<Awaited<ReturnType<FailoverService['find']>>>
