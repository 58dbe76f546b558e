import nock from 'nock'
import t from 'tap'
import { classify, MessageBirdChannel } from '../../src/messaging/messagebird-channel.js'

const API = 'https://rest.messagebird.com'
const CONV = 'https://conversations.messagebird.com'

function channel (over: Partial<ConstructorParameters<typeof MessageBirdChannel>[0]> = {}): MessageBirdChannel {
  return new MessageBirdChannel({ apiKey: 'test_key_123', originator: '3197010260000', whatsappChannelId: null, timeoutMs: 1000, ...over })
}

const request = { messageId: '7f1c2a4e-0000-4000-8000-000000000001', channel: 'sms' as const, to: '+31612345678', body: 'Merci, ça va? 😀', reportUrl: 'https://support.example.com/webhooks/messagebird/status' }

t.before(() => nock.disableNetConnect())
t.afterEach(() => nock.cleanAll())
t.teardown(() => nock.enableNetConnect())

t.test('SMS: the exact request the SDK makes, and the provider id it returns', async (t) => {
  let seen: { body: unknown, headers: Record<string, string> } | null = null
  nock(API).post('/messages').reply(function (_uri, body) {
    seen = { body, headers: this.req.headers as Record<string, string> }
    return [201, { id: 'e8077d803532c0b5937c639b60216938', recipients: { totalCount: 1, items: [] } }]
  })
  const res = await channel().send(request)
  t.same(res, { ok: true, providerMessageId: 'e8077d803532c0b5937c639b60216938' })
  t.ok(seen)
  const s = seen as unknown as { body: Record<string, unknown>, headers: Record<string, string> }
  t.equal(s.headers.authorization, 'AccessKey test_key_123')
  t.same(s.body, {
    originator: '3197010260000',
    recipients: '31612345678',
    body: 'Merci, ça va? 😀',
    reference: request.messageId,
    datacoding: 'auto',
    reportUrl: 'https://support.example.com/webhooks/messagebird/status'
  }, 'reference is our message id, datacoding auto, recipient without +')
})

t.test('no reportUrl is sent when the public URL is unknown', async (t) => {
  let body: Record<string, unknown> = {}
  nock(API).post('/messages').reply(201, (_u, b) => { body = b as Record<string, unknown>; return { id: 'abc' } })
  await channel().send({ ...request, reportUrl: null })
  t.notOk('reportUrl' in body)
})

t.test('422 invalid recipient: permanent failure with MessageBird\'s own words', async (t) => {
  nock(API).post('/messages').reply(422, { errors: [{ code: 9, description: 'no (correct) recipients found', parameter: 'recipients' }] })
  t.same(await channel().send(request), { ok: false, failure: 'permanent', reason: 'no (correct) recipients found', code: '9' })
})

t.test('401 bad key: permanent failure that says what to check', async (t) => {
  nock(API).post('/messages').reply(401, { errors: [{ code: 2, description: 'Request not allowed (incorrect access_key)', parameter: 'access_key' }] })
  const res = await channel().send(request)
  t.match(res, { ok: false, failure: 'permanent', code: '2', reason: /incorrect access_key.*MESSAGEBIRD_API_KEY/ })
})

t.test('5xx with errors, 5xx without errors (the SDK calls that success), HTML 502 and 429 are all transient', async (t) => {
  nock(API).post('/messages').reply(500, { errors: [{ code: 99, description: 'internal error' }] })
  t.match(await channel().send(request), { ok: false, failure: 'transient', reason: 'internal error' })
  nock(API).post('/messages').reply(503, { message: 'Service Unavailable' })
  t.match(await channel().send(request), { ok: false, failure: 'transient', reason: /without a message id/ })
  nock(API).post('/messages').reply(502, '<html><body>Bad gateway</body></html>', { 'content-type': 'text/html' })
  t.match(await channel().send(request), { ok: false, failure: 'transient', reason: /HTTP 502/ })
  nock(API).post('/messages').reply(429, { errors: [{ code: 429, description: 'too many requests' }] })
  t.match(await channel().send(request), { ok: false, failure: 'transient' })
})

t.test('network errors before the request reached MessageBird are transient; others are ambiguous', async (t) => {
  // nock cannot emulate a refused connection faithfully, so feed classify() the error shape the
  // SDK builds for one: new Error('request failed: ' + e.message) with the socket error on .error.
  const sdkError = (code: string): Error => Object.assign(new Error(`request failed: connect ${code}`), { error: { code } })
  t.match(classify(sdkError('ECONNREFUSED')), { ok: false, failure: 'transient', code: 'ECONNREFUSED' })
  t.match(classify(sdkError('ENOTFOUND')), { ok: false, failure: 'transient', code: 'ENOTFOUND' })
  t.match(classify(sdkError('ECONNRESET')), { ok: false, failure: 'ambiguous', code: 'ECONNRESET' })
})

t.test('a timeout after the request was written is ambiguous, never blindly retried', async (t) => {
  nock(API).post('/messages').delay(1500).reply(201, { id: 'late' })
  const res = await channel({ timeoutMs: 100 }).send(request)
  t.match(res, { ok: false, failure: 'ambiguous', reason: /may have accepted/ })
})

t.test('the caller\'s request is not mutated by the SDK', async (t) => {
  nock(API).post('/messages').reply(201, { id: 'x1' })
  const req = { ...request }
  await channel().send(req)
  t.same(req, request)
})

t.test('WhatsApp goes through the Conversations API with our channel id', async (t) => {
  let body: Record<string, unknown> = {}
  nock(CONV).post('/v1/send').reply(202, (_u, b) => { body = b as Record<string, unknown>; return { id: 'conv-msg-1', status: 'accepted' } })
  const res = await channel({ whatsappChannelId: 'wa-channel-1' }).send({ ...request, channel: 'whatsapp', reportUrl: 'https://support.example.com/webhooks/messagebird/conversations' })
  t.same(res, { ok: true, providerMessageId: 'conv-msg-1' })
  t.same(body, { to: '+31612345678', from: 'wa-channel-1', type: 'text', content: { text: request.body }, reportUrl: 'https://support.example.com/webhooks/messagebird/conversations' })
  t.notOk(channel().supports('whatsapp'), 'not offered without a channel id')
})

t.test('MMS: mms.create with the media URL, our reference, the recipient without +', async (t) => {
  let body: Record<string, unknown> = {}
  nock(API).post('/mms').reply(201, (_u, b) => { body = b as Record<string, unknown>; return { id: 'mms-efa6405d' } })
  const res = await channel({ originator: '12025550100' }).send({ ...request, channel: 'mms', to: '+12025550123', body: 'Your receipt', mediaUrls: ['https://example.com/receipt.jpg'] })
  t.same(res, { ok: true, providerMessageId: 'mms-efa6405d' })
  t.same(body, { originator: '12025550100', recipients: '12025550123', reference: request.messageId, body: 'Your receipt', mediaUrls: ['https://example.com/receipt.jpg'] })
  t.ok(channel().supports('mms'))
})

t.test('MMS: media without text sends no body; a number outside the US and Canada is refused before any request', async (t) => {
  let body: Record<string, unknown> = {}
  nock(API).post('/mms').reply(201, (_u, b) => { body = b as Record<string, unknown>; return { id: 'm2' } })
  await channel().send({ ...request, channel: 'mms', to: '+14165550123', body: '', mediaUrls: ['https://example.com/a.png'] })
  t.notOk('body' in body, 'Toronto: sent, without a body')
  for (const to of ['+31612345678', '+18765550123']) {
    const res = await channel().send({ ...request, channel: 'mms', to, body: 'hi', mediaUrls: ['https://example.com/a.png'] })
    t.match(res, { ok: false, failure: 'permanent', code: 'MMS_NOT_OFFERED', reason: /US and Canadian numbers only/ }, to)
  }
  t.ok(nock.isDone())
})
