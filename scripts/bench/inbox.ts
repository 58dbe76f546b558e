import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { createDatabase } from '../../src/db/database.js'
import { migrateToLatest } from '../../src/db/migrate.js'

export const MESSAGES_PER_TICKET = 10
export const VIEW_URLS = ['/inbox?view=mine', '/inbox?view=unassigned', '/inbox?view=open', '/inbox?view=pending', '/inbox?view=closed', '/inbox/counts'] as const

/**
 * Fills a database with `n` tickets of MESSAGES_PER_TICKET messages each, fast (prepared inserts
 * in one transaction, not webhooks). Like a desk with history: 90 % closed, 5 % pending, 5 % open;
 * of the open ones a quarter unassigned and the rest spread over agents 1 to 3. The view counters
 * are then computed from the table, as the migration does.
 */
export function seed (path: string, n: number): void {
  const db = new SQLite(path)
  db.pragma('journal_mode = WAL')
  const contact = db.prepare('insert into contacts (phone, created_at, updated_at) values (?, ?, ?)')
  const number = db.prepare('insert into contact_numbers (number, contact_id, created_at) values (?, ?, ?)')
  const ticket = db.prepare(`insert into tickets (contact_id, status, assignee_id, created_at, updated_at, closed_at, status_at, last_message_at, last_message_preview,
    last_message_direction, last_sender, last_sender_agent_id, last_customer_message_at, awaiting_reply_since, message_count)
    values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
  const message = db.prepare(`insert into messages (id, ticket_id, direction, kind, channel, from_address, to_address, body, provider, provider_message_id, agent_id, status, status_at, attempts, created_at, updated_at)
    values (?, ?, ?, ?, 'sms', ?, ?, ?, 'messagebird', ?, ?, ?, ?, 0, ?, ?)`)
  const start = Date.parse('2026-01-01T00:00:00Z')
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const opened = start + i * 10_000
      const iso = (k: number): string => new Date(opened + k * 500).toISOString()
      const phone = '+3161' + String(1000000 + i).padStart(7, '0')
      const c = contact.run(phone, iso(0), iso(0)).lastInsertRowid
      number.run(phone, c, iso(0))
      const r = i % 100
      const status = r < 90 ? 'closed' : r < 95 ? 'pending' : 'open'
      const assignee = status === 'closed' ? 1 + (i % 3) : status === 'open' ? (i % 4 === 0 ? null : i % 4) : null
      // Open tickets end with the customer (waiting for an answer); the others with an agent.
      const lastInbound = status === 'open'
      const last = iso(MESSAGES_PER_TICKET - 1)
      const lastCustomer = lastInbound ? last : iso(MESSAGES_PER_TICKET - 2)
      const t = ticket.run(c, status, assignee, iso(0), last, status === 'closed' ? last : null, last, last, `Message ${MESSAGES_PER_TICKET - 1} of ticket ${i}`,
        lastInbound ? 'inbound' : 'outbound', lastInbound ? 'customer' : 'agent', lastInbound ? null : 1, lastCustomer, lastInbound ? last : null, MESSAGES_PER_TICKET).lastInsertRowid
      for (let k = 0; k < MESSAGES_PER_TICKET; k++) {
        const inbound = lastInbound ? (MESSAGES_PER_TICKET - 1 - k) % 2 === 0 : (MESSAGES_PER_TICKET - 1 - k) % 2 === 1
        const at = iso(k)
        message.run(`seed-${i}-${k}`, t, inbound ? 'inbound' : 'outbound', inbound ? 'customer' : 'reply', inbound ? phone : '+3197010260000', inbound ? '+3197010260000' : phone,
          `Message ${k} of ticket ${i}`, `seed-${i}-${k}`, inbound ? null : 1, inbound ? 'received' : 'delivered', at, at, at)
      }
    }
    db.exec('delete from ticket_counts')
    db.exec('insert into ticket_counts (bucket, n) select status, count(*) from tickets group by status')
    db.exec(`insert into ticket_counts (bucket, n) select case when assignee_id is null then 'unassigned' else 'agent:' || assignee_id end, count(*)
      from tickets where status = 'open' group by assignee_id`)
  })()
  db.close()
}

export interface ViewTiming { url: string, small: { medianMs: number, p95Ms: number }, large: { medianMs: number, p95Ms: number } }

interface Desk { request: (url: string) => Promise<number>, close: () => Promise<void> }

/** An app over a database of `n` seeded tickets, signed in as agent 1; `request` answers in ms. */
async function desk (dir: string, n: number): Promise<Desk> {
  const path = join(dir, `inbox-${n}.sqlite`)
  const config = loadConfig({ NODE_ENV: 'production', LOG_LEVEL: 'silent', DATABASE_URL: `sqlite:${path}`, SMS_CHANNEL: 'simulator', ALLOW_SIMULATOR_IN_PRODUCTION: 'true' })
  const db = createDatabase(config)
  await migrateToLatest(db)
  const app = await buildApp({ config, db })
  const agent = await app.services.agents.add({ email: 'bench@example.com', name: 'Bench', role: 'agent', password: 'benchmark-password-1' })
  for (const k of [2, 3]) await app.services.agents.add({ email: `agent${k}@example.com`, name: `Agent ${k}`, role: 'agent', password: 'benchmark-password-1' })
  seed(path, n)
  const { token } = await app.services.sessions.create(agent.id)
  const headers = { cookie: `textdesk_session=${token}`, accept: 'text/html' }
  return {
    request: async (url) => {
      const t0 = performance.now()
      const res = await app.inject({ method: 'GET', url, headers })
      const ms = performance.now() - t0
      if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`)
      return ms
    },
    close: async () => { await app.close() }
  }
}

const stats = (times: number[]) => {
  times.sort((a, b) => a - b)
  return { medianMs: times[Math.floor(times.length / 2)], p95Ms: times[Math.floor(times.length * 0.95)] }
}

/**
 * Every view's first page (full page) and /inbox/counts, for agent 1, on a desk of `small` and one
 * of `large` tickets. The two are measured in alternation, request by request, so that both see
 * the same machine: on a shared VM the load drifts more between two runs than the views differ.
 */
export async function timeViews (small: number, large: number, iterations = 100): Promise<{ small: number, large: number, messages: number, timings: ViewTiming[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'textdesk-inbox-bench-'))
  try {
    const a = await desk(dir, small)
    const b = await desk(dir, large)
    const timings: ViewTiming[] = []
    for (const url of VIEW_URLS) {
      const ta: number[] = []
      const tb: number[] = []
      for (let i = 0; i < iterations + 20; i++) {
        // Which desk goes first alternates too, so neither always runs on a warmer cache.
        const aFirst = i % 2 === 0
        const first = await (aFirst ? a : b).request(url)
        const second = await (aFirst ? b : a).request(url)
        if (i < 20) continue
        ta.push(aFirst ? first : second)
        tb.push(aFirst ? second : first)
      }
      timings.push({ url, small: stats(ta), large: stats(tb) })
    }
    await a.close()
    await b.close()
    return { small, large, messages: large * MESSAGES_PER_TICKET, timings }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
