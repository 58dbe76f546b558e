import { createHash, randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import nock from 'nock'
import t from 'tap'
import { FAST_HASH_ENV, signedInAgent } from '../auth/agent-session.js'
import { apiClient } from '../api/api-helpers.js'
import { buildTestApp, FakeClock, form } from '../helper.js'
import { insertMedia } from '../../src/media/media-repository.js'
import { mediaHeaders } from '../../src/media/media-routes.js'
import { MessageBirdChannel } from '../../src/messaging/messagebird-channel.js'
import { SimulatorChannel } from '../../src/messaging/simulator-channel.js'
import { PUBLIC_DIR } from '../../src/paths.js'

// The simulator's MMS: its channel sends MMS as MessageBird's MMS API does (US and Canada only,
// delivered, never read), its phone sends a bundled sample picture through the same ticket-service
// path as the inbound MMS webhook, and GET /media/:id serves those pictures from the fixed list,
// while no webhook or API request can store a `simulator:` URL.

const FORM = { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }
const HTML = { accept: 'text/html' }
const US = '+12025550123'

t.test('the simulated provider refuses an MMS outside the US and Canada with MessageBird\'s own outcome, and otherwise takes it', async (t) => {
  nock.disableNetConnect()
  t.teardown(() => nock.enableNetConnect())
  const clock = new FakeClock()
  const sim = new SimulatorChannel({ deliveryDelayMs: 0, clock })
  t.teardown(() => sim.close())
  const mb = new MessageBirdChannel({ apiKey: 'test_key', originator: '12025550100', whatsappChannelId: null, timeoutMs: 1000 })
  t.ok(sim.supports('mms'))
  const req = { messageId: randomUUID(), channel: 'mms' as const, to: '+31612345678', body: 'hi', mediaUrls: ['https://shop.example.com/a.png'], reportUrl: null }
  const refused = await sim.send(req)
  t.same(refused, { ok: false, failure: 'permanent', reason: 'MMS reaches US and Canadian numbers only (+1); +31612345678 is not one', code: 'MMS_NOT_OFFERED' })
  t.same(refused, await mb.send(req), 'the same outcome, word for word, as MessageBirdChannel.sendMms')
  t.match(await sim.send({ ...req, to: US }), { ok: true, providerMessageId: /^sim-/ })
})

t.test('an API MMS through the simulator to a +1 number is delivered, and never read', async (t) => {
  const { app, services, db } = await buildTestApp(t)
  const api = await apiClient(app, services)
  const res = await api.post('/api/v1/messages', { to: US, channel: 'mms', text: 'Your receipt', media_url: 'https://shop.example.com/r.png' })
  t.equal(res.statusCode, 202, res.body)
  const id = res.json().message_uuid as string
  while (await services.worker.drain() > 0) await services.simulator?.idle()
  await services.simulator?.idle()
  t.equal((await db.selectFrom('messages').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status, 'delivered')
  const reports = await db.selectFrom('message_events').select(['status', 'source']).where('message_id', '=', id).execute()
  t.ok(reports.some((r) => r.status === 'delivered'), 'a delivered report')
  t.notOk(reports.some((r) => r.status === 'read'), 'no read report')
})

t.test('the phone sends a sample picture as an MMS: stored like the webhook stores one, shown on the phone and to the agent through GET /media/:id', async (t) => {
  const { app, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agent = await signedInAgent(app)
  const phone = await agent.inject({ method: 'GET', url: `/simulator?number=${encodeURIComponent(US)}`, headers: HTML })
  t.match(phone.body, /<option value="lid\.png">A cracked lid<\/option>/, 'the phone offers the bundled pictures')
  const res = await agent.inject({ method: 'POST', url: '/simulator/messages', headers: FORM, payload: form({ number: US, text: '', picture: 'lid.png' }) })
  t.equal(res.statusCode, 303, res.body)
  const message = await db.selectFrom('messages').select(['id', 'ticket_id', 'channel', 'body', 'direction']).where('from_address', '=', US).executeTakeFirstOrThrow()
  t.same({ channel: message.channel, body: message.body, direction: message.direction }, { channel: 'mms', body: '[image]', direction: 'inbound' })
  const media = await db.selectFrom('message_media').select(['id', 'url', 'kind', 'content_type']).where('message_id', '=', message.id).execute()
  t.match(media, [{ url: 'simulator:lid.png', kind: 'image', content_type: 'image/png' }])
  const served = await agent.inject({ method: 'GET', url: `/media/${media[0].id}` })
  t.equal(served.statusCode, 200)
  t.ok(served.rawPayload.equals(await readFile(join(PUBLIC_DIR, 'samples', 'lid.png'))), 'the bundled file')
  for (const [name, value] of Object.entries(mediaHeaders(media[0].id, 'image/png'))) t.equal(served.headers[name], value, `${name} as for proxied media`)
  const anonymous = await app.inject({ method: 'GET', url: `/media/${media[0].id}` })
  t.not(anonymous.statusCode, 200, 'only for a signed-in agent')
  t.match((await agent.inject({ method: 'GET', url: `/simulator?number=${encodeURIComponent(US)}`, headers: HTML })).body, new RegExp(`<img src="/media/${media[0].id}" alt="picture"`), 'the phone shows its own picture')
  t.match((await agent.inject({ method: 'GET', url: `/tickets/${message.ticket_id}`, headers: HTML })).body, new RegExp(`<img src="/media/${media[0].id}"`), 'the agent sees it in the thread')
  const withText = await agent.inject({ method: 'POST', url: '/simulator/messages', headers: FORM, payload: form({ number: US, text: 'The box too', picture: 'parcel.png' }) })
  t.equal(withText.statusCode, 303)
  // The injected clock stands still: both have the same time, so they are compared as a set.
  t.same((await db.selectFrom('messages').select(['body', 'channel']).where('from_address', '=', US).execute()).map((m) => `${m.channel}: ${m.body}`).sort(), ['mms: The box too', 'mms: [image]'])
})

t.test('the phone refuses, on its page with what was typed kept: an unknown picture, a number outside +1, a picture by WhatsApp', async (t) => {
  const { app, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agent = await signedInAgent(app)
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['an unknown picture', { number: US, text: 'Look', picture: '../package.json' }, /Pick one of the listed pictures, or none/],
    ['a Dutch number', { number: '+31612345678', text: 'Look', picture: 'lid.png' }, /MMS works between US and Canadian numbers only \(\+1\)/],
    ['by WhatsApp', { number: US, text: 'Look', picture: 'lid.png', channel: 'whatsapp' }, /This phone sends pictures by MMS only/]
  ]
  for (const [name, fields, message] of cases) {
    const res = await agent.inject({ method: 'POST', url: '/simulator/messages', headers: FORM, payload: form(fields) })
    t.equal(res.statusCode, 422, name)
    t.match(res.body, message, name)
    t.match(res.body, />Look<\/textarea>/, `${name}: the text is kept`)
  }
  t.equal((await db.selectFrom('messages').select('id').execute()).length, 0, 'nothing was received')
})

t.test('an agent\'s MMS reply arrives on the phone with its picture', async (t) => {
  const { app, db, services } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agent = await signedInAgent(app)
  await agent.inject({ method: 'POST', url: '/simulator/messages', headers: FORM, payload: form({ number: US, text: 'Which lid fits?' }) })
  const ticketId = (await db.selectFrom('messages').select('ticket_id').where('from_address', '=', US).executeTakeFirstOrThrow()).ticket_id
  const sent = await agent.inject({ method: 'POST', url: `/tickets/${ticketId}/replies`, headers: FORM, payload: form({ body: 'This one', to: `sms:${US}`, media_url: 'https://shop.example.com/lid-7.png' }) })
  t.equal(sent.statusCode, 303, sent.body)
  while (await services.worker.drain() > 0) await services.simulator?.idle()
  await services.simulator?.idle()
  const row = await db.selectFrom('messages').select(['id', 'channel', 'status']).where('kind', '=', 'reply').executeTakeFirstOrThrow()
  t.same({ channel: row.channel, status: row.status }, { channel: 'mms', status: 'delivered' })
  const media = await db.selectFrom('message_media').select('id').where('message_id', '=', row.id).executeTakeFirstOrThrow()
  const phone = (await agent.inject({ method: 'GET', url: `/simulator/conversation?number=${encodeURIComponent(US)}` })).body
  t.match(phone, new RegExp(`<img src="/media/${media.id}" alt="picture"[^>]*></div>\\s*<div class="bubble">This one</div>`))
  t.match(phone, /· MMS · Delivered/)
})

t.test('no webhook or API request can store a simulator: URL, and GET /media/:id serves only the bundled names', async (t) => {
  const KEY = 'fixture-signing-key-0001'
  const BASE = 'https://support.example.com'
  const clock = new FakeClock('2026-01-01T09:00:00.000Z')
  const { app, services, db } = await buildTestApp(t, { clock, env: { ...FAST_HASH_ENV, MESSAGEBIRD_SIGNING_KEY: KEY, PUBLIC_URL: BASE, SECURE_COOKIES: 'false' } })
  const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex')
  const now = Math.floor(clock.now().getTime() / 1000)
  const signed = async (path: string, payload: Record<string, unknown>) => {
    const body = JSON.stringify(payload)
    const token = await new SignJWT({ jti: randomUUID(), url_hash: sha256(BASE + path), payload_hash: sha256(body) })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuer('MessageBird').setNotBefore(now).setExpirationTime(now + 60)
      .sign(new TextEncoder().encode(KEY))
    return await app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/json', 'messagebird-signature-jwt': token }, payload: body })
  }
  const mms = await signed('/webhooks/messagebird/mms', { id: 'mms-1', originator: '12025550123', mediaUrls: ['simulator:lid.png'] })
  t.equal(mms.statusCode, 400, 'the signed MMS webhook refuses it')
  t.match(mms.json().message, /mediaUrls\[0\] must be an http\(s\) URL/)
  const control = await signed('/webhooks/messagebird/mms', { id: 'mms-2', originator: '12025550123', mediaUrls: ['https://media.messagebird.com/a.png'] })
  t.equal(control.statusCode, 200, 'the same request with an https URL is taken (the signature is right)')
  const whatsapp = await signed('/webhooks/messagebird/conversations', { type: 'message.created', message: { id: 'wa-1', status: 'received', direction: 'received', platform: 'whatsapp', from: '+12025550124', type: 'image', content: { image: { url: 'simulator:lid.png' } } } })
  t.equal(whatsapp.statusCode, 200)
  const api = await apiClient(app, services)
  const viaApi = await api.post('/api/v1/messages', { to: US, channel: 'mms', text: 'hi', media_url: 'simulator:lid.png' })
  t.equal(viaApi.statusCode, 422)
  t.match(viaApi.json().details, [{ field: 'media_url', message: /must be an https URL/ }])
  const urls = await db.selectFrom('message_media').select('url').execute()
  t.same(urls.map((u) => u.url), ['https://media.messagebird.com/a.png'], 'only the https URL was stored')

  // Rows no request can make, put in the table directly: only the fixed list is served.
  const agent = await signedInAgent(app)
  const messageId = (await db.selectFrom('messages').select('id').where('provider_message_id', '=', 'wa-1').executeTakeFirstOrThrow()).id
  await insertMedia(db, messageId, ['simulator:nope.png', 'simulator:../package.json', 'simulator:samples/lid.png'].map((url) => ({ kind: 'image' as const, url, caption: null, contentType: null })), clock.now().toISOString())
  const rows = await db.selectFrom('message_media').select(['id', 'url']).where('url', 'like', 'simulator:%').execute()
  t.equal(rows.length, 3)
  for (const row of rows) {
    const res = await agent.inject({ method: 'GET', url: `/media/${row.id}` })
    t.equal(res.statusCode, 404, row.url)
    t.match(res.json().message, /This media was not found/, row.url)
  }
})
