import nock from 'nock'
import t, { type Test } from 'tap'
import { buildTestApp, FakeClock } from '../helper.js'
import { createAgent, signIn } from '../auth/agent-session.js'
import { ManualChannel, runDue } from '../messaging/failover-helpers.js'
import { apiClient } from './api-helpers.js'

// MMS as a step of POST /api/v1/dispatch, through the real app and the real `messagebird` SDK:
// nock answers MessageBird and records the body of every mms.create, messages.create and
// conversations.send the SDK made.

type Body = Record<string, any>

const WHATSAPP_CHANNEL = '619747f69cf940a98fb443140ce9aed2'
// Two MMS-enabled US numbers; the first is the default sender. No PUBLIC_URL: an https one makes
// the sign-in cookies Secure, which inject() cannot carry back.
const MB_ENV = {
  MESSAGEBIRD_API_KEY: 'test_key',
  MESSAGEBIRD_ORIGINATORS: '+12025550100,+12025550199',
  MESSAGEBIRD_WHATSAPP_CHANNEL_ID: WHATSAPP_CHANNEL
}
const CUSTOMER = '12025550123'
const IMAGE = 'https://shop.example.com/receipts/42.jpg'

const whatsappStep = (text: string, failover: Body = { expiry_time: 60, condition_status: 'read' }): Body => ({
  from: { type: 'whatsapp', id: WHATSAPP_CHANNEL },
  to: { type: 'whatsapp', number: CUSTOMER },
  message: { content: { type: 'text', text } },
  failover
})
const mmsStep = (content: Body, extra: Body = {}): Body => ({ to: { type: 'mms', number: CUSTOMER }, message: { content }, ...extra })
const smsStep = (text: string): Body => ({ to: { type: 'sms', number: CUSTOMER }, message: { content: { type: 'text', text } } })

async function messagebird (t: Test, opts: { refuseMms?: boolean } = {}) {
  nock.disableNetConnect()
  const mms: Body[] = []
  const sms: Body[] = []
  const conversations: Body[] = []
  if (opts.refuseMms === true) nock('https://rest.messagebird.com').post('/mms').reply(422, { errors: [{ code: 9, description: 'no (correct) recipients found', parameter: 'recipients' }] })
  nock('https://rest.messagebird.com').post('/mms').reply(201, (_uri, body) => {
    mms.push(body as Body)
    return { id: `mb-mms-${mms.length}` }
  }).persist()
  nock('https://rest.messagebird.com').post('/messages').reply(201, (_uri, body) => {
    sms.push(body as Body)
    return { id: `mb-sms-${sms.length}` }
  }).persist()
  nock('https://conversations.messagebird.com').post('/v1/send').reply(200, (_uri, body) => {
    conversations.push(body as Body)
    return { id: `mb-conv-${conversations.length}`, status: 'accepted' }
  }).persist()
  t.teardown(() => {
    nock.cleanAll()
    nock.enableNetConnect()
  })
  const clock = new FakeClock()
  const built = await buildTestApp(t, { clock, env: MB_ENV })
  const api = await apiClient(built.app, built.services)
  return { ...built, clock, api, mms, sms, conversations }
}

type Mb = Awaited<ReturnType<typeof messagebird>>

/** A dispatch's messages in step order (a handover at once shares its millisecond with the first). */
async function messagesOf (mb: Mb, dispatchId: string) {
  return await mb.db.selectFrom('messages').innerJoin('dispatch_steps', 'dispatch_steps.message_id', 'messages.id')
    .select(['messages.id', 'messages.channel', 'messages.status', 'messages.body', 'messages.from_address'])
    .where('messages.dispatch_id', '=', dispatchId).orderBy('dispatch_steps.position').execute()
}

async function counts (mb: Mb) {
  const n = async (table: 'dispatches' | 'messages' | 'message_media') => Number((await mb.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n)
  return { dispatches: await n('dispatches'), messages: await n('messages'), media: await n('message_media') }
}

async function statusReport (t: Test, mb: Mb, id: string, reference: string, status: string) {
  const q = new URLSearchParams({ id, reference, recipient: CUSTOMER, status, statusDatetime: mb.clock.now().toISOString() })
  const res = await mb.app.inject({ method: 'GET', url: `/webhooks/messagebird/status?${q.toString()}` })
  t.equal(res.statusCode, 200, res.body)
}

t.test('WhatsApp → MMS: the WhatsApp step expires unread, then mms.create sends the image with its caption; the thread shows it through /media/', async (t) => {
  const mb = await messagebird(t)
  const res = await mb.api.post('/api/v1/dispatch', {
    template: 'failover',
    workflow: [
      whatsappStep('Your receipt for order 42 is ready'),
      mmsStep({ type: 'image', image: { url: IMAGE, caption: 'Your receipt for order 42' } }, { from: { type: 'mms', number: '12025550199' } })
    ]
  })
  t.equal(res.statusCode, 202, res.body)
  const id = res.json().dispatch_uuid as string
  await runDue(mb.services)
  t.match(mb.conversations, [{ to: `+${CUSTOMER}`, from: WHATSAPP_CHANNEL, type: 'text', content: { text: 'Your receipt for order 42 is ready' } }])
  t.equal(mb.mms.length, 0, 'no MMS while the WhatsApp message may still be read')
  const step = await mb.db.selectFrom('dispatch_steps').select(['channel', 'body', 'media_url', 'from_address']).where('dispatch_id', '=', id).where('position', '=', 1).executeTakeFirstOrThrow()
  t.same(step, { channel: 'mms', body: 'Your receipt for order 42', media_url: IMAGE, from_address: '12025550199' }, 'the step keeps its image until it starts')

  mb.clock.advance(60_001)
  await runDue(mb.services)
  const [, mms] = await messagesOf(mb, id)
  t.match(mms, { channel: 'mms', status: 'sent', body: 'Your receipt for order 42', from_address: '12025550199' })
  t.same(mb.mms, [{ originator: '12025550199', recipients: CUSTOMER, reference: mms.id, body: 'Your receipt for order 42', mediaUrls: [IMAGE] }], 'mms.create: the chosen sender, the customer without +, the caption as body, the image, our id as reference')
  t.equal(mb.sms.length, 0)
  const media = await mb.db.selectFrom('message_media').select(['message_id', 'kind', 'url', 'position']).execute()
  t.same(media, [{ message_id: mms.id, kind: 'image', url: IMAGE, position: 0 }], 'the image is stored on the MMS message')

  await statusReport(t, mb, 'mb-mms-1', mms.id, 'delivered')
  await runDue(mb.services)
  t.match((await mb.api.get(`/api/v1/dispatch/${id}`)).json(), { status: 'completed', workflow: [{ channel: 'whatsapp', status: 'expired' }, { channel: 'mms', status: 'met', message_status: 'delivered' }] })

  await createAgent(mb.services)
  const agent = await signIn(mb.app, 'ada@example.com')
  const page = await agent.inject({ method: 'GET', url: `/tickets/${res.json().ticket_id as number}`, headers: { accept: 'text/html' } })
  t.equal(page.statusCode, 200)
  t.match(page.body, /<img src="\/media\/[0-9a-f-]{36}" alt="image"/, 'the thread shows the image through the media proxy')
  t.notMatch(page.body, 'shop.example.com', 'never the image\'s own URL')
})

t.test('WhatsApp → MMS: a WhatsApp step that fails hands over at once; the flat spelling (content.url, content.text) sends the same MMS from the default sender', async (t) => {
  const mb = await messagebird(t)
  const res = await mb.api.post('/api/v1/dispatch', {
    template: 'failover',
    workflow: [whatsappStep('Your order has shipped', { expiry_time: 600, condition_status: 'delivered' }), mmsStep({ type: 'image', url: IMAGE, text: 'Your order has shipped' })]
  })
  t.equal(res.statusCode, 202, res.body)
  const id = res.json().dispatch_uuid as string
  await runDue(mb.services)
  const failed = await mb.app.inject({
    method: 'POST',
    url: '/webhooks/messagebird/conversations',
    payload: { type: 'message.updated', message: { id: 'mb-conv-1', platform: 'whatsapp', channelId: WHATSAPP_CHANNEL, direction: 'sent', status: 'failed', type: 'text', content: { text: 'Your order has shipped' }, createdDatetime: mb.clock.now().toISOString(), updatedDatetime: mb.clock.now().toISOString() } }
  })
  t.equal(failed.statusCode, 200)
  await runDue(mb.services)
  const [, mms] = await messagesOf(mb, id)
  t.same(mb.mms, [{ originator: '12025550100', recipients: CUSTOMER, reference: mms.id, body: 'Your order has shipped', mediaUrls: [IMAGE] }], 'no from: the first of MESSAGEBIRD_ORIGINATORS')
  t.match((await mb.api.get(`/api/v1/dispatch/${id}`)).json(), { status: 'pending', current_step: 1, workflow: [{ status: 'failed' }, { status: 'active', message_status: 'sent' }] })
})

t.test('an image without text: mms.create carries the image alone, no body', async (t) => {
  const mb = await messagebird(t)
  const res = await mb.api.post('/api/v1/dispatch', { template: 'failover', workflow: [mmsStep({ type: 'image', image: { url: IMAGE } })] })
  t.equal(res.statusCode, 202, res.body)
  await runDue(mb.services)
  const [mms] = await messagesOf(mb, res.json().dispatch_uuid as string)
  t.same(mb.mms, [{ originator: '12025550100', recipients: CUSTOMER, reference: mms.id, mediaUrls: [IMAGE] }])
})

for (const how of ['a failed delivery report', 'MessageBird refusing it at once']) {
  t.test(`MMS → SMS: the MMS step fails (${how}), and the SMS goes out`, async (t) => {
    const mb = await messagebird(t, { refuseMms: how !== 'a failed delivery report' })
    const res = await mb.api.post('/api/v1/dispatch', {
      template: 'failover',
      workflow: [
        mmsStep({ type: 'image', image: { url: IMAGE, caption: 'Your receipt' } }, { failover: { expiry_time: 600, condition_status: 'delivered' } }),
        { ...smsStep('Your receipt is at https://shop.example.com/r/42'), from: { type: 'sms', number: '+12025550199' } }
      ]
    })
    t.equal(res.statusCode, 202, res.body)
    const id = res.json().dispatch_uuid as string
    await runDue(mb.services)
    if (how === 'a failed delivery report') {
      const [mms] = await messagesOf(mb, id)
      t.same(mb.mms, [{ originator: '12025550100', recipients: CUSTOMER, reference: mms.id, body: 'Your receipt', mediaUrls: [IMAGE] }])
      t.equal(mb.sms.length, 0, 'no SMS while the MMS may still be delivered')
      await statusReport(t, mb, 'mb-mms-1', mms.id, 'delivery_failed')
      await runDue(mb.services)
    } else {
      t.equal(mb.mms.length, 0, 'nock refused the one mms.create before recording any')
    }
    t.match(mb.sms, [{ originator: '12025550199', recipients: CUSTOMER, body: 'Your receipt is at https://shop.example.com/r/42' }], 'the SMS fallback, from the step\'s sender')
    t.equal(mb.sms.length, 1)
    t.match((await mb.api.get(`/api/v1/dispatch/${id}`)).json(), { status: 'pending', current_step: 1, workflow: [{ channel: 'mms', status: 'failed', message_status: 'failed' }, { channel: 'sms', status: 'active' }] })
    const media = await mb.db.selectFrom('message_media').innerJoin('messages', 'messages.id', 'message_media.message_id').select(['messages.channel', 'message_media.url']).execute()
    t.same(media, [{ channel: 'mms', url: IMAGE }], 'only the MMS carries the image')
  })
}

t.test('mms steps that cannot be sent are a 422 naming the field in the request\'s notation; nothing stored or sent', async (t) => {
  const mb = await messagebird(t)
  const refused = async (name: string, workflow: Body[], expected: Record<string, RegExp>) => {
    const res = await mb.api.post('/api/v1/dispatch', { template: 'failover', workflow })
    t.equal(res.statusCode, 422, name)
    const details = res.json().details as Array<{ field: string, message: string }>
    t.same(details.map((d) => d.field).sort(), Object.keys(expected).sort(), `${name}: only the bad fields (${res.body})`)
    for (const [field, message] of Object.entries(expected)) t.match(details.find((d) => d.field === field)?.message, message, `${name}: ${field}`)
  }
  const image = { type: 'image', image: { url: IMAGE, caption: 'Your receipt' } }
  const first = whatsappStep('Your receipt is ready')

  await refused('a number outside the US and Canada', [first, { ...mmsStep(image), to: { type: 'mms', number: '31612345678' } }],
    { 'workflow[1].to.number': /^MMS reaches US and Canadian numbers only \(\+1\): send this step as sms or whatsapp$/ })
  await refused('+1 but not the US or Canada (Jamaica)', [{ ...mmsStep(image), to: { type: 'mms', number: '+18765550123' } }],
    { 'workflow[0].to.number': /US and Canadian numbers only/ })
  await refused('an http URL', [first, mmsStep({ type: 'image', image: { url: 'http://shop.example.com/receipts/42.jpg' } })],
    { 'workflow[1].message.content.image.url': /^must be an https URL of at most 2048 characters$/ })
  await refused('a flat URL that is not a URL', [first, mmsStep({ type: 'image', url: 'receipt.jpg' })],
    { 'workflow[1].message.content.url': /^must be an https URL of at most 2048 characters$/ })
  await refused('a URL over 2048 characters', [first, mmsStep({ type: 'image', image: { url: 'https://a.example/' + 'x'.repeat(2040) } })],
    { 'workflow[1].message.content.image.url': /at most 2048 characters/ })
  await refused('no URL', [first, mmsStep({ type: 'image', image: { caption: 'Your receipt' } })],
    { 'workflow[1].message.content.image.url': /^is required on an mms step: the https URL of the image to send$/ })
  await refused('text content on an mms step', [first, mmsStep({ type: 'text', text: 'Your receipt' })],
    { 'workflow[1].message.content.type': /^must be "image" on an mms step/ })
  await refused('image content on an sms step', [first, { ...smsStep('x'), message: { content: image } }],
    { 'workflow[1].message.content.type': /^image content is sent as MMS: use to.type mms/ })
  await refused('image content on a whatsapp step', [{ ...first, message: { content: image } }, smsStep('Your receipt is ready')],
    { 'workflow[0].message.content.type': /^image content is sent as MMS: use to.type mms/ })
  await refused('a URL on text content', [first, { ...smsStep('Your receipt'), message: { content: { type: 'text', text: 'Your receipt', url: IMAGE } } }],
    { 'workflow[1].message.content.url': /is only for image content, which is sent as MMS/ })
  await refused('image.url and url that differ', [first, mmsStep({ type: 'image', image: { url: IMAGE }, url: 'https://shop.example.com/receipts/43.jpg' })],
    { 'workflow[1].message.content.url': /^differs from content.image.url/ })
  await refused('caption and text that differ', [first, mmsStep({ type: 'image', image: { url: IMAGE, caption: 'Your receipt' }, text: 'Your invoice' })],
    { 'workflow[1].message.content.text': /^differs from content.image.caption/ })
  await refused('a caption over the MMS body limit', [first, mmsStep({ type: 'image', image: { url: IMAGE, caption: 'x'.repeat(2001) } })],
    { 'workflow[1].message.content.image.caption': /^is 2001 characters long; mms allows at most 2000$/ })
  await refused('a from.number this account does not own', [first, mmsStep(image, { from: { type: 'mms', number: '12025550111' } })],
    { 'workflow[1].from.number': /^"12025550111" is not one of this account's senders \(MESSAGEBIRD_ORIGINATORS: 12025550100, 12025550199\)/ })
  await refused('from.id on an mms step', [first, mmsStep(image, { from: { type: 'mms', id: WHATSAPP_CHANNEL } })],
    { 'workflow[1].from.id': /mms is sent from a number or sender name: give from.number/ })
  await refused('read on an mms step', [mmsStep(image, { failover: { expiry_time: 600, condition_status: 'read' } }), smsStep('Your receipt is ready')],
    { 'workflow[0].failover.condition_status': /"read" cannot be used with mms: MMS delivery reports stop at delivered/ })
  await refused('an unknown content type', [first, mmsStep({ type: 'video', url: IMAGE })],
    { 'workflow[1].message.content.type': /^unknown content type \(text on every channel, image on an mms step\): must be one of "text", "image"$/ })

  t.same(await counts(mb), { dispatches: 0, messages: 0, media: 0 }, 'nothing stored')
  t.equal(mb.mms.length + mb.sms.length + mb.conversations.length, 0, 'nothing sent')

  t.equal((await mb.api.post('/api/v1/dispatch', { template: 'failover', workflow: [mmsStep({ type: 'image', image: { url: IMAGE, caption: 'x'.repeat(2000) } })] })).statusCode, 202, 'a caption of 2000 characters is allowed')
  t.equal((await mb.api.post('/api/v1/dispatch', { template: 'failover', workflow: [mmsStep({ type: 'image', image: { url: IMAGE, caption: 'Your receipt' }, url: IMAGE, text: 'Your receipt' })] })).statusCode, 202, 'both spellings, agreeing, are accepted')
  t.equal((await mb.api.post('/api/v1/dispatch', { template: 'failover', workflow: [mmsStep(image, { from: { type: 'mms', number: '+12025550199' } })] })).statusCode, 202, 'an owned sender, with +')
})

t.test('an mms step is refused while the channel cannot send MMS', async (t) => {
  const channel = new ManualChannel()
  const { app, services, db } = await buildTestApp(t, { channel })
  const api = await apiClient(app, services)
  const res = await api.post('/api/v1/dispatch', { template: 'failover', workflow: [mmsStep({ type: 'image', image: { url: IMAGE } })] })
  t.equal(res.statusCode, 422)
  t.same(res.json().details, [{ field: 'workflow[0].to.type', message: 'mms is not configured on this server' }])
  t.equal((await db.selectFrom('dispatches').select('id').execute()).length, 0)
  t.equal(channel.sent.length, 0)
})

t.test('an MMS step to a customer who texted STOP is never sent', async (t) => {
  const mb = await messagebird(t)
  const image = { type: 'image', image: { url: IMAGE, caption: 'Your receipt' } }

  // STOP while the WhatsApp step waits: at its expiry the MMS step is blocked and the dispatch fails.
  const res = await mb.api.post('/api/v1/dispatch', { template: 'failover', workflow: [whatsappStep('Your receipt is ready'), mmsStep(image)] })
  t.equal(res.statusCode, 202, res.body)
  const id = res.json().dispatch_uuid as string
  await runDue(mb.services)
  await mb.services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'stop-1', from: `+${CUSTOMER}`, to: null, text: 'STOP', channel: 'sms' })
  await runDue(mb.services)
  mb.clock.advance(60_001)
  await runDue(mb.services)
  const [, mms] = await messagesOf(mb, id)
  t.match(mms, { channel: 'mms', status: 'blocked' })
  t.match((await mb.api.get(`/api/v1/dispatch/${id}`)).json(), { status: 'failed', workflow: [{ status: 'expired' }, { status: 'failed', message_status: 'blocked' }] })

  // Already opted out: 409, nothing stored.
  const before = await counts(mb)
  const again = await mb.api.post('/api/v1/dispatch', { template: 'failover', workflow: [mmsStep(image)] })
  t.equal(again.statusCode, 409)
  t.match(again.json(), { error: 'RECIPIENT_OPTED_OUT', details: [{ field: 'workflow[0].to.number' }] })
  t.same(await counts(mb), before, 'nothing stored')
  await runDue(mb.services)
  t.equal(mb.mms.length, 0, 'mms.create was never called')
})

t.test('erasing the customer removes the image of their dispatch steps with the texts', async (t) => {
  const mb = await messagebird(t)
  const res = await mb.api.post('/api/v1/dispatch', { template: 'failover', workflow: [whatsappStep('Your receipt is ready'), mmsStep({ type: 'image', image: { url: IMAGE } })] })
  t.equal(res.statusCode, 202, res.body)
  const ticket = await mb.db.selectFrom('tickets').select('contact_id').where('id', '=', res.json().ticket_id as number).executeTakeFirstOrThrow()
  const admin = await createAgent(mb.services, { role: 'admin' })
  await mb.services.privacy.erase(ticket.contact_id, admin.id, 'ERASE')
  const steps = await mb.db.selectFrom('dispatch_steps').select(['body', 'media_url']).orderBy('position').execute()
  t.same(steps.map((s) => s.media_url), [null, null])
})
