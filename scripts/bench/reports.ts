import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { createDatabase } from '../../src/db/database.js'
import { migrateToLatest } from '../../src/db/migrate.js'
import { seedSearchDesk } from './search.js'

// npm run bench -- reports: the reports page (GET /reports, full page, in process) on SQLite over
// the search bench's desk of 1,000,000 messages (100,000 tickets opened five minutes apart from
// 2025-01-01, so 30 days hold about 8,600 tickets and 86,000 messages), given what reports read:
// first replies on the tickets, prices and parts on the outbound messages (2 % of them failed),
// ratings on a third of the closed tickets and failover handovers.

// The page's "today": the desk's days are in 2025.
const TODAY = '2025-07-01T12:00:00.000Z'

export interface ReportTiming { what: string, url: string, p50Ms: number, p99Ms: number }

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]

/** What the reports read that the search desk does not have, written in bulk after it is built. */
function addReportFacts (path: string): void {
  const db = new SQLite(path)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = OFF')
  db.exec(`begin;
    insert into agents (id, email, name, role, password_hash, created_at, updated_at) values
      (1, 'a@example.com', 'Agent One', 'agent', 'x', '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z'),
      (2, 'b@example.com', 'Agent Two', 'agent', 'x', '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z'),
      (3, 'c@example.com', 'Agent Three', 'agent', 'x', '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z');
    update tickets set first_reply_waited_from = created_at,
      first_reply_at = (select min(m.created_at) from messages m where m.ticket_id = tickets.id and m.kind = 'reply'),
      first_reply_agent_id = 1 + id % 3;
    update messages set price_amount = '0.0710', price_currency = 'EUR', segments = 1 + (rowid % 7 = 0)
      where direction = 'outbound';
    update messages set status = 'failed', error_code = 'SIMULATED', status_reason = case rowid % 3 when 0 then 'Unknown subscriber' when 1 then 'Absent subscriber' else 'Blocked by the carrier' end
      where direction = 'outbound' and rowid % 50 = 1;
    insert into csat_surveys (ticket_id, contact_id, agent_id, message_id, sent_at, expires_at, rating, rated_at, rating_message_id)
      select id, contact_id, assignee_id, 's-' || id || '-9', closed_at, closed_at, 1 + (id * 7) % 5, closed_at, null from tickets where status = 'closed' and id % 3 = 0;
    insert into dispatches (id, status, template, ticket_id, current_step, created_at, updated_at)
      select 'd-' || id, 'completed', 'reply', id, 1, created_at, created_at from tickets where id % 20 = 0;
    insert into dispatch_steps (dispatch_id, position, channel, to_address, body, status, started_at)
      select 'd-' || id, 1, 'sms', '+31600000000', 'x', 'met', created_at from tickets where id % 20 = 0;
    commit;`)
  db.pragma('wal_checkpoint(TRUNCATE)')
  db.close()
}

/** Builds the desk, then times the page for the default 30 days and for a whole year: `iterations` requests after 10 warm-up. */
export async function benchReports (iterations = 50): Promise<{ messages: number, seedSeconds: number, timings: ReportTiming[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'textdesk-reports-bench-'))
  try {
    const path = join(dir, 'reports.sqlite')
    const config = loadConfig({ NODE_ENV: 'production', LOG_LEVEL: 'silent', DATABASE_URL: `sqlite:${path}`, SMS_CHANNEL: 'simulator', ALLOW_SIMULATOR_IN_PRODUCTION: 'true' })
    const setup = createDatabase(config)
    await migrateToLatest(setup)
    await setup.destroy()
    const t0 = performance.now()
    seedSearchDesk(path)
    addReportFacts(path)
    const seedSeconds = (performance.now() - t0) / 1000

    const db = createDatabase(config)
    const app = await buildApp({ config, db, clock: { now: () => new Date(TODAY) } })
    const agent = await app.services.agents.add({ email: 'bench@example.com', name: 'Bench', role: 'admin', password: 'benchmark-password-1' })
    const { token } = await app.services.sessions.create(agent.id)
    const headers = { cookie: `textdesk_session=${token}`, accept: 'text/html' }
    const messages = Number((await db.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n)
    const kinds = [
      { what: 'default period (the last 30 days)', url: '/reports', n: iterations },
      { what: 'the last 30 days, one agent', url: '/reports?agent=2', n: iterations },
      { what: 'a whole year (366 days)', url: '/reports?from=2024-07-01&to=2025-07-01', n: Math.max(5, Math.round(iterations / 5)) }
    ]
    const timings: ReportTiming[] = []
    for (const kind of kinds) {
      const times: number[] = []
      for (let i = 0; i < kind.n + 10; i++) {
        const start = performance.now()
        const res = await app.inject({ method: 'GET', url: kind.url, headers })
        const ms = performance.now() - start
        if (res.statusCode !== 200) throw new Error(`${kind.url} answered ${res.statusCode}: ${res.body.slice(0, 300)}`)
        if (i >= 10) times.push(ms)
      }
      times.sort((a, b) => a - b)
      timings.push({ what: kind.what, url: kind.url, p50Ms: percentile(times, 0.5), p99Ms: percentile(times, 0.99) })
    }
    await app.close()
    return { messages, seedSeconds, timings }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
