import { join } from 'node:path'
import pg from 'pg'
import { buildApp } from '../../src/app.js'
import { systemClock } from '../../src/clock.js'
import { loadConfig } from '../../src/config.js'
import { createDatabase, type Db } from '../../src/db/database.js'
import { migrateToLatest } from '../../src/db/migrate.js'
import type { Channel } from '../../src/db/schema.js'
import type { ChannelAdapter, SendOutcome } from '../../src/messaging/channel.js'
import { loadWebhook, peakRssMb, SERVICE_ENV, startChild, stopChild, type LoadResult } from './load.js'

// npm run bench -- postgres: the service on PostgreSQL with one and two instances, a hand-written
// PostgreSQL reference, the same service on SQLite, and the outbox drained by one and by two
// workers. Needs a server: BENCH_DATABASE_URL or TEST_DATABASE_URL (a maintenance database such as
// postgres://postgres@127.0.0.1:5433/postgres); bench.ts starts a throwaway one when neither is set.

export interface IngestRun { label: string, load: LoadResult, stored: number, duplicates: number, tickets: number, confirmations: number, rssMb: number[] }
export interface PostgresBench {
  runs: IngestRun[]
  drain: { one: number, two: number, rows: number }
}

function urlFor (admin: string, name: string): string {
  const u = new URL(admin)
  u.pathname = `/${name}`
  return u.toString()
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
    const db = createDatabase({ database: { kind: 'postgres', url, poolSize: 2, statementTimeoutMs: 0, ssl: { mode: 'off', ca: null } } })
    await migrateToLatest(db)
    await db.destroy()
    return url
  }
  const warm = { seconds: 3, connections: opts.connections, senders: opts.senders, firstSender: 50_000 }
  const counts = async (url: string): Promise<Omit<IngestRun, 'label' | 'load' | 'rssMb'>> => {
    const c = new pg.Client({ connectionString: url })
    await c.connect()
    const n = async (q: string): Promise<number> => Number((await c.query<{ n: string }>(q)).rows[0].n)
    const measured = "between '+31612000000' and '+31612000999'"
    const r = {
      stored: await n(`select count(*) n from messages where direction = 'inbound' and from_address ${measured}`),
      duplicates: await n('select count(*) n from (select provider_message_id from messages where provider_message_id is not null group by provider, provider_message_id having count(*) > 1) d'),
      tickets: await n(`select count(*) n from tickets join contacts on contacts.id = tickets.contact_id where contacts.phone ${measured}`),
      confirmations: await n(`select count(*) n from messages where kind = 'confirmation' and to_address ${measured}`)
    }
    await c.end()
    return r
  }
  const runs: IngestRun[] = []
  try {
    // The service on PostgreSQL, one instance.
    {
      const url = await freshDatabase('one')
      const svc = await startChild(join(opts.dist, 'src/server.js'), { ...SERVICE_ENV, DATABASE_URL: url })
      await loadWebhook(`${svc.url}/webhooks/messagebird`, { ...warm, tag: 'one-warm' })
      const load = await loadWebhook(`${svc.url}/webhooks/messagebird`, { seconds: opts.seconds, connections: opts.connections, senders: opts.senders, tag: 'one' })
      const rss = peakRssMb(svc.child.pid as number)
      await stopChild(svc.child)
      runs.push({ label: 'service on PostgreSQL, 1 instance', load, rssMb: [rss], ...await counts(url) })
    }
    // Two instances on one database, the load split between them as a balancer would.
    {
      const url = await freshDatabase('two')
      const [a, b] = await Promise.all([startChild(join(opts.dist, 'src/server.js'), { ...SERVICE_ENV, DATABASE_URL: url }), startChild(join(opts.dist, 'src/server.js'), { ...SERVICE_ENV, DATABASE_URL: url })])
      const half = Math.max(1, Math.floor(opts.connections / 2))
      await Promise.all([loadWebhook(`${a.url}/webhooks/messagebird`, { ...warm, connections: half, tag: 'two-a-warm' }), loadWebhook(`${b.url}/webhooks/messagebird`, { ...warm, connections: half, tag: 'two-b-warm' })])
      // Both instances serve the same 1,000 senders, so first texts race across instances.
      const [la, lb] = await Promise.all([
        loadWebhook(`${a.url}/webhooks/messagebird`, { seconds: opts.seconds, connections: half, senders: opts.senders, tag: 'two-a' }),
        loadWebhook(`${b.url}/webhooks/messagebird`, { seconds: opts.seconds, connections: half, senders: opts.senders, tag: 'two-b' })
      ])
      const rss = [peakRssMb(a.child.pid as number), peakRssMb(b.child.pid as number)]
      await Promise.all([stopChild(a.child), stopChild(b.child)])
      const load: LoadResult = {
        requestsPerSec: la.requestsPerSec + lb.requestsPerSec,
        p50Ms: Math.max(la.p50Ms, lb.p50Ms),
        p99Ms: Math.max(la.p99Ms, lb.p99Ms),
        non2xx: la.non2xx + lb.non2xx,
        errors: la.errors + lb.errors,
        total2xx: la.total2xx + lb.total2xx
      }
      runs.push({ label: 'service on PostgreSQL, 2 instances (sum; p99 the worse)', load, rssMb: rss, ...await counts(url) })
    }
    // The hand-written reference on the same schema.
    {
      const url = await freshDatabase('ref')
      const ref = await startChild(join(opts.dist, 'scripts/bench/handwritten-pg-server.js'), { PORT: '0', DATABASE_URL: url })
      await loadWebhook(`${ref.url}/webhooks/messagebird`, { ...warm, tag: 'ref-warm' })
      const load = await loadWebhook(`${ref.url}/webhooks/messagebird`, { seconds: opts.seconds, connections: opts.connections, senders: opts.senders, tag: 'ref' })
      const rss = peakRssMb(ref.child.pid as number)
      await stopChild(ref.child)
      runs.push({ label: 'hand-written on PostgreSQL (Fastify + pg, one transaction per webhook)', load, rssMb: [rss], ...await counts(url) })
    }
    // The same service on SQLite, for comparison.
    {
      const path = join(opts.work, 'pg-part.sqlite')
      const svc = await startChild(join(opts.dist, 'src/server.js'), { ...SERVICE_ENV, DATABASE_URL: `sqlite:${path}` })
      await loadWebhook(`${svc.url}/webhooks/messagebird`, { ...warm, tag: 'sqlite-warm' })
      const load = await loadWebhook(`${svc.url}/webhooks/messagebird`, { seconds: opts.seconds, connections: opts.connections, senders: opts.senders, tag: 'sqlite' })
      const rss = peakRssMb(svc.child.pid as number)
      await stopChild(svc.child)
      runs.push({ label: 'the same service on SQLite', load, rssMb: [rss], stored: -1, duplicates: 0, tickets: -1, confirmations: -1 })
    }
    const drain = await drainRates(await freshDatabase('drain1'), await freshDatabase('drain2'))
    return { runs, drain }
  } finally {
    for (const name of created) await admin.query(`drop database if exists ${name} with (force)`).catch(() => {})
    await admin.end()
  }
}

/**
 * A provider that answers at once: the drain measures the database and the worker, not sends. Its
 * ids are unique across workers, as a real provider's are: with one counter per worker, two
 * workers' `b-1` collided on the (provider, id) index, the record of the outcome failed, and the
 * send was then rightly treated as unknown, which measured the failure path instead.
 */
class InstantChannel implements ChannelAdapter {
  readonly provider = 'bench'
  private n = 0
  constructor (private readonly worker: number) {}
  supports (channel: Channel): boolean { return channel === 'sms' }
  async send (): Promise<SendOutcome> { return { ok: true, providerMessageId: `b-${this.worker}-${++this.n}` } }
}

const DRAIN_ROWS = 3000

/** Queues DRAIN_ROWS sends, then drains them with one app's worker, and (on a second database) with two apps' workers at once. */
async function drainRates (oneUrl: string, twoUrl: string): Promise<PostgresBench['drain']> {
  const rate = async (url: string, workers: number): Promise<number> => {
    const apps = []
    for (let i = 0; i < workers; i++) {
      const config = loadConfig({ NODE_ENV: 'production', LOG_LEVEL: 'silent', DATABASE_URL: url, SMS_CHANNEL: 'simulator', ALLOW_SIMULATOR_IN_PRODUCTION: 'true' })
      const db: Db = createDatabase(config)
      apps.push(await buildApp({ config, db, clock: systemClock, channel: new InstantChannel(i) }))
    }
    const db = apps[0].services.db
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
    const started = performance.now()
    // Each worker drains until the outbox is empty: a claim that finds every due row locked by the
    // other worker returns nothing, which does not mean there is nothing left.
    const left = async (): Promise<number> => Number((await db.selectFrom('outbox').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n)
    await Promise.all(apps.map(async (app) => {
      while (await app.services.worker.drain() > 0 || await left() > 0) await new Promise((resolve) => setImmediate(resolve))
    }))
    const seconds = (performance.now() - started) / 1000
    const sent = Number((await db.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '=', 'sent').executeTakeFirstOrThrow()).n)
    for (const app of apps) await app.close()
    if (sent !== DRAIN_ROWS) throw new Error(`outbox drain with ${workers} worker(s): ${sent} of ${DRAIN_ROWS} messages ended sent`)
    return DRAIN_ROWS / seconds
  }
  const one = await rate(oneUrl, 1)
  const two = await rate(twoUrl, 2)
  return { one, two, rows: DRAIN_ROWS }
}
