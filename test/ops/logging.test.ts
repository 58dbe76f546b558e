import { Writable } from 'node:stream'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { buildApp } from '../../src/app.js'
import { BACKGROUND_ROUTES, forTerminal } from '../../src/ops/logging.js'
import { createAgent, FAST_HASH_ENV, loginForm, postLogin, cookieValue } from '../auth/agent-session.js'
import { FakeClock, freshDatabase, testConfig } from '../helper.js'

const TOKEN = 'metrics-token-0123456789abcdef'

class Lines extends Writable {
  readonly lines: string[] = []
  override _write (chunk: Buffer, _enc: string, done: () => void): void {
    this.lines.push(...chunk.toString().split('\n').filter((l) => l !== ''))
    done()
  }

  take (): Array<Record<string, unknown>> {
    return this.lines.splice(0).map((l) => JSON.parse(l) as Record<string, unknown>)
  }
}

/** The real app at `level`, its log written to `sink` as JSON lines, with an agent signed in. */
async function appLoggingAt (t: Test, level: 'info' | 'debug') {
  const { db, databaseUrl } = await freshDatabase(t)
  const config = testConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: level, METRICS_TOKEN: TOKEN, ...FAST_HASH_ENV })
  const sink = new Lines()
  const app = await buildApp({ config, db, clock: new FakeClock(), logger: { level, stream: sink } })
  t.teardown(async () => await app.close())
  const { services } = app
  services.worker.start()
  await createAgent(services)
  await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'seed-1', from: '+31612345678', to: null, text: 'hello', channel: 'sms' })
  const signedIn = await postLogin(app, await loginForm(app), { email: 'ada@example.com', password: 'correct horse battery staple' })
  const cookie = `textdesk_session=${cookieValue(signedIn, 'textdesk_session') ?? ''}`
  sink.take()
  return { app, sink, cookie }
}

const BACKGROUND_REQUESTS = ['/inbox/list', '/inbox/counts', '/tickets/1/timeline', '/tickets/1/conversation', '/simulator/conversation?number=%2B31612345678', '/healthz', '/readyz', '/metrics']

t.test('at info, the inbox\'s background refresh, health checks and scrapes write no request lines', async (t) => {
  const { app, sink, cookie } = await appLoggingAt(t, 'info')
  for (const url of BACKGROUND_REQUESTS) {
    const res = await app.inject({ method: 'GET', url, headers: { cookie, accept: 'text/html', authorization: `Bearer ${TOKEN}` } })
    t.equal(res.statusCode, 200, url)
  }
  t.same(sink.take(), [], 'an idle inbox tab polling every few seconds adds nothing to the log')

  await app.inject({ method: 'GET', url: '/inbox?view=open', headers: { cookie, accept: 'text/html' } })
  const page = sink.take()
  t.same(page.map((l) => l.msg), ['incoming request', 'request completed'], 'a page a person opens is logged as before')
})

t.test('at debug, the same requests are logged', async (t) => {
  const { app, sink, cookie } = await appLoggingAt(t, 'debug')
  for (const url of BACKGROUND_REQUESTS) {
    await app.inject({ method: 'GET', url, headers: { cookie, accept: 'text/html', authorization: `Bearer ${TOKEN}` } })
    const lines = sink.take().filter((l) => l.msg === 'request completed')
    t.equal(lines.length, 1, `${url} is logged at debug`)
  }
})

t.test('every background route named in the list exists, so a renamed route cannot slip back to info', async (t) => {
  const { app } = await appLoggingAt(t, 'info')
  for (const url of BACKGROUND_ROUTES) t.ok(app.hasRoute({ method: 'GET', url }), url)
})

t.test('a state change of readiness is logged once, whatever the level of the probe', async (t) => {
  const { app, sink } = await appLoggingAt(t, 'info')
  await app.services.worker.stop()
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 503)
  const lines = sink.take()
  t.equal(lines.length, 1, 'one line, not one per probe')
  t.match(lines[0], { level: 40, msg: 'not ready: outbox_worker', failed: ['outbox_worker'] })
  app.services.worker.start()
  await app.inject({ method: 'GET', url: '/readyz' })
  t.match(sink.take(), [{ level: 30, msg: 'ready again' }])
})

t.test('on a terminal: one readable line per entry; elsewhere the options are left as they are (JSON)', async (t) => {
  const base = { level: 'info' }
  t.equal(forTerminal(base, false), base, 'not a terminal: unchanged, so pino writes JSON')
  t.equal(forTerminal(false, true), false, 'logging off stays off')

  const screen = new Lines()
  const app = Fastify({ logger: forTerminal(base, true, screen) })
  app.log.info({ ticketId: 7, nested: { a: 1 } }, 'inbound message')
  app.log.warn('No agent account exists yet')
  await app.close()
  t.equal(screen.lines.length, 2, 'one line per entry')
  // Strip the colours to read the text.
  // eslint-disable-next-line no-control-regex
  const [info, warn] = screen.lines.map((l) => l.replace(/\u001b\[[0-9;]*m/g, ''))
  t.match(info, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: inbound message \{"ticketId":7,"nested":\{"a":1\}\}$/)
  t.match(warn, /^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: No agent account exists yet$/)
  t.throws(() => JSON.parse(screen.lines[0]), 'not JSON')
  t.notMatch(info, /pid|hostname/, 'no process noise')
})
