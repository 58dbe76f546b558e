import { readFileSync } from 'node:fs'
import nock from 'nock'
import t, { type Test } from 'tap'
import { totalUsage } from '../../src/api/api-views.js'
import { workflowProblems } from '../../src/messaging/failover.js'
import { buildTestApp, FakeClock } from '../helper.js'
import { runDue } from '../messaging/failover-helpers.js'
import { apiClient } from './api-helpers.js'

// The seeds' Dispatch examples, posted as the documents write them (ids and numbers filled in,
// test/fixtures/dispatch-*.json), through the real app and the real `messagebird` SDK; nock
// answers MessageBird and records what the SDK sent.

type Body = Record<string, any>
const fixture = (name: string): Body => JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as Body
const copy = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T

const WHATSAPP_CHANNEL = '619747f69cf940a98fb443140ce9aed2'
// The default sender is the first; the fixtures' SMS steps choose the second.
const MB_ENV = {
  SMS_CHANNEL: 'messagebird',
  MESSAGEBIRD_API_KEY: 'test_key',
  MESSAGEBIRD_ORIGINATORS: 'Bakery,+3197010260000',
  MESSAGEBIRD_WHATSAPP_CHANNEL_ID: WHATSAPP_CHANNEL,
  PUBLIC_URL: 'https://support.example.com'
}

/** The app on the MessageBird channel (built from configuration, as in production) with MessageBird answered by nock. */
async function messagebird (t: Test, opts: { env?: Record<string, string>, clock?: FakeClock, databaseUrl?: string, refuseFirstSms?: boolean } = {}) {
  nock.disableNetConnect()
  const sms: Body[] = []
  const sent: Body[] = []
  if (opts.refuseFirstSms === true) nock('https://rest.messagebird.com').post('/messages').reply(422, { errors: [{ code: 9, description: 'no (correct) recipients found', parameter: 'recipients' }] })
  nock('https://rest.messagebird.com').post('/messages').reply(201, (_uri, body) => {
    sms.push(body as Body)
    return { id: `mb-sms-${sms.length}` }
  }).persist()
  nock('https://conversations.messagebird.com').post('/v1/send').reply(200, (_uri, body) => {
    sent.push(body as Body)
    return { id: `mb-conv-${sent.length}`, status: 'accepted' }
  }).persist()
  t.teardown(() => {
    nock.cleanAll()
    nock.enableNetConnect()
  })
  const clock = opts.clock ?? new FakeClock()
  const built = await buildTestApp(t, { clock, databaseUrl: opts.databaseUrl, env: { ...MB_ENV, ...opts.env } })
  const api = await apiClient(built.app, built.services)
  return { ...built, clock, api, sms, conversations: sent }
}

async function counts (built: { db: Awaited<ReturnType<typeof buildTestApp>>['db'] }) {
  const n = async (table: 'dispatches' | 'messages') => Number((await built.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n)
  return { dispatches: await n('dispatches'), messages: await n('messages') }
}

t.test('the bakery fixture (WhatsApp, then SMS), verbatim: the WhatsApp send, then the SMS from the step\'s sender once the condition is missed', async (t) => {
  const mb = await messagebird(t)
  const body = fixture('dispatch-bakery-whatsapp-sms.json')
  const res = await mb.api.post('/api/v1/dispatch', body)
  t.equal(res.statusCode, 202, res.body)
  const id = res.json().dispatch_uuid as string

  await mb.services.worker.drain()
  t.same(mb.conversations, [{
    to: '+31612345678',
    from: WHATSAPP_CHANNEL,
    type: 'text',
    content: { text: 'Your cupcakes are ready for collection' },
    reportUrl: 'https://support.example.com/webhooks/messagebird/conversations'
  }], 'conversations.send from the step\'s channel id to the customer')
  t.equal(mb.sms.length, 0, 'no SMS while the WhatsApp message may still be delivered')

  mb.clock.advance(14_999)
  await runDue(mb.services)
  t.equal(mb.sms.length, 0, 'not before expiry_time (15 s)')
  mb.clock.advance(2)
  await runDue(mb.services)
  t.equal(mb.sms.length, 1, 'the SMS fallback after the missed condition')
  t.match(mb.sms[0], { originator: '3197010260000', recipients: '31687654321', body: 'Message retry. Your cupcakes are ready for collection' }, 'from.number chose the second originator, not the default')

  const state = await mb.api.get(`/api/v1/dispatch/${id}`)
  t.match(state.json(), { status: 'pending', current_step: 1, workflow: [{ channel: 'whatsapp', status: 'expired', to: '+31612345678' }, { channel: 'sms', status: 'active', to: '+31687654321' }] })
  const stored = await mb.db.selectFrom('messages').select(['channel', 'from_address']).where('dispatch_id', '=', id).orderBy('created_at').execute()
  t.same(stored.map((m) => [m.channel, m.from_address]), [['whatsapp', WHATSAPP_CHANNEL], ['sms', '3197010260000']], 'each message keeps its sender')
})

t.test('the Messenger fixture, verbatim: accepted in shape, refused while Messenger is not configured', async (t) => {
  const mb = await messagebird(t)
  const res = await mb.api.post('/api/v1/dispatch', fixture('dispatch-messenger-sms.json'))
  t.equal(res.statusCode, 422)
  t.same(res.json().details, [{ field: 'workflow[0].to.type', message: 'messenger is not configured on this server (MESSAGEBIRD_MESSENGER_CHANNEL_ID is not set)' }], 'only the channel: to.id, from.id, read and the SMS step are accepted as written')
  t.same(await counts(mb), { dispatches: 0, messages: 0 })
  t.equal(mb.conversations.length + mb.sms.length, 0)
})

t.test('the Messenger fixture, verbatim, on a configured Messenger channel: Messenger, then SMS when not read in 600 s', async (t) => {
  const body = fixture('dispatch-messenger-sms.json')
  const mb = await messagebird(t, { env: { MESSAGEBIRD_MESSENGER_CHANNEL_ID: body.workflow[0].from.id } })
  const res = await mb.api.post('/api/v1/dispatch', body)
  t.equal(res.statusCode, 202, res.body)
  await mb.services.worker.drain()
  t.match(mb.conversations, [{ to: '2512634942125187', from: body.workflow[0].from.id, type: 'text', content: { text: body.workflow[0].message.content.text } }])
  mb.clock.advance(600_001)
  await runDue(mb.services)
  t.match(mb.sms, [{ originator: '3197010260000', recipients: '31612345678', body: 'This is an SMS sent from the Dispatch API' }])
})

t.test('Viber Service Messages: the step is refused with 422 naming the step, the channel and the reason; nothing sent, nothing stored', async (t) => {
  const mb = await messagebird(t)
  for (const type of ['viber_service_msg', 'viber_sevice_msg']) {
    const body = fixture('dispatch-bakery-whatsapp-sms.json')
    // The seeds' announcement: a Viber Service Message waiting 600 s for `delivered`, then SMS.
    body.workflow[0] = { from: { type, id: '16273' }, to: { type, number: '31612345678' }, message: { content: { type: 'text', text: 'Your cupcakes are ready' } }, failover: { expiry_time: 600, condition_status: 'delivered' } }
    const res = await mb.api.post('/api/v1/dispatch', body)
    t.equal(res.statusCode, 422, type)
    t.match(res.json(), { error: 'VALIDATION_FAILED', message: /workflow\[0\]\.to\.type/ })
    t.same(res.json().details.map((d: Body) => d.field), ['workflow[0].to.type'], 'only the Viber step')
    t.match(res.json().details[0].message, new RegExp(`^${type} \\(Viber Service Messages\\) is not offered by the configured provider: MessageBird's Conversations API has no Viber channel\\. Nothing was sent`))
  }
  t.same(await counts(mb), { dispatches: 0, messages: 0 })
  t.equal(mb.conversations.length + mb.sms.length, 0, 'nothing went out in its place')
})

t.test('a `from` this account does not own is a 422 naming it; nothing sent, nothing stored', async (t) => {
  const mb = await messagebird(t)
  const base = fixture('dispatch-bakery-whatsapp-sms.json')
  const check = async (change: (b: Body) => void, field: string, message: RegExp) => {
    const body = copy(base)
    change(body)
    const res = await mb.api.post('/api/v1/dispatch', body)
    t.equal(res.statusCode, 422, field)
    t.same(res.json().details.map((d: Body) => d.field), [field])
    t.match(res.json().details[0].message, message)
  }
  await check((b) => { b.workflow[1].from.number = '31612340000' }, 'workflow[1].from.number', /^"31612340000" is not one of this account's senders \(MESSAGEBIRD_ORIGINATORS: Bakery, 3197010260000\)/)
  await check((b) => { b.workflow[1].from.number = 'Florist' }, 'workflow[1].from.number', /"Florist" is not one of this account's senders/)
  await check((b) => { b.workflow[0].from.id = '0123456789abcdef0123456789abcdef' }, 'workflow[0].from.id', /^"0123456789abcdef0123456789abcdef" is not this account's whatsapp channel \(its channel id is 619747f69cf940a98fb443140ce9aed2\)/)
  await check((b) => { b.workflow[0].from = { type: 'whatsapp', number: '3197010260000' } }, 'workflow[0].from.number', /whatsapp is sent from a MessageBird channel: give from.id/)
  await check((b) => { b.workflow[1].from = { type: 'sms', id: WHATSAPP_CHANNEL } }, 'workflow[1].from.id', /sms is sent from a number or sender name: give from.number/)
  t.same(await counts(mb), { dispatches: 0, messages: 0 })
  t.equal(mb.conversations.length + mb.sms.length, 0)

  const withPlus = copy(base)
  withPlus.workflow[1].from.number = '+3197010260000'
  t.equal((await mb.api.post('/api/v1/dispatch', withPlus)).statusCode, 202, 'a sender is the same with or without +')
})

t.test('without `from` the default sender goes out; the chosen sender survives a restart and an agent\'s retry', async (t) => {
  const clock = new FakeClock()
  const first = await messagebird(t, { clock, refuseFirstSms: true })
  const step = (from?: string) => ({ ...(from !== undefined ? { from: { type: 'sms', number: from } } : {}), to: { type: 'sms', number: '31612345678' }, message: { content: { type: 'text', text: 'Your cupcakes are ready' } } })
  t.equal((await first.api.post('/api/v1/dispatch', { template: 'failover', workflow: [step('3197010260000')] })).statusCode, 202)
  // A restart before the worker sent it: a second app on the same database sends it (nock, set up by the first, answers both).
  const second = await buildTestApp(t, { clock, databaseUrl: first.databaseUrl, env: MB_ENV })
  await second.services.worker.drain()
  const [message] = await second.db.selectFrom('messages').selectAll().where('kind', '=', 'notification').execute()
  t.equal(message.status, 'failed', 'MessageBird refused the first attempt')
  t.equal(message.from_address, '3197010260000')
  await second.services.tickets.retry(message.ticket_id, message.id, (await second.services.agents.add({ email: 'ann@example.com', name: 'Ann', role: 'agent', password: 'correct horse battery staple' })).id)
  await second.services.worker.drain()
  t.match(first.sms, [{ originator: '3197010260000', body: 'Your cupcakes are ready' }], 'the retry goes out from the same sender')

  t.equal((await first.api.post('/api/v1/dispatch', { template: 'failover', workflow: [step()] })).statusCode, 202)
  await second.services.worker.drain()
  t.equal(first.sms[1]?.originator, 'Bakery', 'no from: the first of MESSAGEBIRD_ORIGINATORS')
})

t.test('per-channel text limits of the Dispatch spec: 422 naming the step and the limit', async (t) => {
  const mb = await messagebird(t)
  const base = fixture('dispatch-bakery-whatsapp-sms.json')
  const withText = (i: number, text: string): Body => {
    const b = copy(base)
    b.workflow[i].message.content.text = text
    return b
  }
  const refused = async (body: Body, field: string, message: RegExp) => {
    const res = await mb.api.post('/api/v1/dispatch', body)
    t.equal(res.statusCode, 422, field)
    t.match(res.json().details.find((d: Body) => d.field === field)?.message, message, field)
  }
  await refused(withText(1, 'x'.repeat(1001)), 'workflow[1].message.content.text', /^is 1001 characters long; sms allows at most 1000$/)
  await refused(withText(0, 'x'.repeat(4097)), 'workflow[0].message.content.text', /^is 4097 characters long; whatsapp allows at most 4096$/)
  const messenger = fixture('dispatch-messenger-sms.json')
  messenger.workflow[0].message.content.text = 'x'.repeat(641)
  await refused(messenger, 'workflow[0].message.content.text', /^is 641 characters long; messenger allows at most 640$/)
  t.same(await counts(mb), { dispatches: 0, messages: 0 })
  t.equal((await mb.api.post('/api/v1/dispatch', withText(1, 'x'.repeat(1000)))).statusCode, 202, 'SMS: 1000 is allowed')
  t.equal((await mb.api.post('/api/v1/dispatch', withText(0, 'x'.repeat(4096)))).statusCode, 202, 'WhatsApp: 4096 is allowed')
  const single = await mb.api.post('/api/v1/messages', { to: '31612345678', text: 'x'.repeat(1600) })
  t.equal(single.statusCode, 202, 'POST /api/v1/messages keeps its SMS limit of 1600 (about ten parts)')
})

t.test('`read` is allowed for WhatsApp and Messenger, refused for SMS and MMS with the reason', async (t) => {
  const mb = await messagebird(t)
  const body = fixture('dispatch-bakery-whatsapp-sms.json')
  const sms = copy(body)
  sms.workflow = [copy(sms.workflow[1]), copy(sms.workflow[1])]
  sms.workflow[0].failover = { expiry_time: 600, condition_status: 'read' }
  const res = await mb.api.post('/api/v1/dispatch', sms)
  t.equal(res.statusCode, 422)
  t.same(res.json().details, [{ field: 'workflow[0].failover.condition_status', message: '"read" cannot be used with sms: SMS delivery reports stop at delivered (a phone never reports that a text was read). Use "delivered"' }])
  t.match(workflowProblems([{ channel: 'mms', to: '+15551234567', body: 'x', failover: { condition: 'read', expirySeconds: 600 } }, { channel: 'sms', to: '+15551234567', body: 'x' }]), [{ field: 'workflow[0].failover.condition_status', message: /MMS delivery reports stop at delivered/ }])
  t.same(workflowProblems([{ channel: 'messenger', to: '2512634942125187', body: 'x', failover: { condition: 'read', expirySeconds: 600 } }, { channel: 'sms', to: '+15551234567', body: 'x' }]), [], 'messenger may wait for read')
  const whatsapp = copy(body)
  whatsapp.workflow[0].failover.condition_status = 'read'
  t.equal((await mb.api.post('/api/v1/dispatch', whatsapp)).statusCode, 202, 'whatsapp may wait for read')
})

t.test('a read report after the handover changes the first message\'s status, not the dispatch', async (t) => {
  const mb = await messagebird(t)
  const body = fixture('dispatch-bakery-whatsapp-sms.json')
  body.workflow[0].failover = { expiry_time: 60, condition_status: 'read' }
  const id = (await mb.api.post('/api/v1/dispatch', body)).json().dispatch_uuid as string
  await runDue(mb.services)
  mb.clock.advance(60_001)
  await runDue(mb.services)
  t.equal(mb.sms.length, 1, 'handed over to SMS')

  const report = await mb.app.inject({
    method: 'POST',
    url: '/webhooks/messagebird/conversations',
    payload: { type: 'message.updated', message: { id: 'mb-conv-1', platform: 'whatsapp', channelId: WHATSAPP_CHANNEL, direction: 'sent', status: 'read', type: 'text', content: { text: 'Your cupcakes are ready for collection' }, createdDatetime: mb.clock.now().toISOString(), updatedDatetime: mb.clock.now().toISOString() } }
  })
  t.equal(report.statusCode, 200)
  await runDue(mb.services)
  const state = (await mb.api.get(`/api/v1/dispatch/${id}`)).json()
  t.match(state, { status: 'pending', current_step: 1, workflow: [{ status: 'expired', message_status: 'read' }, { status: 'active', message_status: 'sent' }] }, 'the WhatsApp message is read; its step stays expired and the SMS step waits')
  t.equal(mb.sms.length, 1, 'nothing sent again')
})

t.test('totalUsage adds prices as exact decimals, per currency', async (t) => {
  const m = (price: string | null, currency: string | null = 'EUR') => ({ price_amount: price, price_currency: price === null ? null : currency })
  t.same(totalUsage([m('0.0020'), m('0.0333')]), { price: '0.0353', currency: 'EUR' }, 'the seeds\' example')
  t.same(totalUsage([m('0.1'), m('0.2')]), { price: '0.3', currency: 'EUR' })
  t.same(totalUsage([m('0.071'), m(null), m('1')]), { price: '1.071', currency: 'EUR' }, 'unpriced messages add nothing')
  t.same(totalUsage([m('0'), m('0')]), { price: '0', currency: 'EUR' })
  t.equal(totalUsage([m(null)]), null, 'no price reported')
  t.equal(totalUsage([m('0.07', 'EUR'), m('0.05', 'USD')]), null, 'not added across currencies')
})
