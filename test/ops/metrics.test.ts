import type { FastifyInstance } from 'fastify'
import { CompiledQuery, sql } from 'kysely'
import t from 'tap'
import type { MessageStatus } from '../../src/db/schema.js'
import { outboxBacklog } from '../../src/messaging/outbox-repository.js'
import { metricsServer } from '../../src/ops/metrics.js'
import { createAgent, loginForm, postLogin } from '../auth/agent-session.js'
import { buildTestApp, FakeClock, form, testEngine } from '../helper.js'

const TOKEN = 'metrics-token-0123456789abcdef'
const AUTH = { authorization: `Bearer ${TOKEN}` }
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

type Labels = Record<string, string>

/** Every sample of the Prometheus text format, as name + labels → value. */
function parse (text: string): Array<{ name: string, labels: Labels, value: number }> {
  const samples = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null) throw new Error(`not a Prometheus sample line: ${line}`)
    const labels: Labels = {}
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v
    samples.push({ name: m[1], labels, value: Number(m[3]) })
  }
  return samples
}

async function scrape (app: FastifyInstance) {
  const res = await app.inject({ method: 'GET', url: '/metrics', headers: AUTH })
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`)
  const samples = parse(res.body)
  return (name: string, labels: Labels = {}): number => {
    const matching = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    return matching.reduce((sum, s) => sum + s.value, 0)
  }
}

/** Resolves when a message reaches `status` (the status service tells its listeners in the same transaction). */
function statusReached (services: Awaited<ReturnType<typeof buildTestApp>>['services'], status: MessageStatus): Promise<void> {
  return new Promise((resolve) => {
    services.status.addListener(async (_trx, _message, s) => { if (s === status) resolve() })
  })
}

t.test('/metrics needs the bearer token; without METRICS_TOKEN it is not on the main port', async (t) => {
  const { app } = await buildTestApp(t, { env: { METRICS_TOKEN: TOKEN } })
  const none = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(none.statusCode, 401)
  t.equal(none.headers['www-authenticate'], 'Bearer realm="metrics"')
  t.match(none.json(), { error: 'UNAUTHENTICATED', message: /Bearer <METRICS_TOKEN>/ })
  t.equal((await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}x` } })).statusCode, 401, 'a wrong token')
  t.equal((await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: TOKEN } })).statusCode, 401, 'not a bearer header')
  const ok = await app.inject({ method: 'GET', url: '/metrics', headers: AUTH })
  t.equal(ok.statusCode, 200)
  t.match(ok.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.equal(ok.headers['cache-control'], 'no-store')

  const { app: plain } = await buildTestApp(t)
  t.equal((await plain.inject({ method: 'GET', url: '/metrics' })).statusCode, 404, 'no token: not served on the main port')
  const own = await metricsServer(plain, null)
  t.teardown(async () => await own.close())
  const res = await own.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200, 'the METRICS_PORT listener serves it without a token')
  t.match(res.body, /textdesk_inbound_messages_total/)
  t.equal((await own.inject({ method: 'GET', url: '/healthz' })).statusCode, 404, 'and nothing else')
})

t.test('real traffic moves every counter and histogram', async (t) => {
  const clock = new FakeClock()
  const { app, services } = await buildTestApp(t, { clock, env: { METRICS_TOKEN: TOKEN } })
  const before = await scrape(app)
  t.equal(before('textdesk_inbound_messages_total', { channel: 'sms' }), 0)
  t.equal(before('textdesk_outbound_messages_total', { channel: 'sms', status: 'delivered' }), 0, 'known series start at zero')

  // An inbound SMS, and MessageBird's retry of it.
  const inbound = { method: 'POST' as const, url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: '31612345678', payload: 'Where is my order?', id: 'mb-1' }) }
  t.equal((await app.inject(inbound)).statusCode, 200)
  t.equal((await app.inject(inbound)).json().duplicate, true)

  // Its confirmation goes out through the simulator and is delivered.
  const delivered = statusReached(services, 'delivered')
  t.equal(await services.worker.drain(), 1)
  await delivered

  // A send the provider rejects.
  services.simulator?.setMode('+31687654321', 'failing')
  await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: '31687654321', payload: 'hi', id: 'mb-2' }) })
  const failed = statusReached(services, 'failed')
  t.equal(await services.worker.drain(), 1)
  await failed

  // A failover workflow whose first step is rejected hands over to the second.
  const handedOver = statusReached(services, 'failed')
  const now = clock.now().toISOString()
  await services.db.transaction().execute(async (trx) => await services.failover.start(trx, {
    ticketId: 1,
    kind: 'notification',
    steps: [
      { channel: 'sms', to: '+31687654321', body: 'Your cupcakes are ready', failover: { condition: 'delivered', expirySeconds: 60 } },
      { channel: 'sms', to: '+31612345678', body: 'Your cupcakes are ready' }
    ]
  }, now))
  await services.worker.drain()
  await handedOver

  // A wrong password.
  await createAgent(services)
  const signIn = await postLogin(app, await loginForm(app), { email: 'ada@example.com', password: 'not the password' })
  t.equal(signIn.statusCode, 401)

  // Something waiting in the outbox: the second workflow step, due now; 42 s pass.
  clock.advance(42_000)

  const m = await scrape(app)
  t.equal(m('textdesk_inbound_messages_total', { channel: 'sms' }), 2, 'two inbound texts; the retry is not counted')
  t.equal(m('textdesk_outbound_messages_total', { channel: 'sms', status: 'delivered' }), 1, 'the confirmation delivered')
  t.equal(m('textdesk_outbound_messages_total', { channel: 'sms', status: 'failed' }), 2, 'the rejected confirmation and the rejected first step')
  t.equal(m('textdesk_provider_send_duration_seconds_count', { channel: 'sms', outcome: 'ok' }), 1)
  t.equal(m('textdesk_provider_send_duration_seconds_count', { channel: 'sms', outcome: 'permanent' }), 2)
  t.ok(m('textdesk_provider_send_duration_seconds_sum') >= 0)
  t.equal(m('textdesk_webhook_duration_seconds_count', { route: '/webhooks/messagebird', method: 'POST', status_code: '200' }), 3, 'every webhook answer is timed, retries included')
  t.equal(m('textdesk_webhook_duration_seconds_bucket', { route: '/webhooks/messagebird', method: 'POST', le: '+Inf' }), 3)
  t.equal(m('textdesk_failover_handovers_total'), 1)
  t.equal(m('textdesk_signin_failures_total'), 1)
  t.equal(m('textdesk_outbox_rows', { state: 'due' }), 1, 'the second step waits, since the worker is not running')
  t.equal(m('textdesk_outbox_oldest_due_age_seconds'), 42)
  t.ok(m('process_resident_memory_bytes') > 0, 'process memory')
  t.ok(m('nodejs_heap_size_used_bytes') > 0, 'heap')
  t.match((await app.inject({ method: 'GET', url: '/metrics', headers: AUTH })).body, /^nodejs_eventloop_lag_seconds \S+$/m, 'event-loop lag')

  await services.worker.drain()
  const after = await scrape(app)
  t.equal(after('textdesk_outbox_rows', { state: 'due' }), 0)
  t.equal(after('textdesk_outbox_oldest_due_age_seconds'), 0, 'nothing due: zero')
})

t.test('each app counts on its own registry', async (t) => {
  const { app: one } = await buildTestApp(t, { env: { METRICS_TOKEN: TOKEN } })
  const { app: two } = await buildTestApp(t, { env: { METRICS_TOKEN: TOKEN } })
  await one.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: '31612345678', payload: 'x', id: 'a-1' }) })
  t.equal((await scrape(one))('textdesk_inbound_messages_total'), 1)
  t.equal((await scrape(two))('textdesk_inbound_messages_total'), 0)
})

t.test('the outbox gauges are read through the outbox_due index, never by scanning the table', async (t) => {
  const { db } = await buildTestApp(t)
  // Capture the statements outboxBacklog really runs, then ask SQLite how it would run each.
  const compiled: CompiledQuery[] = []
  const spy = db.withPlugin({
    transformQuery: (args) => {
      compiled.push(db.getExecutor().compileQuery(args.node, args.queryId))
      return args.node
    },
    transformResult: async (args) => args.result
  })
  const now = new Date().toISOString()
  t.same(await outboxBacklog(spy, now), { due: 0, scheduled: 0, oldestDueRunAt: null })
  t.equal(compiled.length, 2)
  if (testEngine === 'postgres') {
    // PostgreSQL scans a table this small whatever its indexes; with sequential scans priced out,
    // a plan that still reads the whole table has no index it can use.
    await db.connection().execute(async (conn) => {
      await sql`set enable_seqscan = off`.execute(conn)
      for (const q of compiled) {
        const plan = await conn.executeQuery<{ 'QUERY PLAN': string }>(CompiledQuery.raw(`explain ${q.sql}`, [...q.parameters]))
        const lines = plan.rows.map((r) => r['QUERY PLAN'])
        t.ok(lines.some((l) => /(Index Only Scan using|Index Scan using|Bitmap Index Scan on) outbox_due\b/.test(l)) && !lines.some((l) => /Seq Scan/.test(l)), lines.join('; '))
      }
    })
    return
  }
  for (const q of compiled) {
    const plan = await db.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${q.sql}`, [...q.parameters]))
    const details = plan.rows.map((r) => r.detail)
    t.same(details.filter((d) => !/^SEARCH outbox USING COVERING INDEX outbox_due \(run_at[<>]\?\)$/.test(d)), [], details.join('; '))
  }
})
