import nock from 'nock'
import t from 'tap'
import { buildTestApp } from '../helper.js'
import { apiClient } from '../api/api-helpers.js'

// POST /api/v1/messages with channel mms, through the outbox, to the real messagebird SDK (nock).
const ENV = { MESSAGEBIRD_API_KEY: 'test_key_123', MESSAGEBIRD_ORIGINATOR: '12025550100', PUBLIC_URL: 'https://support.example.com' }
const IMAGE = 'https://shop.example.com/receipts/42.jpg'

t.before(() => nock.disableNetConnect())
t.afterEach(() => nock.cleanAll())
t.teardown(() => nock.enableNetConnect())

t.test('an MMS with a media URL is sent with mms.create, and its delivery report (GET, by reference) is applied', async (t) => {
  const { app, services, db } = await buildTestApp(t, { env: ENV })
  const api = await apiClient(app, services)
  const res = await api.post('/api/v1/messages', { to: '+12025550123', channel: 'mms', text: 'Your receipt', media_url: IMAGE })
  t.equal(res.statusCode, 202, res.body)
  const messageId = res.json().message_uuid as string
  let body: Record<string, unknown> = {}
  nock('https://rest.messagebird.com').post('/mms').reply(201, (_u, b) => { body = b as Record<string, unknown>; return { id: 'mms-1' } })
  await services.worker.drain()
  t.same(body, { originator: '12025550100', recipients: '12025550123', reference: messageId, body: 'Your receipt', mediaUrls: [IMAGE] })
  const sent = await db.selectFrom('messages').select(['status', 'channel', 'provider_message_id']).where('id', '=', messageId).executeTakeFirstOrThrow()
  t.same(sent, { status: 'sent', channel: 'mms', provider_message_id: 'mms-1' })
  const report = await app.inject({ method: 'GET', url: `/webhooks/messagebird/status?id=mms-1&reference=${messageId}&recipient=12025550123&status=delivered&statusDatetime=2026-11-30T10:00:00%2B00:00` })
  t.equal(report.statusCode, 200)
  t.equal(report.json().matched, true)
  t.equal((await db.selectFrom('messages').select('status').where('id', '=', messageId).executeTakeFirstOrThrow()).status, 'delivered')
})

t.test('MMS requests that cannot be sent are a 422 that says why, and store nothing', async (t) => {
  const { app, services, db } = await buildTestApp(t, { env: ENV })
  const api = await apiClient(app, services)
  const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['outside the US and Canada', { to: '+31612345678', channel: 'mms', text: 'hi', media_url: IMAGE }, 'to', /US and Canadian numbers only/],
    ['no media_url', { to: '+12025550123', channel: 'mms', text: 'hi' }, 'media_url', /is required for channel "mms"/],
    ['http, not https', { to: '+12025550123', channel: 'mms', text: 'hi', media_url: 'http://shop.example.com/a.jpg' }, 'media_url', /must be an https URL/],
    ['not a URL', { to: '+12025550123', channel: 'mms', text: 'hi', media_url: 'receipt.jpg' }, 'media_url', /must be an https URL/],
    ['too long', { to: '+12025550123', channel: 'mms', text: 'hi', media_url: 'https://a.example/' + 'x'.repeat(2100) }, 'media_url', /2048/],
    ['media_url on sms', { to: '+12025550123', channel: 'sms', text: 'hi', media_url: IMAGE }, 'media_url', /only for channel "mms"/]
  ]
  for (const [name, payload, field, message] of cases) {
    const res = await api.post('/api/v1/messages', payload)
    t.equal(res.statusCode, 422, name)
    const details = (res.json().details ?? []) as Array<{ field: string, message: string }>
    t.ok(details.some((d) => d.field === field && message.test(d.message)), `${name}: ${res.body}`)
  }
  t.equal((await db.selectFrom('messages').select('id').execute()).length, 0)
  t.equal((await db.selectFrom('message_media').select('id').execute()).length, 0)
})
