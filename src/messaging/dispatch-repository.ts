import type { Executor } from '../db/database.js'
import type { Dispatch, DispatchStatus, DispatchStep, StepStatus } from '../db/schema.js'

// All SQL for failover workflows (dispatches and their steps). The failover engine decides the
// transactions; every function takes the database or an open transaction first.

export interface NewDispatch {
  id: string
  template: string
  ticketId: number
  apiKeyId: number | null
  now: string
}

export interface NewStep {
  channel: DispatchStep['channel']
  to: string
  from: string | null
  body: string
  /** mms: the image's https URL; null for every other channel. */
  mediaUrl: string | null
  condition: 'delivered' | 'read' | null
  expirySeconds: number | null
}

export async function insertDispatch (db: Executor, d: NewDispatch, steps: NewStep[]): Promise<void> {
  await db.insertInto('dispatches').values({
    id: d.id,
    status: 'pending',
    template: d.template,
    ticket_id: d.ticketId,
    current_step: 0,
    api_key_id: d.apiKeyId,
    created_at: d.now,
    updated_at: d.now,
    ended_at: null
  }).execute()
  await db.insertInto('dispatch_steps').values(steps.map((s, position) => ({
    dispatch_id: d.id,
    position,
    channel: s.channel,
    to_address: s.to,
    from_address: s.from,
    body: s.body,
    media_url: s.mediaUrl,
    condition_status: s.condition,
    expiry_seconds: s.expirySeconds,
    message_id: null,
    status: 'waiting' as const,
    started_at: null,
    deadline_at: null,
    ended_at: null
  }))).execute()
}

export function findDispatch (db: Executor, id: string): Promise<Dispatch | undefined> {
  return db.selectFrom('dispatches').selectAll().where('id', '=', id).executeTakeFirst()
}

export function listSteps (db: Executor, dispatchId: string): Promise<DispatchStep[]> {
  return db.selectFrom('dispatch_steps').selectAll().where('dispatch_id', '=', dispatchId).orderBy('position').execute()
}

export function findStep (db: Executor, dispatchId: string, position: number): Promise<DispatchStep | undefined> {
  return db.selectFrom('dispatch_steps').selectAll()
    .where('dispatch_id', '=', dispatchId).where('position', '=', position)
    .executeTakeFirst()
}

/** A step with its dispatch, found by the step's message or by position: one query on the hot path of every report. */
export async function findStepWithDispatch (db: Executor, by: { messageId: string } | { dispatchId: string, position: number }): Promise<{ step: DispatchStep, dispatch: Dispatch } | undefined> {
  let q = db.selectFrom('dispatch_steps')
    .innerJoin('dispatches', 'dispatches.id', 'dispatch_steps.dispatch_id')
    .selectAll('dispatch_steps')
    .select([
      'dispatches.status as d_status', 'dispatches.template as d_template', 'dispatches.ticket_id as d_ticket_id',
      'dispatches.current_step as d_current_step', 'dispatches.api_key_id as d_api_key_id', 'dispatches.created_at as d_created_at',
      'dispatches.updated_at as d_updated_at', 'dispatches.ended_at as d_ended_at'
    ])
  q = 'messageId' in by
    ? q.where('dispatch_steps.message_id', '=', by.messageId)
    : q.where('dispatch_steps.dispatch_id', '=', by.dispatchId).where('dispatch_steps.position', '=', by.position)
  const row = await q.executeTakeFirst()
  if (row === undefined) return undefined
  const { d_status: status, d_template: template, d_ticket_id: ticketId, d_current_step: currentStep, d_api_key_id: apiKeyId, d_created_at: createdAt, d_updated_at: updatedAt, d_ended_at: endedAt, ...step } = row
  return {
    step,
    dispatch: { id: step.dispatch_id, status, template, ticket_id: ticketId, current_step: currentStep, api_key_id: apiKeyId, created_at: createdAt, updated_at: updatedAt, ended_at: endedAt }
  }
}

export interface StepUpdate {
  status?: StepStatus
  message_id?: string
  started_at?: string
  deadline_at?: string
  ended_at?: string
}

export async function updateStep (db: Executor, dispatchId: string, position: number, set: StepUpdate): Promise<void> {
  await db.updateTable('dispatch_steps').set(set)
    .where('dispatch_id', '=', dispatchId).where('position', '=', position)
    .execute()
}

/**
 * Ends the step at `position` if it is still `active`, with one guarded UPDATE; false if another
 * transaction (a report, a deadline, another instance) ended it first. Every step ends once.
 */
export async function endActiveStep (db: Executor, dispatchId: string, position: number, set: { status: 'met' | 'failed' | 'expired', ended_at: string }): Promise<boolean> {
  const r = await db.updateTable('dispatch_steps').set(set)
    .where('dispatch_id', '=', dispatchId).where('position', '=', position).where('status', '=', 'active')
    .executeTakeFirst()
  return Number(r.numUpdatedRows) > 0
}

/** Ends a `pending` dispatch with one guarded UPDATE; false if it had already ended, so its end is reported once. */
export async function endDispatch (db: Executor, id: string, status: 'completed' | 'failed', now: string): Promise<boolean> {
  const r = await db.updateTable('dispatches').set({ status, ended_at: now, updated_at: now })
    .where('id', '=', id).where('status', '=', 'pending')
    .executeTakeFirst()
  return Number(r.numUpdatedRows) > 0
}

export async function updateDispatch (db: Executor, id: string, set: { status?: DispatchStatus, current_step?: number, ended_at?: string }, now: string): Promise<void> {
  await db.updateTable('dispatches').set({ ...set, updated_at: now }).where('id', '=', id).execute()
}

/** The messages a dispatch sent, each with the step that sent it, in step order. */
export function listDispatchMessages (db: Executor, dispatchId: string) {
  return db.selectFrom('dispatch_steps')
    .innerJoin('messages', 'messages.id', 'dispatch_steps.message_id')
    .select([
      'dispatch_steps.position', 'messages.id', 'messages.channel', 'messages.to_address', 'messages.status',
      'messages.status_at', 'messages.status_reason', 'messages.error_code', 'messages.price_amount', 'messages.price_currency'
    ])
    .where('dispatch_steps.dispatch_id', '=', dispatchId)
    .orderBy('dispatch_steps.position')
    .execute()
}

/** Failover steps of the messages on one ticket, keyed by message for the conversation view. */
export function listTicketSteps (db: Executor, ticketId: number) {
  return db.selectFrom('messages')
    .innerJoin('dispatch_steps', 'dispatch_steps.message_id', 'messages.id')
    .innerJoin('dispatches', 'dispatches.id', 'dispatch_steps.dispatch_id')
    .select([
      'messages.id as message_id', 'dispatch_steps.dispatch_id', 'dispatch_steps.position', 'dispatch_steps.status',
      'dispatch_steps.condition_status', 'dispatch_steps.deadline_at', 'dispatches.status as dispatch_status',
      (eb) => eb.selectFrom('dispatch_steps as all_steps').select((e) => e.fn.countAll<number>().as('n'))
        .whereRef('all_steps.dispatch_id', '=', 'dispatch_steps.dispatch_id').as('step_count')
    ])
    .where('messages.ticket_id', '=', ticketId)
    .where('messages.dispatch_id', 'is not', null)
    .execute()
}

/** For the benchmark: each handover's deadline and when the next step actually started. */
export function listHandovers (db: Executor) {
  return db.selectFrom('dispatch_steps as prev')
    .innerJoin('dispatch_steps as next', (join) => join
      .onRef('next.dispatch_id', '=', 'prev.dispatch_id')
      .on((eb) => eb('next.position', '=', eb('prev.position', '+', 1))))
    .select(['prev.deadline_at', 'next.started_at', 'prev.status'])
    .where('prev.status', '=', 'expired')
    .where('next.started_at', 'is not', null)
    .execute()
}

/** For the benchmark: how many steps at `position` have been accepted by the provider (their deadline runs). */
export async function countStepsWithDeadline (db: Executor, position: number): Promise<number> {
  const row = await db.selectFrom('dispatch_steps').select((eb) => eb.fn.countAll<number>().as('n'))
    .where('position', '=', position).where('deadline_at', 'is not', null).executeTakeFirstOrThrow()
  return Number(row.n)
}

export async function countDispatchesByStatus (db: Executor): Promise<Record<DispatchStatus, number>> {
  const rows = await db.selectFrom('dispatches').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('status').execute()
  const out: Record<DispatchStatus, number> = { pending: 0, completed: 0, failed: 0 }
  for (const r of rows) out[r.status] = Number(r.n)
  return out
}
