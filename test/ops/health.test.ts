import Fastify from 'fastify'
import { sql } from 'kysely'
import t from 'tap'
import type { Channel } from '../../src/db/schema.js'
import type { ChannelAdapter, OutboundRequest, SendOutcome } from '../../src/messaging/channel.js'
import { healthRoutes, workerStaleAfterMs } from '../../src/ops/health.js'
import { buildTestApp, FakeClock, form, freshDatabase, openTestDatabase, testConfig, testEngine } from '../helper.js'

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

/** A provider whose sends hang until the test lets them go: a stuck worker. */
class HangingChannel implements ChannelAdapter {
  readonly provider = 'hanging'
  private release: (() => void) | null = null
  readonly started: Promise<void>
  private markStarted!: () => void

  constructor () {
    this.started = new Promise((resolve) => { this.markStarted = resolve })
  }

  supports (channel: Channel): boolean {
    return channel === 'sms'
  }

  async send (_req: OutboundRequest): Promise<SendOutcome> {
    this.markStarted()
    await new Promise<void>((resolve) => { this.release = resolve })
    return { ok: true, providerMessageId: 'hung-1' }
  }

  letGo (): void {
    this.release?.()
  }
}

t.test('/healthz answers without a session or the database, never cached', async (t) => {
  const { app } = await buildTestApp(t)
  const res = await app.inject({ method: 'GET', url: '/healthz', headers: { accept: 'text/html' } })
  t.equal(res.statusCode, 200, 'no redirect to /login: it needs no session')
  t.same(res.json(), { status: 'ok' })
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(res.headers['set-cookie'], undefined, 'no cookie')
  t.match(res.headers['content-security-policy'], /default-src 'none'/, 'the machine-facing header set')
  t.notOk(res.headers['x-ratelimit-limit'], 'not rate-limited')
})

t.test('/readyz: 200 with every check passing when the worker runs', async (t) => {
  const { app, services } = await buildTestApp(t)
  services.worker.start()
  const res = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  const body = res.json()
  t.equal(body.status, 'ready')
  t.match(body.checks, { database: { ok: true }, migrations: { ok: true }, outbox_worker: { ok: true } })
  t.type(body.checks.outbox_worker.seconds_since_poll, 'number')
  t.equal(body.checks.database.engine, testEngine, 'the engine that answered')
})

t.test('/readyz: 503 naming the outbox worker when it was never started or has been stopped', async (t) => {
  const { app, services } = await buildTestApp(t)
  const never = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(never.statusCode, 503)
  t.same(never.json().failed, ['outbox_worker'])

  services.worker.start()
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200)
  await services.worker.stop()
  const stopped = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(stopped.statusCode, 503)
  t.equal(stopped.headers['cache-control'], 'no-store')
  const body = stopped.json()
  t.equal(body.status, 'not_ready')
  t.same(body.failed, ['outbox_worker'], 'only the worker failed')
  t.match(body.checks.outbox_worker, { ok: false, message: /outbox worker is not running/ })
  t.match(body.checks.database, { ok: true })
  t.match(body.checks.migrations, { ok: true })
})

t.test('/readyz: 503 when the worker is stuck in a send for longer than its limit', async (t) => {
  const clock = new FakeClock()
  const channel = new HangingChannel()
  const { app, services, config } = await buildTestApp(t, { clock, channel })
  t.teardown(() => channel.letGo())
  await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: '31612345678', payload: 'hello', id: 'h-1' }) })
  services.worker.start()
  await channel.started

  const limit = workerStaleAfterMs(config)
  clock.advance(limit)
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200, 'at the limit: still alive')
  clock.advance(1)
  const stuck = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(stuck.statusCode, 503)
  t.same(stuck.json().failed, ['outbox_worker'])
  t.match(stuck.json().checks.outbox_worker.message, /has not polled or finished a send for \d+(\.\d)? s .*looks stuck/)

  channel.letGo()
  await services.worker.stop()
  services.worker.start()
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200, 'ready again once it runs')
})

t.test('/readyz: 503 naming the migration when the database lacks one', async (t) => {
  const { app, services, db } = await buildTestApp(t)
  services.worker.start()
  const last = await sql<{ name: string }>`select name from kysely_migration order by name desc limit 1`.execute(db)
  const name = last.rows[0].name
  await sql`delete from kysely_migration where name = ${name}`.execute(db)
  const res = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(res.statusCode, 503)
  const body = res.json()
  t.same(body.failed, ['migrations'])
  t.match(body.checks.migrations.message, new RegExp(`1 migration not applied \\(${name}\\).*npm run init-db`))
})

t.test('/readyz: 503 when the database does not answer in time; /healthz still answers', async (t) => {
  const fresh = await freshDatabase(t)
  // One connection, as SQLite has; on PostgreSQL a pool of one, or the wedged transaction below
  // would leave the check other connections to answer on.
  const db = testEngine === 'sqlite' ? fresh.db : openTestDatabase(fresh.databaseUrl, { DATABASE_POOL_SIZE: '1' })
  const config = testConfig()
  const app = Fastify()
  const deps = { db, worker: { heartbeat: () => ({ running: true, lastBeatAt: Date.now() }) }, clock: { now: () => new Date() }, config, log: app.log, databaseTimeoutMs: 50 }
  await app.register(async (scope) => await healthRoutes(scope, deps))
  t.teardown(async () => {
    await app.close()
    await db.destroy()
  })
  // A transaction that never ends holds the app's only connection, as a wedged batch would.
  let finish!: () => void
  const held = db.transaction().execute(async () => await new Promise<void>((resolve) => { finish = resolve }))
  const live = await app.inject({ method: 'GET', url: '/healthz' })
  t.equal(live.statusCode, 200, 'liveness does not touch the database')
  const res = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(res.statusCode, 503)
  t.same(res.json().failed, ['database', 'migrations'])
  t.match(res.json().checks.database.message, /did not answer within 50 ms/)
  finish()
  await held
  // The checks that gave up are still queued for the connection: let them finish first.
  await sql`select 1`.execute(db)
  // The default limit again: under a loaded CI machine the migration check alone can take more
  // than 50 ms on PostgreSQL, which would measure the machine, not the recovery.
  deps.databaseTimeoutMs = 5000
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200, 'ready once the database answers')
})

t.test('a load balancer polling fast is never rate-limited into failure', async (t) => {
  const { app, services } = await buildTestApp(t, { env: { WEBHOOK_RATE_LIMIT_PER_MINUTE: '1', API_RATE_LIMIT_PER_MINUTE: '1' } })
  services.worker.start()
  for (let i = 0; i < 20; i++) {
    t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
    t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200)
  }
  const head = await app.inject({ method: 'HEAD', url: '/healthz' })
  t.equal(head.statusCode, 200, 'HEAD works for checks that send it')
})
