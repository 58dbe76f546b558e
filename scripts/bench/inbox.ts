import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { createDatabase } from '../../src/db/database.js'
import { migrateToLatest } from '../../src/db/migrate.js'

/** Fills a database with `n` open tickets (one contact and one inbound message each), fast. */
function seed (path: string, n: number): void {
  const db = new SQLite(path)
  db.pragma('journal_mode = WAL')
  const contact = db.prepare('insert into contacts (phone, created_at, updated_at) values (?, ?, ?)')
  const number = db.prepare('insert into contact_numbers (number, contact_id, created_at) values (?, ?, ?)')
  const ticket = db.prepare("insert into tickets (contact_id, status, created_at, updated_at, last_message_at, last_message_preview, last_message_direction, message_count) values (?, 'open', ?, ?, ?, ?, 'inbound', 1)")
  const message = db.prepare("insert into messages (id, ticket_id, direction, kind, channel, from_address, to_address, body, provider, provider_message_id, status, status_at, attempts, created_at, updated_at) values (?, ?, 'inbound', 'customer', 'sms', ?, '+3197010260000', ?, 'messagebird', ?, 'received', ?, 0, ?, ?)")
  const start = Date.parse('2026-01-01T00:00:00Z')
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const at = new Date(start + i * 1000).toISOString()
      const phone = '+3161' + String(1000000 + i).padStart(7, '0')
      const c = contact.run(phone, at, at).lastInsertRowid
      number.run(phone, c, at)
      const t = ticket.run(c, at, at, at, `Question number ${i} about my order`).lastInsertRowid
      message.run(`seed-${i}`, t, phone, `Question number ${i} about my order`, `seed-${i}`, at, at, at)
    }
  })()
  db.close()
}

/** Median and p95 time of GET /inbox (first page) with `n` open tickets in the database. */
export async function timeInbox (n: number, iterations = 200): Promise<{ tickets: number, medianMs: number, p95Ms: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'textdesk-inbox-bench-'))
  try {
    const path = join(dir, 'inbox.sqlite')
    const config = loadConfig({ NODE_ENV: 'production', LOG_LEVEL: 'silent', DATABASE_URL: `sqlite:${path}`, SMS_CHANNEL: 'simulator', ALLOW_SIMULATOR_IN_PRODUCTION: 'true' })
    const db = createDatabase(config)
    await migrateToLatest(db)
    seed(path, n)
    const app = await buildApp({ config, db })
    const agent = await app.services.agents.add({ email: 'bench@example.com', name: 'Bench', role: 'agent', password: 'benchmark-password-1' })
    const { token } = await app.services.sessions.create(agent.id)
    const headers = { cookie: `textdesk_session=${token}`, accept: 'text/html' }
    const times: number[] = []
    for (let i = 0; i < iterations + 20; i++) {
      const t0 = performance.now()
      const res = await app.inject({ method: 'GET', url: '/inbox', headers })
      const ms = performance.now() - t0
      if (res.statusCode !== 200) throw new Error(`/inbox answered ${res.statusCode}`)
      if (i >= 20) times.push(ms)
    }
    await app.close()
    times.sort((a, b) => a - b)
    return { tickets: n, medianMs: times[Math.floor(times.length / 2)], p95Ms: times[Math.floor(times.length * 0.95)] }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
