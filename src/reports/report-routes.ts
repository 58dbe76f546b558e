import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errorBody, UserError } from '../errors.js'
import { renderPage } from '../inbox/render.js'
import { bars, columns } from './charts.js'
import { toCsv } from './csv.js'
import type { Report, ReportService, Spread, Viewer } from './report-service.js'

export interface ReportRoutesDeps {
  reports: ReportService
  simulatorOn: boolean
}

const field = { type: 'string', maxLength: 200 } as const
const periodQuery = { type: 'object', properties: { from: field, to: field, agent: field } } as const
type PeriodQuerystring = { from?: string, to?: string, agent?: string }

const BLUE = '#2563eb'
const GREEN = '#16a34a'
const RED = '#dc2626'
const AMBER = '#d97706'
const GREY = '#6b7280'

/** 45 s, 12 min, 3 h 05 min, 2 d 4 h: a response or resolution time. */
export function humanDuration (ms: number | null): string {
  if (ms === null) return '–'
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.round(s / 60)} min`
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${String(Math.floor(s % 3600 / 60)).padStart(2, '0')} min`
  return `${Math.floor(s / 86_400)} d ${Math.floor(s % 86_400 / 3600)} h`
}

const seconds = (ms: number | null): number | null => ms === null ? null : Math.round(ms / 1000)
const percent = (x: number | null): string => x === null ? '–' : `${(x * 100).toFixed(1)} %`
const money = (n: number): string => n.toFixed(4)

/** The CSV export beside each chart: its file name and its rows. */
const CSV: Record<string, (r: Report) => { header: string[], rows: Array<Array<string | number | null>> }> = {
  volume: (r) => ({ header: ['day', 'opened', 'closed'], rows: r.volume.map((v) => [v.day, v.opened, v.closed]) }),
  'response-times': (r) => ({
    header: ['measure', 'tickets', 'median_seconds', 'p90_seconds'],
    rows: [['first_response', r.times.firstResponse], ['resolution', r.times.resolution]].map(([name, s]) => [name as string, (s as Spread).count, seconds((s as Spread).median), seconds((s as Spread).p90)])
  }),
  agents: (r) => ({
    header: ['agent_id', 'agent', 'first_response_tickets', 'first_response_median_seconds', 'first_response_p90_seconds', 'resolved_tickets', 'resolution_median_seconds', 'resolution_p90_seconds', 'ratings', 'rating_average'],
    rows: r.perAgent.map((a) => [a.agentId, a.name, a.firstResponse.count, seconds(a.firstResponse.median), seconds(a.firstResponse.p90), a.resolution.count, seconds(a.resolution.median), seconds(a.resolution.p90), a.ratings, a.ratingAverage === null ? null : Number(a.ratingAverage.toFixed(2))])
  }),
  csat: (r) => ({ header: ['rating', 'ratings'], rows: r.csat.distribution.map((d) => [d.rating, d.n]) }),
  'csat-weeks': (r) => ({ header: ['week_starting', 'ratings', 'average'], rows: r.csat.weeks.map((w) => [w.week, w.count, Number(w.average.toFixed(2))]) }),
  failures: (r) => ({ header: ['reason', 'failed_messages', 'outbound_messages', 'rate'], rows: r.failures.reasons.map((f) => [f.reason, f.n, r.failures.sent, Number(f.share.toFixed(4))]) }),
  'parts-cost': (r) => ({
    header: ['day', 'sms_messages', 'parts_reported', 'messages_without_reported_parts', ...r.costs.currencies.map((c) => `cost_${c}`)],
    rows: r.costs.days.map((d) => [d.day, d.messages, d.parts, d.unreported, ...d.cost.map((c) => Number(c.amount.toFixed(4)))])
  }),
  handovers: (r) => ({ header: ['day', 'handovers'], rows: r.handovers.days.map((d) => [d.day, d.n]) })
}

export const REPORT_CSVS = Object.keys(CSV)

/**
 * The reports page (`GET /reports`, every signed-in agent; an admin may pick one agent) and a CSV
 * export per chart (`GET /reports/<chart>.csv`), over a period of whole UTC days.
 */
export async function reportRoutes (app: FastifyInstance, deps: ReportRoutesDeps): Promise<void> {
  const { reports } = deps
  const viewerOf = (req: FastifyRequest): Viewer & { name: string } => {
    if (req.agent === undefined) throw new UserError(401, 'Sign in first.', 'UNAUTHORIZED')
    return req.agent
  }
  const page = async (reply: FastifyReply, name: string, data: Record<string, unknown>) =>
    await renderPage(reply, name, { simulatorOn: deps.simulatorOn, ...data })

  app.setErrorHandler(async (err, req, reply) => {
    const { statusCode, body } = errorBody(err)
    if (statusCode >= 500) req.log.error({ err }, 'report failed')
    reply.code(statusCode)
    if (!(req.headers.accept ?? '').includes('text/html')) return await reply.send(body)
    return await page(reply, 'error', { title: 'Reports', statusCode, message: body.message })
  })

  app.get<{ Querystring: PeriodQuerystring }>('/reports', { schema: { querystring: periodQuery } }, async (req, reply) => {
    const viewer = viewerOf(req)
    const period = reports.period(req.query, viewer)
    const r = await reports.report(period)
    const agents = viewer.role === 'admin' ? (await reports.agents()).map((a) => ({ ...a, selected: a.id === period.agentId })) : []
    const query = new URLSearchParams({ from: period.from, to: period.to, ...(period.agentId === null ? {} : { agent: String(period.agentId) }) }).toString()
    const dayLabel = (d: string) => d.slice(5)
    const span = (s: Spread) => ({ count: s.count, median: humanDuration(s.median), p90: humanDuration(s.p90) })
    const currency = r.costs.currencies[0]
    return await page(reply, 'reports', {
      title: 'Reports',
      period,
      periodWords: period.days.length === 1 ? '1 day' : `${period.days.length} days`,
      query,
      isAdmin: viewer.role === 'admin',
      agents,
      agentName: period.agentId === null ? null : agents.find((a) => a.id === period.agentId)?.name ?? null,
      volume: {
        opened: r.volume.reduce((a, v) => a + v.opened, 0),
        closed: r.volume.reduce((a, v) => a + v.closed, 0),
        chart: columns('Tickets opened and closed per day', r.period.days, [
          { name: 'opened', fill: BLUE, values: r.volume.map((v) => v.opened) },
          { name: 'closed', fill: GREEN, values: r.volume.map((v) => v.closed) }
        ], { categoryLabel: dayLabel })
      },
      times: { firstResponse: span(r.times.firstResponse), resolution: span(r.times.resolution) },
      perAgent: r.perAgent.map((a) => ({ ...a, firstResponse: span(a.firstResponse), resolution: span(a.resolution), ratingAverage: a.ratingAverage === null ? '–' : a.ratingAverage.toFixed(2) })),
      csat: {
        count: r.csat.count,
        average: r.csat.average === null ? '–' : r.csat.average.toFixed(2),
        chart: bars('Ratings by score', r.csat.distribution.slice().reverse().map((d) => ({ label: `${d.rating} of 5`, value: d.n, text: `${d.n} (${percent(r.csat.count === 0 ? null : d.n / r.csat.count)})` })), AMBER),
        weeks: r.csat.weeks.map((w) => ({ ...w, average: w.average.toFixed(2) })),
        weekChart: r.csat.weeks.length === 0 ? null : columns('Average rating per week', r.csat.weeks.map((w) => w.week), [{ name: 'average rating', fill: AMBER, values: r.csat.weeks.map((w) => w.average), unit: (n) => n.toFixed(2) }], { categoryLabel: (w) => `week of ${dayLabel(w)}` })
      },
      failures: {
        sent: r.failures.sent,
        failed: r.failures.failed,
        rate: percent(r.failures.rate),
        chart: bars('Failed messages by reason', r.failures.reasons.map((f) => ({ label: f.reason, value: f.n, text: `${f.n} (${percent(f.share)})` })), RED)
      },
      costs: {
        currencies: r.costs.currencies.join(', '),
        parts: r.costs.days.reduce((a, d) => a + d.parts, 0),
        unreported: r.costs.days.reduce((a, d) => a + d.unreported, 0),
        totals: r.costs.currencies.map((c) => ({ currency: c, amount: money(r.costs.days.reduce((a, d) => a + (d.cost.find((x) => x.currency === c)?.amount ?? 0), 0)) })),
        partsChart: columns('SMS parts per day', r.period.days, [{ name: 'parts', fill: BLUE, values: r.costs.days.map((d) => d.parts) }], { categoryLabel: dayLabel }),
        costChart: currency === undefined ? null : columns(`Cost per day (${currency})`, r.period.days, [{ name: currency, fill: GREY, values: r.costs.days.map((d) => d.cost.find((c) => c.currency === currency)?.amount ?? 0), unit: money }], { categoryLabel: dayLabel })
      },
      handovers: {
        total: r.handovers.total,
        chart: columns('Failover handovers per day', r.period.days, [{ name: 'handovers', fill: RED, values: r.handovers.days.map((d) => d.n) }], { categoryLabel: dayLabel })
      }
    })
  })

  for (const [name, build] of Object.entries(CSV)) {
    app.get<{ Querystring: PeriodQuerystring }>(`/reports/${name}.csv`, { schema: { querystring: periodQuery } }, async (req, reply) => {
      const period = reports.period(req.query, viewerOf(req))
      const { header, rows } = build(await reports.report(period))
      const who = period.agentId === null ? '' : `-agent-${period.agentId}`
      return await reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="textdesk-${name}-${period.from}-to-${period.to}${who}.csv"`)
        .header('cache-control', 'no-store')
        .send(toCsv(header, rows))
    })
  }
}
