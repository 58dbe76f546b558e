import type { Clock } from '../clock.js'
import type { Db } from '../db/database.js'
import { invalid, UserError } from '../errors.js'
import type { MessageStatus } from '../db/schema.js'
import { isFailure } from '../messaging/status.js'
import { plainReason } from '../messaging/status-wording.js'
import * as repo from './report-repository.js'

export const MAX_PERIOD_DAYS = 366
export const DEFAULT_PERIOD_DAYS = 30
const DAY_MS = 86_400_000

export interface ReportQuery { from?: string, to?: string, agent?: string }
export interface Viewer { id: number, role: 'admin' | 'agent' }

/** A period of whole UTC days, `to` included. */
export interface ReportPeriod { from: string, to: string, days: string[], agentId: number | null }

export interface Spread { count: number, median: number | null, p90: number | null }

const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10)

/** A date as a person types it in the period chooser: YYYY-MM-DD, a real day. */
function parseDay (raw: string, field: 'from' | 'to'): number {
  const text = raw.trim()
  const ms = /^\d{4}-\d{2}-\d{2}$/.test(text) ? Date.parse(`${text}T00:00:00.000Z`) : NaN
  if (Number.isNaN(ms) || isoDay(ms) !== text) {
    throw invalid(`"${text.slice(0, 40)}" is not a date; write the ${field === 'from' ? 'first' : 'last'} day as YYYY-MM-DD, e.g. 2026-03-31.`, [{ field, message: 'must be a date (YYYY-MM-DD)' }])
  }
  return ms
}

/**
 * The period and agent a request asks for: `from` and `to` are whole UTC days, both included
 * (default: the last 30 days, today included). Refused with 422 when a date is not one, `from`
 * is after `to`, or the period is longer than MAX_PERIOD_DAYS; with 403 when someone who is not an
 * admin asks for one agent's figures.
 */
export function parsePeriod (q: ReportQuery, viewer: Viewer, today: Date): ReportPeriod {
  const todayMs = Date.parse(`${isoDay(today.getTime())}T00:00:00.000Z`)
  const toMs = q.to === undefined || q.to.trim() === '' ? todayMs : parseDay(q.to, 'to')
  const fromMs = q.from === undefined || q.from.trim() === '' ? toMs - (DEFAULT_PERIOD_DAYS - 1) * DAY_MS : parseDay(q.from, 'from')
  if (fromMs > toMs) throw invalid(`The period starts (${isoDay(fromMs)}) after it ends (${isoDay(toMs)}); choose a "from" day on or before the "to" day.`, [{ field: 'from', message: 'must not be after to' }])
  const length = Math.round((toMs - fromMs) / DAY_MS) + 1
  if (length > MAX_PERIOD_DAYS) throw invalid(`The period is ${length} days long; reports cover at most ${MAX_PERIOD_DAYS} days. Choose a shorter period.`, [{ field: 'to', message: `at most ${MAX_PERIOD_DAYS} days after from` }])
  let agentId: number | null = null
  const agent = (q.agent ?? '').trim()
  if (agent !== '') {
    if (viewer.role !== 'admin') throw new UserError(403, 'Only an admin can see one agent\'s figures; the report shows the whole team.', 'FORBIDDEN')
    if (!/^[1-9]\d{0,8}$/.test(agent)) throw invalid(`"${agent.slice(0, 20)}" is not an agent; choose one from the list.`, [{ field: 'agent', message: 'must be an agent id' }])
    agentId = Number(agent)
  }
  const days: string[] = []
  for (let ms = fromMs; ms <= toMs; ms += DAY_MS) days.push(isoDay(ms))
  return { from: isoDay(fromMs), to: isoDay(toMs), days, agentId }
}

/** The nearest-rank percentile of sorted values. */
function percentile (sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null
  return sorted[Math.max(0, Math.ceil(p / 100 * sorted.length) - 1)]
}

function spread (values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b)
  return { count: sorted.length, median: percentile(sorted, 50), p90: percentile(sorted, 90) }
}

function average (values: number[]): number | null {
  return values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length
}

/** The Monday (UTC) of the week an ISO timestamp falls in. */
function weekOf (iso: string): string {
  const d = Date.parse(`${iso.slice(0, 10)}T00:00:00.000Z`)
  const weekday = (new Date(d).getUTCDay() + 6) % 7
  return isoDay(d - weekday * DAY_MS)
}

/**
 * The figures of the reports page over a period: each from one indexed range read (see
 * report-repository.ts), put together here.
 */
export class ReportService {
  constructor (private readonly deps: { db: Db, clock: Clock }) {}

  period (q: ReportQuery, viewer: Viewer): ReportPeriod {
    return parsePeriod(q, viewer, this.deps.clock.now())
  }

  async agents () {
    return await repo.agentNames(this.deps.db)
  }

  async report (period: ReportPeriod) {
    const { db } = this.deps
    const p: repo.Period = { from: `${period.from}T00:00:00.000Z`, to: new Date(Date.parse(`${period.to}T00:00:00.000Z`) + DAY_MS).toISOString(), agentId: period.agentId }
    if (p.agentId !== null && !(await repo.agentNames(db)).some((a) => a.id === p.agentId)) {
      throw invalid(`There is no agent ${p.agentId}; choose one from the list.`, [{ field: 'agent', message: 'no such agent' }])
    }
    const [opened, closed, times, ratings, outcomes, costs, handovers, agents] = await Promise.all([
      repo.openedPerDay(db, p), repo.closedPerDay(db, p), repo.ticketTimes(db, p), repo.ratings(db, p),
      repo.outcomes(db, p), repo.partsAndCost(db, p), repo.handoversPerDay(db, p), repo.agentNames(db)
    ])
    const byDay = (rows: Array<{ day: string, n: number }>) => new Map(rows.map((r) => [r.day, r.n]))
    const openedBy = byDay(opened)
    const closedBy = byDay(closed)
    const handoversBy = byDay(handovers)

    const firstResponse: Array<{ agentId: number | null, ms: number }> = []
    const resolution: Array<{ agentId: number | null, ms: number }> = []
    for (const t of times) {
      if (t.first_reply_at !== null && t.first_reply_waited_from !== null) firstResponse.push({ agentId: t.first_reply_agent_id, ms: Date.parse(t.first_reply_at) - Date.parse(t.first_reply_waited_from) })
      if (t.status === 'closed' && t.closed_at !== null) resolution.push({ agentId: t.assignee_id, ms: Date.parse(t.closed_at) - Date.parse(t.created_at) })
    }
    const names = new Map(agents.map((a) => [a.id, a.name]))
    const agentIds = new Set<number>()
    for (const r of [...firstResponse, ...resolution, ...ratings.map((x) => ({ agentId: x.agent_id }))]) if (r.agentId !== null) agentIds.add(r.agentId)
    const perAgent = [...agentIds].map((id) => ({
      agentId: id,
      name: names.get(id) ?? `Agent ${id}`,
      firstResponse: spread(firstResponse.filter((r) => r.agentId === id).map((r) => r.ms)),
      resolution: spread(resolution.filter((r) => r.agentId === id).map((r) => r.ms)),
      ratings: ratings.filter((r) => r.agent_id === id).length,
      ratingAverage: average(ratings.filter((r) => r.agent_id === id).map((r) => r.rating))
    })).sort((a, b) => a.name.localeCompare(b.name) || a.agentId - b.agentId)

    const weeks = new Map<string, number[]>()
    for (const r of ratings) {
      const w = weekOf(r.rated_at)
      weeks.set(w, [...(weeks.get(w) ?? []), r.rating])
    }

    let sent = 0
    const reasons = new Map<string, number>()
    for (const o of outcomes) {
      sent += o.n
      if (!isFailure(o.status as MessageStatus)) continue
      const reason = plainReason({ status: o.status as MessageStatus, status_reason: o.status_reason, error_code: o.error_code }) ?? o.status
      reasons.set(reason, (reasons.get(reason) ?? 0) + o.n)
    }
    const failed = [...reasons.values()].reduce((a, b) => a + b, 0)

    const currencies = [...new Set(costs.filter((c) => c.currency !== null).map((c) => c.currency as string))].sort()
    return {
      period,
      volume: period.days.map((d) => ({ day: d, opened: openedBy.get(d) ?? 0, closed: closedBy.get(d) ?? 0 })),
      times: { firstResponse: spread(firstResponse.map((r) => r.ms)), resolution: spread(resolution.map((r) => r.ms)) },
      perAgent,
      csat: {
        count: ratings.length,
        average: average(ratings.map((r) => r.rating)),
        distribution: [1, 2, 3, 4, 5].map((rating) => ({ rating, n: ratings.filter((r) => r.rating === rating).length })),
        weeks: [...weeks.entries()].sort(([a], [b]) => a < b ? -1 : 1).map(([week, values]) => ({ week, count: values.length, average: average(values) as number }))
      },
      failures: {
        sent,
        failed,
        rate: sent === 0 ? null : failed / sent,
        reasons: [...reasons.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([reason, n]) => ({ reason, n, share: n / sent }))
      },
      costs: {
        currencies,
        days: period.days.map((d) => {
          const rows = costs.filter((c) => c.day === d)
          return {
            day: d,
            messages: rows.reduce((a, r) => a + r.messages, 0),
            parts: rows.reduce((a, r) => a + r.parts, 0),
            unreported: rows.reduce((a, r) => a + r.unreported, 0),
            cost: currencies.map((currency) => ({ currency, amount: rows.filter((r) => r.currency === currency).reduce((a, r) => a + r.cost, 0) }))
          }
        })
      },
      handovers: { total: handovers.reduce((a, r) => a + r.n, 0), days: period.days.map((d) => ({ day: d, n: handoversBy.get(d) ?? 0 })) }
    }
  }
}

export type Report = Awaited<ReturnType<ReportService['report']>>
