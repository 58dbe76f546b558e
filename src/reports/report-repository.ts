import { sql } from 'kysely'
import type { Executor } from '../db/database.js'

// SQL for the reports page. Every query is a range read of one index over the period (UTC ISO
// timestamps compare as text on both engines), grouped by day where the chart is per day; the
// percentiles and averages are computed in report-service.ts from the rows these return.
// The conditions that select a partial index are written as SQL literals, not bound values, so
// the plan never depends on a value bound later (a PostgreSQL generic plan would not use the
// partial index for a bound value).

export interface Period { from: string, to: string, agentId: number | null }

const OUTBOUND = sql<boolean>`direction = 'outbound'`

/** The UTC day (YYYY-MM-DD) of an ISO timestamp column, the same text on both engines. */
const day = (column: string) => sql<string>`substr(${sql.ref(column)}, 1, 10)`

/** Tickets opened per day: tickets_created. */
export async function openedPerDay (db: Executor, p: Period): Promise<Array<{ day: string, n: number }>> {
  let q = db.selectFrom('tickets').select([day('created_at').as('day'), (eb) => eb.fn.countAll<number | string>().as('n')])
    .where('created_at', '>=', p.from).where('created_at', '<', p.to)
  if (p.agentId !== null) q = q.where('assignee_id', '=', p.agentId)
  const rows = await q.groupBy(day('created_at')).execute()
  return rows.map((r) => ({ day: r.day, n: Number(r.n) }))
}

/** Tickets closed per day (closed now, by their last close): tickets_closed_recent. */
export async function closedPerDay (db: Executor, p: Period): Promise<Array<{ day: string, n: number }>> {
  let q = db.selectFrom('tickets').select([day('closed_at').as('day'), (eb) => eb.fn.countAll<number | string>().as('n')])
    .where(sql<boolean>`status = 'closed'`).where('closed_at', '>=', p.from).where('closed_at', '<', p.to)
  if (p.agentId !== null) q = q.where('assignee_id', '=', p.agentId)
  const rows = await q.groupBy(day('closed_at')).execute()
  return rows.map((r) => ({ day: r.day, n: Number(r.n) }))
}

/** The period's new tickets with what response and resolution times need: tickets_created. */
export async function ticketTimes (db: Executor, p: Period) {
  let q = db.selectFrom('tickets')
    .select(['created_at', 'status', 'closed_at', 'assignee_id', 'first_reply_at', 'first_reply_agent_id', 'first_reply_waited_from'])
    .where('created_at', '>=', p.from).where('created_at', '<', p.to)
  if (p.agentId !== null) q = q.where('assignee_id', '=', p.agentId)
  return await q.execute()
}

/** Ratings given in the period: csat_surveys_rated. */
export async function ratings (db: Executor, p: Period): Promise<Array<{ rating: number, rated_at: string, agent_id: number | null }>> {
  let q = db.selectFrom('csat_surveys').select(['rating', 'rated_at', 'agent_id'])
    .where('rating', 'is not', null).where('rated_at', '>=', p.from).where('rated_at', '<', p.to)
  if (p.agentId !== null) q = q.where('agent_id', '=', p.agentId)
  const rows = await q.execute()
  return rows.map((r) => ({ rating: Number(r.rating), rated_at: r.rated_at as string, agent_id: r.agent_id }))
}

/** Outbound messages of the period by status and reason: messages_outbound_created. */
export async function outcomes (db: Executor, p: Period) {
  let q = db.selectFrom('messages')
    .select(['status', 'error_code', 'status_reason', (eb) => eb.fn.countAll<number | string>().as('n')])
    .where(OUTBOUND).where('created_at', '>=', p.from).where('created_at', '<', p.to)
  if (p.agentId !== null) q = q.where('agent_id', '=', p.agentId)
  const rows = await q.groupBy(['status', 'error_code', 'status_reason']).execute()
  return rows.map((r) => ({ ...r, n: Number(r.n) }))
}

/**
 * SMS parts and cost per day and currency, as the provider reported them (price and segments
 * arrive with delivery reports; a message without a report counts as unreported), over
 * messages_outbound_created.
 */
export async function partsAndCost (db: Executor, p: Period) {
  let q = db.selectFrom('messages')
    .select([
      day('created_at').as('day'),
      'price_currency',
      (eb) => eb.fn.countAll<number | string>().as('messages'),
      sql<number | string | null>`sum(segments)`.as('parts'),
      sql<number | string>`sum(case when segments is null then 1 else 0 end)`.as('unreported'),
      sql<number | string | null>`sum(cast(price_amount as double precision))`.as('cost')
    ])
    .where(OUTBOUND).where('channel', '=', 'sms').where('created_at', '>=', p.from).where('created_at', '<', p.to)
  if (p.agentId !== null) q = q.where('agent_id', '=', p.agentId)
  const rows = await q.groupBy([day('created_at'), 'price_currency']).execute()
  return rows.map((r) => ({ day: r.day, currency: r.price_currency, messages: Number(r.messages), parts: Number(r.parts ?? 0), unreported: Number(r.unreported), cost: Number(r.cost ?? 0) }))
}

/** Failover handovers per day: a step after a workflow's first that started, dispatch_steps_started. */
export async function handoversPerDay (db: Executor, p: Period): Promise<Array<{ day: string, n: number }>> {
  let q = db.selectFrom('dispatch_steps').select([day('dispatch_steps.started_at').as('day'), (eb) => eb.fn.countAll<number | string>().as('n')])
    .where(sql<boolean>`dispatch_steps.position > 0`).where('dispatch_steps.started_at', '>=', p.from).where('dispatch_steps.started_at', '<', p.to)
  if (p.agentId !== null) {
    q = q.innerJoin('messages', 'messages.id', 'dispatch_steps.message_id').where('messages.agent_id', '=', p.agentId)
  }
  const rows = await q.groupBy(day('dispatch_steps.started_at')).execute()
  return rows.map((r) => ({ day: r.day, n: Number(r.n) }))
}

export async function agentNames (db: Executor): Promise<Array<{ id: number, name: string, disabled: boolean }>> {
  const rows = await db.selectFrom('agents').select(['id', 'name', 'disabled_at']).orderBy('name').orderBy('id').execute()
  return rows.map((r) => ({ id: r.id, name: r.name, disabled: r.disabled_at !== null }))
}
