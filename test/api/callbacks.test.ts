import { createHmac } from 'node:crypto'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { signCallback } from '../../src/api/status-callbacks.js'
import { buildTestApp, FakeClock } from '../helper.js'
import { runDue } from '../messaging/failover-helpers.js'
import { apiClient, bakeryWorkflow } from './api-helpers.js'

const SECRET = 'callback-secret-for-tests-0123456789'

interface Received { headers: IncomingHttpHeaders, body: string }

/** A status-callback receiver on 127.0.0.1 that answers with the next status in `answers` (then 200). */
async function receiver (t: Test, answers: number[] = []) {
  const received: Received[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => { body += c })
    req.on('end', () => {
      received.push({ headers: req.headers, body })
      res.statusCode = answers.shift() ?? 200
      res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => await new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/textdesk`, received }
}

const env = (url: string): Record<string, string> => ({ STATUS_CALLBACK_URL: url, STATUS_CALLBACK_SECRET: SECRET, STATUS_CALLBACK_BACKOFF_BASE_MS: '1000', STATUS_CALLBACK_MAX_ATTEMPTS: '4' })

t.test('every status change of an API message is POSTed, signed over timestamp and body', async (t) => {
  const clock = new FakeClock()
  const hook = await receiver(t)
  const { app, services } = await buildTestApp(t, { clock, env: env(hook.url) })
  const api = await apiClient(app, services)
  const res = await api.post('/api/v1/messages', { to: '31612345678', text: 'Your cupcakes are ready' })
  await runDue(services)
  await runDue(services)
  const events = hook.received.map((r) => JSON.parse(r.body) as Record<string, unknown>)
  t.same(events.map((e) => e.status), ['sent', 'delivered'], 'one callback per status change')
  for (const r of hook.received) {
    const ts = r.headers['textdesk-timestamp'] as string
    t.equal(ts, String(Math.floor(clock.now().getTime() / 1000)))
    const expected = 'sha256=' + createHmac('sha256', SECRET).update(`${ts}.${r.body}`).digest('hex')
    t.equal(r.headers['textdesk-signature'], expected, 'HMAC-SHA256 over "<timestamp>.<body>"')
    t.equal(r.headers['textdesk-event'], 'message.status')
    t.match(r.headers['textdesk-delivery-id'], /^[0-9a-f-]{36}$/)
    t.match(r.headers['content-type'], /application\/json/)
  }
  t.match(events[1], { event: 'message.status', message_uuid: res.json().message_uuid, status: 'delivered', usage: { price: '0.0710', currency: 'EUR' }, _links: { self: { href: `/api/v1/messages/${res.json().message_uuid as string}` } } })
  t.not(hook.received[0].headers['textdesk-delivery-id'], hook.received[1].headers['textdesk-delivery-id'])

  await services.tickets.reply(res.json().ticket_id, 'an agent reply', null)
  await runDue(services)
  await runDue(services)
  t.equal(hook.received.length, 2, 'agents\' replies are not reported to the business system')
})

t.test('a receiver that is down gets the same delivery again with backoff, until it answers 2xx', async (t) => {
  const clock = new FakeClock()
  const hook = await receiver(t, [500, 503])
  const { app, services, db } = await buildTestApp(t, { clock, env: { ...env(hook.url), SIMULATOR_DELIVERY_DELAY_MS: '600000' } })
  const api = await apiClient(app, services)
  await api.post('/api/v1/messages', { to: '31612345678', text: 'hi' })
  await runDue(services)
  t.equal(hook.received.length, 1)
  let [row] = await db.selectFrom('outbox').selectAll().where('kind', '=', 'status_callback').execute()
  t.equal(row.attempts, 1)
  t.equal(row.last_error, 'receiver answered HTTP 500')
  const wait1 = Date.parse(row.run_at) - clock.now().getTime()
  t.ok(wait1 >= 500 && wait1 <= 1000, `first retry after base/2..base: ${wait1} ms`)
  t.equal(await services.worker.drain(), 0, 'not before its time')
  clock.advance(1000)
  await runDue(services)
  t.equal(hook.received.length, 2)
  ;[row] = await db.selectFrom('outbox').selectAll().where('kind', '=', 'status_callback').execute()
  const wait2 = Date.parse(row.run_at) - clock.now().getTime()
  t.ok(wait2 >= 1000 && wait2 <= 2000, `the backoff doubles: ${wait2} ms`)
  clock.advance(2000)
  await runDue(services)
  t.equal(hook.received.length, 3)
  t.equal((await db.selectFrom('outbox').selectAll().where('kind', '=', 'status_callback').execute()).length, 0, 'delivered, so removed')
  const ids = new Set(hook.received.map((r) => r.headers['textdesk-delivery-id']))
  t.equal(ids.size, 1, 'the delivery id is stable across retries')
  t.equal(new Set(hook.received.map((r) => r.body)).size, 1, 'the body too')
  t.same(hook.received.map((r) => r.headers['textdesk-attempt']), ['1', '2', '3'])
  for (const r of hook.received) {
    t.equal(r.headers['textdesk-signature'], signCallback(SECRET, r.headers['textdesk-timestamp'] as string, r.body), 'each attempt is signed with its own timestamp')
  }
})

t.test('an unreachable receiver is retried, then given up after STATUS_CALLBACK_MAX_ATTEMPTS', async (t) => {
  const clock = new FakeClock()
  const { app, services, db } = await buildTestApp(t, { clock, env: { ...env('http://127.0.0.1:9/nothing-listens-here'), SIMULATOR_DELIVERY_DELAY_MS: '600000' } })
  const api = await apiClient(app, services)
  await api.post('/api/v1/messages', { to: '31612345678', text: 'hi' })
  await runDue(services)
  let [row] = await db.selectFrom('outbox').selectAll().where('kind', '=', 'status_callback').execute()
  t.match(row.last_error, /could not reach the receiver/)
  for (let i = 0; i < 3; i++) {
    clock.advance(60_000)
    await runDue(services)
  }
  ;[row] = await db.selectFrom('outbox').selectAll().where('kind', '=', 'status_callback').execute()
  t.equal(row, undefined, 'dropped after 4 attempts (and logged)')
})

t.test('a dispatch reports each message and its own end, in the shape of a Dispatch final report', async (t) => {
  const clock = new FakeClock()
  const hook = await receiver(t)
  const { app, services } = await buildTestApp(t, { clock, env: env(hook.url) })
  services.simulator?.setMode('+31612345671', 'failing')
  const api = await apiClient(app, services)
  const res = await api.post('/api/v1/dispatch', bakeryWorkflow())
  await runDue(services)
  await runDue(services)
  const events = hook.received.map((r) => JSON.parse(r.body) as Record<string, any>)
  const dispatchEvents = events.filter((e) => e.event === 'dispatch.status')
  t.equal(dispatchEvents.length, 1)
  t.match(dispatchEvents[0], { dispatch_uuid: res.json().dispatch_uuid, template: 'failover', status: 'completed' })
  t.match(dispatchEvents[0]._links.messages, [{ channel: 'sms', status: 'failed' }, { channel: 'sms', status: 'delivered', usage: { price: '0.0710' } }])
  const messageStatuses = events.filter((e) => e.event === 'message.status').map((e) => `${e.to as string}:${e.status as string}`)
  t.same(messageStatuses.sort(), ['+31612345671:failed', '+31612345672:delivered', '+31612345672:sent'].sort())
  t.ok(events.filter((e) => e.event === 'message.status').every((e) => e.dispatch_uuid === res.json().dispatch_uuid))
})

t.test('without STATUS_CALLBACK_URL nothing is queued', async (t) => {
  const { app, services, db } = await buildTestApp(t)
  const api = await apiClient(app, services)
  await api.post('/api/v1/messages', { to: '31612345678', text: 'hi' })
  await runDue(services)
  t.equal((await db.selectFrom('outbox').selectAll().where('kind', '=', 'status_callback').execute()).length, 0)
})
