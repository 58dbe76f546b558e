import { createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import nock from 'nock'
import t, { type Test } from 'tap'
import type { Services } from '../../src/app.js'
import { buildTestApp, FakeClock, postgresOnly } from '../helper.js'
import { ManualChannel, runDue } from '../messaging/failover-helpers.js'
import { apiClient } from './api-helpers.js'

// The final `dispatch.status` callback: one per dispatch end, `completed` or `error`, the summed
// usage and every message with its channel and status, signed like every callback.

type Body = Record<string, any>
const SECRET = 'callback-secret-for-tests-0123456789'
const WHATSAPP_CHANNEL = '619747f69cf940a98fb443140ce9aed2'

async function receiver (t: Test) {
  const received: Array<{ headers: IncomingHttpHeaders, body: string }> = []
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => { body += c })
    req.on('end', () => {
      received.push({ headers: req.headers, body })
      res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => await new Promise<void>((resolve) => server.close(() => resolve())))
  const finals = () => received.filter((r) => r.headers['textdesk-event'] === 'dispatch.status')
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, received, finals }
}

/** The app on the MessageBird channel with the real SDK (nock answers MessageBird) and status callbacks on. */
async function messagebird (t: Test) {
  const hook = await receiver(t)
  nock.disableNetConnect()
  nock.enableNetConnect(/^127\.0\.0\.1/)
  let n = 0
  nock('https://rest.messagebird.com').post('/messages').reply(201, () => ({ id: `mb-sms-${++n}` })).persist()
  nock('https://conversations.messagebird.com').post('/v1/send').reply(200, () => ({ id: `mb-conv-${++n}`, status: 'accepted' })).persist()
  t.teardown(() => {
    nock.cleanAll()
    nock.enableNetConnect()
  })
  const clock = new FakeClock()
  const built = await buildTestApp(t, {
    clock,
    env: {
      SMS_CHANNEL: 'messagebird',
      MESSAGEBIRD_API_KEY: 'test_key',
      MESSAGEBIRD_ORIGINATORS: '3197010260000',
      MESSAGEBIRD_WHATSAPP_CHANNEL_ID: WHATSAPP_CHANNEL,
      PUBLIC_URL: 'https://support.example.com',
      STATUS_CALLBACK_URL: hook.url,
      STATUS_CALLBACK_SECRET: SECRET
    }
  })
  const api = await apiClient(built.app, built.services)
  /** MessageBird's SMS delivery report for the message sent to `to`, with its price. */
  const dlr = async (dispatchId: string, to: string, status: string, price: string) => {
    const m = await built.db.selectFrom('messages').selectAll().where('dispatch_id', '=', dispatchId).where('to_address', '=', to).executeTakeFirstOrThrow()
    const q = new URLSearchParams({ id: m.provider_message_id ?? '', reference: m.id, status, statusDatetime: clock.now().toISOString(), 'price[amount]': price, 'price[currency]': 'EUR' })
    const res = await built.app.inject({ method: 'GET', url: `/webhooks/messagebird/status?${q.toString()}` })
    t.equal(res.statusCode, 200)
  }
  return { ...built, clock, api, hook, dlr }
}

const bakery = (): Body => JSON.parse(readFileSync(new URL('../fixtures/dispatch-bakery-whatsapp-sms.json', import.meta.url), 'utf8')) as Body

t.test('the bakery fixture ends with one signed dispatch.status callback: completed, the summed usage, each message with its channel and status', async (t) => {
  const mb = await messagebird(t)
  const id = (await mb.api.post('/api/v1/dispatch', bakery())).json().dispatch_uuid as string
  await runDue(mb.services)
  mb.clock.advance(15_001)
  await runDue(mb.services)
  t.equal(mb.hook.finals().length, 0, 'no final report while the SMS step waits')
  await mb.dlr(id, '+31687654321', 'delivered', '0.0333')
  await runDue(mb.services)

  const finals = mb.hook.finals()
  t.equal(finals.length, 1, 'one final report')
  const [final] = finals
  const ts = final.headers['textdesk-timestamp'] as string
  t.equal(final.headers['textdesk-signature'], 'sha256=' + createHmac('sha256', SECRET).update(`${ts}.${final.body}`).digest('hex'), 'HMAC-SHA256 over "<timestamp>.<body>", like every callback')
  t.match(final.headers['textdesk-delivery-id'], /^[0-9a-f-]{36}$/)
  const body = JSON.parse(final.body) as Body
  const messages = await mb.db.selectFrom('messages').select(['id', 'channel']).where('dispatch_id', '=', id).orderBy('created_at').execute()
  t.same(body, {
    event: 'dispatch.status',
    timestamp: mb.clock.now().toISOString(),
    dispatch_uuid: id,
    template: 'failover',
    status: 'completed',
    ended_at: mb.clock.now().toISOString(),
    usage: { price: '0.0333', currency: 'EUR' },
    _links: {
      self: { href: `https://support.example.com/api/v1/dispatch/${id}` },
      messages: [
        { message_uuid: messages[0].id, href: `https://support.example.com/api/v1/messages/${messages[0].id}`, channel: 'whatsapp', status: 'sent', usage: null },
        { message_uuid: messages[1].id, href: `https://support.example.com/api/v1/messages/${messages[1].id}`, channel: 'sms', status: 'delivered', usage: { price: '0.0333', currency: 'EUR' } }
      ]
    }
  })
})

t.test('usage adds every message\'s price (the seeds\' 0.0020 + 0.0333); a dispatch whose last step fails reports `error`', async (t) => {
  const mb = await messagebird(t)
  const sms = (to: string, failover?: Body): Body => ({ from: { type: 'sms', number: '3197010260000' }, to: { type: 'sms', number: to }, message: { content: { type: 'text', text: 'Your cupcakes are ready' } }, ...(failover !== undefined ? { failover } : {}) })
  const twice = (await mb.api.post('/api/v1/dispatch', { template: 'failover', workflow: [sms('31612345671', { expiry_time: 15, condition_status: 'delivered' }), sms('31612345672')] })).json().dispatch_uuid as string
  const once = (await mb.api.post('/api/v1/dispatch', { template: 'failover', workflow: [sms('31612345673')] })).json().dispatch_uuid as string
  await runDue(mb.services)
  await mb.dlr(twice, '+31612345671', 'delivery_failed', '0.0020')
  await runDue(mb.services)
  await mb.dlr(twice, '+31612345672', 'delivered', '0.0333')
  await mb.dlr(once, '+31612345673', 'delivery_failed', '0.0710')
  await runDue(mb.services)
  const finals = new Map(mb.hook.finals().map((r) => { const b = JSON.parse(r.body) as Body; return [b.dispatch_uuid as string, b] }))
  t.equal(mb.hook.finals().length, 2)
  t.match(finals.get(twice), { status: 'completed', usage: { price: '0.0353', currency: 'EUR' }, _links: { messages: [{ channel: 'sms', status: 'failed' }, { channel: 'sms', status: 'delivered' }] } })
  t.match(finals.get(once), { status: 'error', usage: { price: '0.0710', currency: 'EUR' }, _links: { messages: [{ channel: 'sms', status: 'failed' }] } })
  t.equal((await mb.api.get(`/api/v1/dispatch/${once}`)).json().status, 'failed', 'GET keeps its own word for it')
})

/**
 * A report that meets a last step's condition and that step's deadline, at the same moment: one
 * would end the dispatch as completed, the other as failed, unless the end is claimed once.
 */
async function racingEnds (t: Test, apps: { reporter: Services, expirer: Services, post: (body: unknown) => Promise<{ json: () => Body }> }, clock: FakeClock, n = 20) {
  const ids: string[] = []
  for (let i = 0; i < n; i++) {
    const res = await apps.post({ template: 'failover', workflow: [{ to: { type: 'sms', number: `3161234${String(5000 + i)}` }, message: { content: { type: 'text', text: 'Your cupcakes are ready' } }, failover: { expiry_time: 15, condition_status: 'delivered' } }] })
    ids.push(res.json().dispatch_uuid as string)
  }
  await apps.reporter.worker.drain()
  const db = apps.reporter.db
  const messages = await db.selectFrom('messages').select(['id', 'provider_message_id']).where('dispatch_id', 'in', ids).execute()
  t.equal(messages.length, n)
  clock.advance(15_000)
  await Promise.all([
    apps.expirer.failover.fireDue(),
    ...messages.map(async (m) => await apps.reporter.status.applyReport({ provider: 'messagebird', reference: m.id, providerMessageId: m.provider_message_id, rawStatus: 'delivered', statusAt: clock.now().toISOString(), reason: null, errorCode: null, priceAmount: null, priceCurrency: null, segments: null, raw: {} }))
  ])
  const dispatches = await db.selectFrom('dispatches').select(['id', 'status']).where('id', 'in', ids).execute()
  const finals = (await db.selectFrom('outbox').select(['dispatch_id', 'payload']).where('kind', '=', 'status_callback').where('dispatch_id', 'in', ids).execute())
    .map((r) => ({ id: r.dispatch_id as string, body: JSON.parse((JSON.parse(r.payload as string) as { body: string }).body) as Body }))
    .filter((r) => r.body.event === 'dispatch.status')
  const outcome = { completed: 0, failed: 0 }
  for (const d of dispatches) {
    t.not(d.status, 'pending', 'every dispatch ended')
    const mine = finals.filter((f) => f.id === d.id)
    t.equal(mine.length, 1, 'exactly one final report per dispatch')
    t.equal(mine[0]?.body.status, d.status === 'failed' ? 'error' : 'completed', 'and it says how the dispatch ended')
    if (d.status === 'completed' || d.status === 'failed') outcome[d.status]++
  }
  t.comment(`completed by the report: ${outcome.completed}, failed by the deadline: ${outcome.failed}`)
}

const CALLBACKS = { STATUS_CALLBACK_URL: 'http://127.0.0.1:9/not-delivered-in-this-test', STATUS_CALLBACK_SECRET: SECRET }

t.test('a report and the deadline ending the same dispatch at once: one final report', async (t) => {
  const clock = new FakeClock()
  const { app, services } = await buildTestApp(t, { clock, channel: new ManualChannel(), env: CALLBACKS })
  const api = await apiClient(app, services)
  await racingEnds(t, { reporter: services, expirer: services, post: async (b) => await api.post('/api/v1/dispatch', b) }, clock)
})

t.test('two instances on one PostgreSQL database: a report on one and the deadline on the other end a dispatch once', postgresOnly('several instances on one database'), async (t) => {
  const clock = new FakeClock()
  const one = await buildTestApp(t, { clock, channel: new ManualChannel(), env: CALLBACKS })
  const two = await buildTestApp(t, { clock, channel: new ManualChannel(), env: CALLBACKS, databaseUrl: one.databaseUrl })
  const api = await apiClient(one.app, one.services)
  await racingEnds(t, { reporter: one.services, expirer: two.services, post: async (b) => await api.post('/api/v1/dispatch', b) }, clock)
})
