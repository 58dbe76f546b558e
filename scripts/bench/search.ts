import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { createDatabase } from '../../src/db/database.js'
import { migrateTo, migrateToLatest } from '../../src/db/migrate.js'

// npm run bench -- search: a desk with 1,000,000 messages on SQLite, searched through the real
// route (GET /inbox?q=…, full page, in process) by words and by phone numbers.

// BENCH_SEARCH_TICKETS: a smaller desk for trying the bench out; the README's figures are from the default.
const TICKETS = Number(process.env.BENCH_SEARCH_TICKETS ?? 100_000)
const MESSAGES_PER_TICKET = 10
const BATCH = 20_000

// What customers and agents write: everyday words, support words, and a long tail of rarer ones
// (product names, places, misspellings) so the index holds many terms, as a real one does.
const COMMON = ('the a to i is my and you for it of on in this that have not with be can we your please ' +
  'hi hello thanks thank yes no ok when where what why how will would could order delivery parcel package ' +
  'refund invoice payment account password login card bank address phone number email today tomorrow ' +
  'yesterday week still never already again help support question problem issue broken damaged wrong ' +
  'missing late arrived received sent cancel return exchange size colour price discount code voucher ' +
  'store app website update status tracking courier driver door neighbour box item items bought').split(' ')
const SYLLABLES = ['ka', 'lo', 'mi', 'ster', 'van', 'de', 'ber', 'gen', 'ol', 'ix', 'tra', 'no', 'vel', 'pa', 'ru', 'zen', 'dor', 'fi', 'qu', 'ash']

/** A deterministic pseudo-random sequence, so every run builds the same desk. */
function random (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6D2B79F5) >>> 0
    let x = s
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const rare: string[] = []
{
  const r = random(7)
  while (rare.length < 20_000) {
    let w = ''
    const n = 2 + Math.floor(r() * 3)
    for (let i = 0; i < n; i++) w += SYLLABLES[Math.floor(r() * SYLLABLES.length)]
    rare.push(w)
  }
}

/** A text of 4 to 30 words: mostly common words (Zipf-like), one in eight from the long tail, now and then an order number. */
function sentence (r: () => number): string {
  const n = 4 + Math.floor(r() * r() * 27)
  const words: string[] = []
  for (let i = 0; i < n; i++) {
    const p = r()
    if (p < 0.125) words.push(rare[Math.floor(rare.length * r() * r())])
    else if (p < 0.14) words.push(String(1000 + Math.floor(r() * 90_000)))
    else words.push(COMMON[Math.floor(COMMON.length * r() * r())])
  }
  const text = words.join(' ')
  return text.charAt(0).toUpperCase() + text.slice(1) + (r() < 0.3 ? '?' : '.')
}

const phoneOf = (i: number): string => '+3161' + String(1_000_000 + i).padStart(7, '0')

/**
 * Fills the database with TICKETS tickets of MESSAGES_PER_TICKET messages each, through prepared
 * inserts in transactions of BATCH messages: the full-text triggers index each one as the service's
 * own inserts do.
 */
export function seedSearchDesk (path: string): { seconds: number } {
  const t0 = performance.now()
  const db = new SQLite(path)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = OFF')
  const contact = db.prepare('insert into contacts (phone, created_at, updated_at) values (?, ?, ?)')
  const number = db.prepare('insert into contact_numbers (number, contact_id, created_at) values (?, ?, ?)')
  const ticket = db.prepare(`insert into tickets (contact_id, status, assignee_id, created_at, updated_at, closed_at, status_at, last_message_at, last_message_preview,
    last_message_direction, last_sender, message_count) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
  const message = db.prepare(`insert into messages (id, ticket_id, direction, kind, channel, from_address, to_address, body, provider, provider_message_id, agent_id, status, status_at, attempts, created_at, updated_at)
    values (?, ?, ?, ?, 'sms', ?, ?, ?, 'messagebird', ?, ?, ?, ?, 0, ?, ?)`)
  const r = random(42)
  const start = Date.parse('2025-01-01T00:00:00Z')
  const perBatch = BATCH / MESSAGES_PER_TICKET
  const batch = db.transaction((from: number) => {
    for (let i = from; i < Math.min(TICKETS, from + perBatch); i++) {
      const opened = start + i * 300_000
      const iso = (k: number): string => new Date(opened + k * 60_000).toISOString()
      const phone = phoneOf(i)
      const c = contact.run(phone, iso(0), iso(0)).lastInsertRowid
      number.run(phone, c, iso(0))
      const status = i % 100 < 90 ? 'closed' : i % 100 < 95 ? 'pending' : 'open'
      const bodies = Array.from({ length: MESSAGES_PER_TICKET }, () => sentence(r))
      const last = iso(MESSAGES_PER_TICKET - 1)
      const t = ticket.run(c, status, status === 'closed' ? 1 + (i % 3) : null, iso(0), last, status === 'closed' ? last : null, last, last,
        bodies[MESSAGES_PER_TICKET - 1].slice(0, 100), 'outbound', 'agent', MESSAGES_PER_TICKET).lastInsertRowid
      for (let k = 0; k < MESSAGES_PER_TICKET; k++) {
        const inbound = k % 2 === 0
        message.run(`s-${i}-${k}`, t, inbound ? 'inbound' : 'outbound', inbound ? 'customer' : 'reply', inbound ? phone : '+3197010260000', inbound ? '+3197010260000' : phone,
          bodies[k], `s-${i}-${k}`, inbound ? null : 1, inbound ? 'received' : 'delivered', iso(k), iso(k), iso(k))
      }
    }
  })
  for (let from = 0; from < TICKETS; from += perBatch) batch(from)
  db.exec('insert into ticket_counts (bucket, shard, n) select status, 0, count(*) from tickets where true group by status on conflict (bucket, shard) do update set n = excluded.n')
  db.pragma('wal_checkpoint(TRUNCATE)')
  db.close()
  return { seconds: (performance.now() - t0) / 1000 }
}

export interface SearchTiming { what: string, queries: string[], p50Ms: number, p99Ms: number, results: number }

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]

/** Builds the desk, then times each kind of search: `iterations` requests after 20 warm-up, queries rotating. */
export async function benchSearch (iterations = 200): Promise<{ tickets: number, messages: number, seedSeconds: number, databaseMb: number, timings: SearchTiming[], merges: SearchTiming[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'textdesk-search-bench-'))
  try {
    const path = join(dir, 'search.sqlite')
    const config = loadConfig({ NODE_ENV: 'production', LOG_LEVEL: 'silent', DATABASE_URL: `sqlite:${path}`, SMS_CHANNEL: 'simulator', ALLOW_SIMULATOR_IN_PRODUCTION: 'true', DEFAULT_COUNTRY: 'NL' })
    const setup = createDatabase(config)
    await migrateToLatest(setup)
    await setup.destroy()
    const seeded = seedSearchDesk(path)
    const databaseMb = statSync(path).size / 1024 / 1024

    const db = createDatabase(config)
    const app = await buildApp({ config, db })
    const agent = await app.services.agents.add({ email: 'bench@example.com', name: 'Bench', role: 'agent', password: 'benchmark-password-1' })
    const { token } = await app.services.sessions.create(agent.id)
    const headers = { cookie: `textdesk_session=${token}`, accept: 'text/html' }
    const r = random(99)
    const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]
    const someone = (): number => Math.floor(r() * TICKETS)
    const kinds: Array<{ what: string, query: () => string }> = [
      { what: 'word, common ("delivery", "refund", "parcel", "invoice")', query: () => pick(['delivery', 'refund', 'parcel', 'invoice']) },
      { what: 'word, rare (from the long tail)', query: () => rare[Math.floor(r() * 2000)] },
      { what: 'two words ("refund" + a common word)', query: () => `refund ${pick(['order', 'card', 'late', 'box'])}` },
      { what: 'word + filter (status=open)', query: () => `${pick(['delivery', 'refund', 'parcel'])}&status=open` },
      { what: 'phone, local format (06 …)', query: () => `06 ${phoneOf(someone()).slice(4)}` },
      { what: 'phone, last 4 digits', query: () => phoneOf(someone()).slice(-4) },
      { what: 'phone, international (+31 6 …)', query: () => `+31 6 ${phoneOf(someone()).slice(4)}` }
    ]
    const timings: SearchTiming[] = []
    for (const kind of kinds) {
      const times: number[] = []
      const seen: string[] = []
      let results = 0
      for (let i = 0; i < iterations + 20; i++) {
        const [q, extra] = kind.query().split('&')
        const url = `/inbox?view=open&q=${encodeURIComponent(q)}${extra === undefined ? '' : `&${extra}`}`
        const t0 = performance.now()
        const res = await app.inject({ method: 'GET', url, headers })
        const ms = performance.now() - t0
        if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}: ${res.body.slice(0, 300)}`)
        if (i < 20) continue
        times.push(ms)
        results += (res.body.match(/class="ticket-row result/g) ?? []).length
        if (seen.length < 4 && !seen.includes(q)) seen.push(q)
      }
      times.sort((a, b) => a - b)
      timings.push({ what: kind.what, queries: seen, p50Ms: percentile(times, 0.5), p99Ms: percentile(times, 0.99), results: results / iterations })
    }
    const merges = await timeMerges(app, headers, r)
    await app.close()
    return { tickets: TICKETS, messages: TICKETS * MESSAGES_PER_TICKET, seedSeconds: seeded.seconds, databaseMb, timings, merges }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const MERGE_PAIRS = 100

/**
 * Merges on the same desk, through the real routes (POST, the agent's CSRF token, JSON answers):
 * two customers who are the same person (numbers, tickets and consent move, in one transaction),
 * then the second customer's ticket of 10 messages into the first's (messages, notes, timeline,
 * counters and the search index move). Pairs of neighbouring customers whose tickets are closed,
 * so the customer merge does not merge their tickets itself.
 */
async function timeMerges (app: Awaited<ReturnType<typeof buildApp>>, headers: Record<string, string>, r: () => number): Promise<SearchTiming[]> {
  const page = await app.inject({ method: 'GET', url: '/inbox?view=open', headers })
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1]
  if (csrf === undefined) throw new Error(`no CSRF token on /inbox (HTTP ${page.statusCode})`)
  const post = { ...headers, accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': csrf }
  const customers: number[] = []
  const ticketMerges: number[] = []
  const used = new Set<number>()
  while (customers.length < MERGE_PAIRS) {
    const i = Math.floor(r() * (TICKETS - 1))
    if (i % 100 >= 89 || used.has(i) || used.has(i + 1)) continue
    used.add(i).add(i + 1)
    // Row ids follow the seeding order: customer i is contact i + 1 with ticket i + 1.
    const [keep, other] = [i + 1, i + 2]
    let t0 = performance.now()
    const a = await app.inject({ method: 'POST', url: `/contacts/${keep}/merge`, headers: post, payload: `other=${other}` })
    customers.push(performance.now() - t0)
    if (a.statusCode !== 200) throw new Error(`customer merge answered ${a.statusCode}: ${a.body.slice(0, 300)}`)
    t0 = performance.now()
    const b = await app.inject({ method: 'POST', url: `/tickets/${other}/merge`, headers: post, payload: `into=${keep}` })
    ticketMerges.push(performance.now() - t0)
    if (b.statusCode !== 200 || (JSON.parse(b.body) as { mergedInto: number }).mergedInto !== keep) throw new Error(`ticket merge answered ${b.statusCode}: ${b.body.slice(0, 300)}`)
  }
  const timing = (what: string, times: number[]): SearchTiming => {
    const sorted = [...times].sort((x, y) => x - y)
    return { what, queries: [], p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), results: times.length }
  }
  return [timing('merge two customers (POST /contacts/:id/merge)', customers), timing('merge a ticket of 10 messages into another (POST /tickets/:id/merge)', ticketMerges)]
}

/**
 * What the full-text index costs each stored message: the same inserts (10,000 messages in
 * transactions of `batch`: 12 is the service's average group-commit batch under the ingestion
 * bench's load, larger under more) into a database with the index and one migrated to just before
 * it, in alternation (A B A B …) so both see the same machine. Microseconds per message, median of
 * the rounds. FTS5 writes a new segment of its index at each commit, so the cost per message falls
 * as batches grow.
 */
export async function indexCostPerMessage (batch: number, rounds = 6, messages = 10_000): Promise<{ withIndexUs: number, withoutIndexUs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'textdesk-search-cost-'))
  try {
    const open = async (name: string, latest: boolean): Promise<SQLite.Database> => {
      const path = join(dir, name)
      const config = loadConfig({ NODE_ENV: 'production', LOG_LEVEL: 'silent', DATABASE_URL: `sqlite:${path}`, SMS_CHANNEL: 'simulator', ALLOW_SIMULATOR_IN_PRODUCTION: 'true' })
      const db = createDatabase(config)
      if (latest) await migrateToLatest(db)
      else await migrateTo(db, '20261212T0900-team-inbox')
      await db.destroy()
      const sqlite = new SQLite(path)
      sqlite.pragma('journal_mode = WAL')
      sqlite.pragma('synchronous = NORMAL')
      sqlite.pragma('temp_store = MEMORY')
      // A contact's phone and its entry in contact_numbers point at each other (checked at commit).
      sqlite.exec(`begin;
        insert into contacts (phone, created_at, updated_at) values ('+31611111111', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z');
        insert into contact_numbers (number, contact_id, created_at) values ('+31611111111', 1, '2026-01-01T00:00:00.000Z');
        insert into tickets (contact_id, status, created_at, updated_at, last_message_at, last_message_preview, last_message_direction)
          values (1, 'open', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', '', 'inbound');
        commit;`)
      return sqlite
    }
    const withIndex = await open('with.sqlite', true)
    const withoutIndex = await open('without.sqlite', false)
    const r = random(5)
    const bodies = Array.from({ length: messages }, () => sentence(r))
    const timeInserts = (db: SQLite.Database, round: number): number => {
      const insert = db.prepare(`insert into messages (id, ticket_id, direction, kind, channel, from_address, to_address, body, status, status_at, attempts, created_at, updated_at)
        values (?, 1, 'inbound', 'customer', 'sms', '+31611111111', '+3197010260000', ?, 'received', '2026-01-01T00:00:00.000Z', 0, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')`)
      const unit = db.transaction((from: number) => {
        for (let i = from; i < Math.min(messages, from + batch); i++) insert.run(`r${round}-${i}`, bodies[i])
      })
      const t0 = performance.now()
      for (let from = 0; from < messages; from += batch) unit(from)
      return (performance.now() - t0) * 1000 / messages
    }
    const a: number[] = []
    const b: number[] = []
    for (let round = 0; round < rounds; round++) {
      if (round % 2 === 0) { a.push(timeInserts(withIndex, round)); b.push(timeInserts(withoutIndex, round)) } else { b.push(timeInserts(withoutIndex, round)); a.push(timeInserts(withIndex, round)) }
    }
    withIndex.close()
    withoutIndex.close()
    const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
    return { withIndexUs: median(a), withoutIndexUs: median(b) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
