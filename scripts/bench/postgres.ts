import { fork, type ChildProcess } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import SQLite from 'better-sqlite3'
import pg from 'pg'
import { loadConfig } from '../../src/config.js'
import { createDatabase, type Db } from '../../src/db/database.js'
import { migrateToLatest } from '../../src/db/migrate.js'
import { loadWebhook, peakRssMb, SERVICE_ENV, startChild, stopChild, type LoadResult } from './load.js'

// npm run bench -- postgres: the service on PostgreSQL with one and two instances, a hand-written
// PostgreSQL reference, the same service on SQLite, and the outbox drained by one and by two
// workers. Needs a server: BENCH_DATABASE_URL or TEST_DATABASE_URL (a maintenance database such as
// postgres://postgres@127.0.0.1:5433/postgres); bench.ts starts a throwaway one when neither is set.
//
// Every system gets the same traffic in the same order, so the ratios compare like with like:
//   1. a warm-up (JIT, caches) from senders measured nowhere else;
//   2. first texts: every request from a new sender, so each opens a ticket. The service also
//      sends each confirmation and records its delivery report meanwhile; the reference only
//      queues it (it has no sender), so this ratio is reported, with no target;
//   3. the 1,000 measured senders text once each (their tickets open, their confirmations go
//      out), and the run waits until the service's outbox is empty;
//   4. steady ingestion: texts from those 1,000 senders, each adding to their open ticket: the
//      bulk of a real desk's traffic, and the same work in both. The targets are judged here.
// An earlier version measured one mixed run of fixed length, whose mix depended on the speed
// measured (a slower system spent more of its run opening tickets); README "Performance" keeps
// its figures.

export interface IngestRun {
  label: string
  /** Phase 4, steady ingestion: the targets' run. */
  load: LoadResult
  /** Phase 2, first texts. */
  first: LoadResult
  /** Every webhook answered 2xx, all phases. */
  acknowledged: number
  /** Inbound messages stored, all phases (−1: not counted, SQLite). */
  stored: number
  duplicates: number
  /** For the 1,000 measured senders: one each expected. */
  tickets: number
  confirmations: number
  rssMb: number[]
}
export interface PostgresBench {
  runs: IngestRun[]
  /** Sends a second with one and with two workers: provider answering at once, and after latencyMs. */
  drain: { instant: { one: number, two: number }, latency: { one: number, two: number, ms: number }, rows: number }
}

function urlFor (admin: string, name: string): string {
  const u = new URL(admin)
  u.pathname = `/${name}`
  return u.toString()
}

/** The load of several instances, each driven at once by its own share of the connections: rates summed, latencies the worst. */
function combined (parts: LoadResult[]): LoadResult {
  return {
    requestsPerSec: parts.reduce((n, p) => n + p.requestsPerSec, 0),
    p50Ms: Math.max(...parts.map((p) => p.p50Ms)),
    p99Ms: Math.max(...parts.map((p) => p.p99Ms)),
    non2xx: parts.reduce((n, p) => n + p.non2xx, 0),
    errors: parts.reduce((n, p) => n + p.errors, 0),
    total2xx: parts.reduce((n, p) => n + p.total2xx, 0)
  }
}

/** Outbound work still waiting in a database (the service's outbox), or null when it cannot be read. */
type Pending = () => Promise<number>

async function runPhases (targets: string[], opts: { seconds: number, connections: number, senders: number }, tag: string, pending: Pending | null): Promise<{ first: LoadResult, steady: LoadResult, acknowledged: number }> {
  const share = Math.max(1, Math.floor(opts.connections / targets.length))
  const all = async (o: { seconds: number, senders: number, firstSender: number, phase: string }): Promise<LoadResult> =>
    combined(await Promise.all(targets.map(async (url, i) => await loadWebhook(`${url}/webhooks/messagebird`, { seconds: o.seconds, connections: share, senders: o.senders, firstSender: o.firstSender, tag: `${tag}-${o.phase}-${i}` }))))
  const warm = await all({ seconds: 3, senders: opts.senders, firstSender: 50_000, phase: 'warm' })
  // Far more senders than a run can reach: every request is somebody's first text.
  const first = await all({ seconds: opts.seconds, senders: 10_000_000, firstSender: 100_000, phase: 'first' })
  // Both instances serve the same senders, so first texts race across instances.
  const primes = await Promise.all(targets.map(async (url, i) => await loadWebhook(`${url}/webhooks/messagebird`, { seconds: 0, amount: opts.senders, connections: share, senders: opts.senders, tag: `${tag}-prime-${i}` })))
  if (pending !== null) {
    const until = Date.now() + 120_000
    while (await pending() > 0) {
      if (Date.now() > until) throw new Error(`${tag}: the outbox was not empty 120 s after the first texts`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
  const steady = await all({ seconds: opts.seconds, senders: opts.senders, firstSender: 0, phase: 'steady' })
  return { first, steady, acknowledged: [warm, first, ...primes, steady].reduce((n, r) => n + r.total2xx, 0) }
}

export async function benchPostgres (opts: { adminUrl: string, dist: string, work: string, seconds: number, connections: number, senders: number }): Promise<PostgresBench> {
  const admin = new pg.Pool({ connectionString: opts.adminUrl, max: 2 })
  const created: string[] = []
  const freshDatabase = async (tag: string): Promise<string> => {
    const name = `bench_${tag}_${process.pid}`
    await admin.query(`drop database if exists ${name} with (force)`)
    await admin.query(`create database ${name}`)
    created.push(name)
    const url = urlFor(opts.adminUrl, name)
    const db = createDatabase({ database: { kind: 'postgres', url, poolSize: 2, statementTimeoutMs: 0, ssl: { mode: 'off', ca: null }, preparedStatements: true } })
    await migrateToLatest(db)
    await db.destroy()
    return url
  }
  const outboxOf = (url: string): Pending => async () => {
    const c = new pg.Client({ connectionString: url })
    await c.connect()
    try {
      return Number((await c.query<{ n: string }>("select count(*) n from outbox where kind = 'send'")).rows[0].n)
    } finally {
      await c.end()
    }
  }
  const counts = async (url: string): Promise<Pick<IngestRun, 'stored' | 'duplicates' | 'tickets' | 'confirmations'>> => {
    const c = new pg.Client({ connectionString: url })
    await c.connect()
    const n = async (q: string): Promise<number> => Number((await c.query<{ n: string }>(q)).rows[0].n)
    const measured = "between '+31612000000' and '+31612000999'"
    const r = {
      stored: await n("select count(*) n from messages where direction = 'inbound'"),
      duplicates: await n('select count(*) n from (select provider_message_id from messages where provider_message_id is not null group by provider, provider_message_id having count(*) > 1) d'),
      tickets: await n(`select count(*) n from tickets join contacts on contacts.id = tickets.contact_id where contacts.phone ${measured}`),
      confirmations: await n(`select count(*) n from messages where kind = 'confirmation' and to_address ${measured}`)
    }
    await c.end()
    return r
  }
  const service = join(opts.dist, 'src/server.js')
  const runs: IngestRun[] = []
  try {
    // The service on PostgreSQL, one instance.
    {
      const url = await freshDatabase('one')
      const svc = await startChild(service, { ...SERVICE_ENV, DATABASE_URL: url })
      const r = await runPhases([svc.url], opts, 'one', outboxOf(url))
      const rss = peakRssMb(svc.child.pid as number)
      await stopChild(svc.child)
      runs.push({ label: 'service on PostgreSQL, 1 instance', load: r.steady, first: r.first, acknowledged: r.acknowledged, rssMb: [rss], ...await counts(url) })
    }
    // Two instances on one database, the load split between them as a balancer would.
    {
      const url = await freshDatabase('two')
      const [a, b] = await Promise.all([startChild(service, { ...SERVICE_ENV, DATABASE_URL: url }), startChild(service, { ...SERVICE_ENV, DATABASE_URL: url })])
      const r = await runPhases([a.url, b.url], opts, 'two', outboxOf(url))
      const rss = [peakRssMb(a.child.pid as number), peakRssMb(b.child.pid as number)]
      await Promise.all([stopChild(a.child), stopChild(b.child)])
      runs.push({ label: 'service on PostgreSQL, 2 instances (sum; p99 the worse)', load: r.steady, first: r.first, acknowledged: r.acknowledged, rssMb: rss, ...await counts(url) })
    }
    // The hand-written reference on the same schema: it queues confirmations and never sends them.
    {
      const url = await freshDatabase('ref')
      const ref = await startChild(join(opts.dist, 'scripts/bench/handwritten-pg-server.js'), { PORT: '0', DATABASE_URL: url })
      const r = await runPhases([ref.url], opts, 'ref', null)
      const rss = peakRssMb(ref.child.pid as number)
      await stopChild(ref.child)
      runs.push({ label: 'hand-written on PostgreSQL (Fastify + pg, one transaction per webhook)', load: r.steady, first: r.first, acknowledged: r.acknowledged, rssMb: [rss], ...await counts(url) })
    }
    // The same service on SQLite, for comparison.
    {
      const path = join(opts.work, 'pg-part.sqlite')
      const svc = await startChild(service, { ...SERVICE_ENV, DATABASE_URL: `sqlite:${path}` })
      const r = await runPhases([svc.url], opts, 'sqlite', async () => {
        const file = new SQLite(path, { readonly: true })
        try {
          return (file.prepare("select count(*) n from outbox where kind = 'send'").get() as { n: number }).n
        } finally {
          file.close()
        }
      })
      const rss = peakRssMb(svc.child.pid as number)
      await stopChild(svc.child)
      runs.push({ label: 'the same service on SQLite', load: r.steady, first: r.first, acknowledged: r.acknowledged, rssMb: [rss], stored: -1, duplicates: 0, tickets: -1, confirmations: -1 })
    }
    const drain = await drainRates(async (name) => await freshDatabase(name))
    return { runs, drain }
  } finally {
    for (const name of created) await admin.query(`drop database if exists ${name} with (force)`).catch(() => {})
    await admin.end()
  }
}

const DRAIN_ROWS = 3000
/** A provider's answer time over the internet (MessageBird's REST API from Europe is of this order). */
const PROVIDER_LATENCY_MS = 100

/**
 * Queues DRAIN_ROWS sends, then drains them with one worker process, and (on a second database)
 * with two worker processes at once: two instances' workers, each in its own process as deployed
 * (scripts/bench/drain-worker.ts). Timed from `go` until both have emptied the outbox.
 */
export async function drainRates (database: (name: string) => Promise<string>): Promise<PostgresBench['drain']> {
  const rate = async (url: string, workers: number, latencyMs: number): Promise<number> => {
    const config = loadConfig({ NODE_ENV: 'production', LOG_LEVEL: 'silent', DATABASE_URL: url, SMS_CHANNEL: 'simulator', ALLOW_SIMULATOR_IN_PRODUCTION: 'true' })
    const db: Db = createDatabase(config)
    const now = new Date().toISOString()
    // The rows a burst of new tickets leaves: one queued confirmation and its outbox row each.
    for (let start = 0; start < DRAIN_ROWS; start += 500) {
      await db.transaction().execute(async (trx) => {
        const contacts = await trx.insertInto('contacts').values(Array.from({ length: 500 }, (_, i) => ({ phone: `+3161${String(5000000 + start + i)}`, created_at: now, updated_at: now }))).returning('id').execute()
        await trx.insertInto('contact_numbers').values(contacts.map((c, i) => ({ number: `+3161${String(5000000 + start + i)}`, contact_id: c.id, created_at: now }))).execute()
        const tickets = await trx.insertInto('tickets').values(contacts.map((c) => ({ contact_id: c.id, status: 'open', created_at: now, updated_at: now, last_message_at: now, last_message_preview: 'x', last_message_direction: 'inbound', message_count: 1 }))).returning(['id', 'contact_id']).execute()
        const ids = tickets.map((_, i) => `drain-${start + i}-${workers}`)
        await trx.insertInto('messages').values(tickets.map((t, i) => ({ id: ids[i], ticket_id: t.id, direction: 'outbound', kind: 'confirmation', channel: 'sms', from_address: null, to_address: `+3161${String(5000000 + start + i)}`, body: 'Thanks', status: 'queued', status_at: now, attempts: 0, created_at: now, updated_at: now }))).execute()
        await trx.insertInto('outbox').values(ids.map((id) => ({ kind: 'send', message_id: id, run_at: now, created_at: now }))).execute()
      })
    }
    const script = join(dirname(fileURLToPath(import.meta.url)), 'drain-worker.js')
    const children = Array.from({ length: workers }, (_, i) => fork(script, [url, String(i), String(latencyMs)], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
    // A worker that exits before saying `done` fails the run; one that has said it may exit while
    // the other still drains.
    const finished = new Set<ChildProcess>()
    const exited = (child: ChildProcess): Promise<never> => new Promise((_resolve, reject) => child.once('exit', (code) => { if (!finished.has(child)) reject(new Error(`drain worker exited (${code}) before it was done`)) }))
    const failed = children.map(exited)
    await Promise.race([Promise.all(children.map(async (child) => await new Promise<void>((resolve) => child.once('message', () => resolve())))), ...failed])
    const started = performance.now()
    const done = Promise.all(children.map(async (child) => await new Promise<void>((resolve) => child.once('message', () => { finished.add(child); child.disconnect(); resolve() }))))
    for (const child of children) child.send('go')
    await Promise.race([done, ...failed])
    const seconds = (performance.now() - started) / 1000
    await Promise.all(children.map(async (child) => child.exitCode !== null ? undefined : await new Promise((resolve) => child.once('exit', resolve))))
    const sent = Number((await db.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '=', 'sent').executeTakeFirstOrThrow()).n)
    await db.destroy()
    if (sent !== DRAIN_ROWS) throw new Error(`outbox drain with ${workers} worker(s): ${sent} of ${DRAIN_ROWS} messages ended sent`)
    return DRAIN_ROWS / seconds
  }
  const instant = { one: await rate(await database('drain1'), 1, 0), two: await rate(await database('drain2'), 2, 0) }
  const latency = { one: await rate(await database('drain3'), 1, PROVIDER_LATENCY_MS), two: await rate(await database('drain4'), 2, PROVIDER_LATENCY_MS), ms: PROVIDER_LATENCY_MS }
  return { instant, latency, rows: DRAIN_ROWS }
}
