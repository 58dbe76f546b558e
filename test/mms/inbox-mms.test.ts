import nock from 'nock'
import t, { type Test } from 'tap'
import { FAST_HASH_ENV, signedInAgent, type AgentSession } from '../auth/agent-session.js'
import { buildTestApp, form } from '../helper.js'
import { MessageBirdChannel } from '../../src/messaging/messagebird-channel.js'

// "Attach an image (MMS)" in the ticket composer, at the HTTP edge: the customer writes through
// the SMS webhook, the agent answers through the ticket page's form, and the real messagebird SDK
// sends under nock. What reached mms.create, and what the page says, is the evidence.

const FORM = { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }
const HTML = { accept: 'text/html' }
const US = '+12025550123'
const IMAGE = 'https://shop.example.com/receipts/42.png'
const ENV = { ...FAST_HASH_ENV, SMS_CHANNEL: 'messagebird', MESSAGEBIRD_API_KEY: 'test_key', MESSAGEBIRD_ORIGINATOR: '12025550100', PUBLIC_URL: 'https://support.example.com', SECURE_COOKIES: 'false' }
type Agent = AgentSession & { id: number, name: string }

async function setup (t: Test) {
  nock.disableNetConnect()
  const sms: Array<Record<string, unknown>> = []
  const mms: Array<Record<string, unknown>> = []
  nock('https://rest.messagebird.com').post('/messages').reply(201, (_u, body) => { sms.push(body as Record<string, unknown>); return { id: `sms-${sms.length}` } }).persist()
  nock('https://rest.messagebird.com').post('/mms').reply(201, (_u, body) => { mms.push(body as Record<string, unknown>); return { id: `mms-${mms.length}` } }).persist()
  t.teardown(() => {
    nock.cleanAll()
    nock.enableNetConnect()
  })
  const channel = new MessageBirdChannel({ apiKey: 'test_key', originator: '12025550100', whatsappChannelId: 'wa-channel-1', timeoutMs: 1000 })
  const built = await buildTestApp(t, { channel, env: { ...ENV, MESSAGEBIRD_WHATSAPP_CHANNEL_ID: 'wa-channel-1' } })
  const agent = await signedInAgent(built.app)
  let n = 0
  /** The customer texts in (MessageBird's SMS webhook); the ticket's id. */
  const textIn = async (from: string, text: string): Promise<number> => {
    const res = await built.app.inject({ method: 'POST', url: '/webhooks/messagebird', payload: { id: `in-${++n}`, originator: from, payload: text } })
    if (res.statusCode !== 200) throw new Error(`webhook answered ${res.statusCode}: ${res.body}`)
    return res.json().ticket_id as number
  }
  const drain = async (): Promise<number> => await built.services.worker.drain()
  return { ...built, agent, textIn, drain, sms, mms }
}

const page = async (agent: Agent, ticketId: number) => (await agent.inject({ method: 'GET', url: `/tickets/${ticketId}`, headers: HTML })).body
const reply = async (agent: Agent, ticketId: number, fields: Record<string, string>) =>
  await agent.inject({ method: 'POST', url: `/tickets/${ticketId}/replies`, headers: FORM, payload: form(fields) })
/** The composer's "Send to" value for the address on the page (`sms:+1…`). */
const sendTo = (html: string): string => {
  const m = /name="to" value="([^"]+)"/.exec(html) ?? /<option value="([^"]+)"[^>]*selected/.exec(html)
  if (m === null) throw new Error('no "Send to" on the page')
  return m[1].replace(/&#x3D;/g, '=')
}

t.test('a reply with an image to a US number goes out as one MMS (mms.create with the URL), stored with its media row, shown through the proxy', async (t) => {
  const s = await setup(t)
  const ticketId = await s.textIn(US, 'The lid arrived cracked')
  await s.drain()
  const html = await page(s.agent, ticketId)
  t.match(html, /<label for="reply-media-url">Attach an image \(MMS\)<\/label>/)
  t.match(html, /the provider fetches it/, 'the hint says who fetches the URL')
  t.notMatch(html, /id="reply-image" hidden/, 'offered for this customer\'s number')
  const res = await reply(s.agent, ticketId, { body: 'Here is your new label', to: sendTo(html), media_url: IMAGE })
  t.equal(res.statusCode, 303, res.body)
  const row = await s.db.selectFrom('messages').select(['id', 'channel', 'to_address', 'body', 'status']).where('ticket_id', '=', ticketId).where('kind', '=', 'reply').executeTakeFirstOrThrow()
  t.same({ channel: row.channel, to: row.to_address, body: row.body }, { channel: 'mms', to: US, body: 'Here is your new label' })
  const media = await s.db.selectFrom('message_media').select(['id', 'url', 'kind', 'position']).where('message_id', '=', row.id).execute()
  t.match(media, [{ url: IMAGE, kind: 'image', position: 0 }])
  await s.drain()
  t.same(s.mms, [{ originator: '12025550100', recipients: '12025550123', reference: row.id, body: 'Here is your new label', mediaUrls: [IMAGE] }])
  t.equal(s.sms.length, 1, 'only the confirmation went by SMS')
  const after = await page(s.agent, ticketId)
  t.match(after, new RegExp(`<img src="/media/${media[0].id}"`), 'the thread shows it through GET /media/:id')
  t.notMatch(after, /shop\.example\.com/, 'never the URL itself')
})

t.test('the text is optional with an image; a reply with neither is still refused', async (t) => {
  const s = await setup(t)
  const ticketId = await s.textIn(US, 'Can you show me?')
  const to = sendTo(await page(s.agent, ticketId))
  t.equal((await reply(s.agent, ticketId, { body: '   ', to, media_url: IMAGE })).statusCode, 303)
  await s.drain()
  t.match(s.mms, [{ recipients: '12025550123', mediaUrls: [IMAGE] }])
  t.notOk('body' in s.mms[0], 'no empty body is sent')
  const empty = await reply(s.agent, ticketId, { body: '', to, media_url: '' })
  t.equal(empty.statusCode, 422)
  t.match(empty.body, /The reply is empty/)
})

t.test('refused with a 422 on the page, text and URL kept, nothing stored: a non-https URL, a number outside the US and Canada, a WhatsApp target, failover, Send later', async (t) => {
  const s = await setup(t)
  const us = await s.textIn(US, 'Hello from DC')
  const nl = await s.textIn('+31612345678', 'Hello from Amsterdam')
  const wa = await s.app.inject({ method: 'POST', url: '/webhooks/messagebird/conversations', payload: { type: 'message.created', message: { id: 'wa-1', status: 'received', direction: 'received', platform: 'whatsapp', from: '+12025550199', type: 'text', content: { text: 'Hi on WhatsApp' } } } })
  t.equal(wa.statusCode, 200, wa.body)
  const waTicket = (await s.db.selectFrom('messages').select('ticket_id').where('provider_message_id', '=', 'wa-1').executeTakeFirstOrThrow()).ticket_id
  const nlPage = await page(s.agent, nl)
  t.notMatch(nlPage, /Attach an image/, 'not offered to a Dutch number')
  const before = await s.db.selectFrom('messages').select('id').where('kind', '=', 'reply').execute()

  const cases: Array<[string, number, Record<string, string>, RegExp]> = [
    ['http, not https', us, { body: 'See this', media_url: 'http://shop.example.com/a.png' }, /The image must be an https link/],
    ['not a URL', us, { body: 'See this', media_url: 'lid.png' }, /The image must be an https link/],
    ['the simulator\'s own scheme', us, { body: 'See this', media_url: 'simulator:lid.png' }, /The image must be an https link/],
    ['too long', us, { body: 'See this', media_url: 'https://a.example/' + 'x'.repeat(2100) }, /at most 2048 characters/],
    ['a Dutch number', nl, { body: 'See this', to: sendTo(nlPage), media_url: IMAGE }, /MMS reaches US and Canadian numbers only \(\+1\); \+31612345678 is not one/],
    ['a WhatsApp target', waTicket, { body: 'See this', to: 'whatsapp:+12025550199', media_url: IMAGE }, /An image goes out by MMS, to a phone number; WhatsApp \+12025550199 cannot take one/],
    ['with failover', us, { body: 'See this', failover: '1', media_url: IMAGE }, /failover is not offered with an image/]
  ]
  for (const [name, ticketId, fields, message] of cases) {
    const res = await reply(s.agent, ticketId, fields)
    t.equal(res.statusCode, 422, name)
    t.match(res.headers['content-type'], /text\/html/, name)
    t.match(res.body, message, name)
    t.match(res.body, />See this<\/textarea>/, `${name}: the text is kept`)
    t.ok(res.body.includes(`name="media_url" value="${fields.media_url.replace(/&/g, '&amp;')}"`) || !res.body.includes('name="media_url"'), `${name}: the URL is kept where the field is offered`)
  }
  const later = await s.agent.inject({ method: 'POST', url: `/tickets/${us}/scheduled`, headers: FORM, payload: form({ body: 'Later', send_at: '2030-01-01T09:00', zone: 'UTC', media_url: IMAGE }) })
  t.equal(later.statusCode, 422)
  t.match(later.body, /Send later sends text only; an image \(MMS\) goes out with &quot;Send reply&quot; now/)
  t.match(later.body, new RegExp(`name="media_url" value="${IMAGE}"`), 'the URL is kept')
  t.same(await s.db.selectFrom('messages').select('id').where('kind', '=', 'reply').execute(), before, 'no reply was stored')
  t.equal((await s.db.selectFrom('message_media').select('id').execute()).length, 0)
  await s.drain()
  t.same(s.mms, [], 'nothing reached mms.create')
})

t.test('a customer who texted STOP gets no MMS either: the reply is recorded as blocked and never sent', async (t) => {
  const s = await setup(t)
  const ticketId = await s.textIn(US, 'My order')
  await s.textIn(US, 'STOP')
  await s.drain()
  const res = await reply(s.agent, ticketId, { body: 'A picture for you', to: `sms:${US}`, media_url: IMAGE })
  t.equal(res.statusCode, 303, res.body)
  const row = await s.db.selectFrom('messages').select(['id', 'channel', 'status', 'error_code']).where('ticket_id', '=', ticketId).where('kind', '=', 'reply').executeTakeFirstOrThrow()
  t.same({ channel: row.channel, status: row.status, error_code: row.error_code }, { channel: 'mms', status: 'blocked', error_code: 'OPTED_OUT' })
  t.equal(await s.drain(), 0, 'nothing to send')
  t.same(s.mms, [])
})

t.test('on the simulator the composer offers the image for a +1 number; a Messenger customer cannot be sent one', async (t) => {
  const { app, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agent = await signedInAgent(app)
  const sim = await agent.inject({ method: 'POST', url: '/simulator/messages', headers: FORM, payload: form({ number: US, text: 'Hi from the simulator' }) })
  t.equal(sim.statusCode, 303)
  const usTicket = (await db.selectFrom('messages').select('ticket_id').where('from_address', '=', US).executeTakeFirstOrThrow()).ticket_id
  t.match(await page(agent, usTicket), /Attach an image \(MMS\)/)
  const fb = await agent.inject({ method: 'POST', url: '/simulator/messenger/messages', headers: FORM, payload: form({ user: '6011234567890123', name: 'Jane', text: 'Hi on Messenger' }) })
  t.equal(fb.statusCode, 303, fb.body)
  const fbTicket = (await db.selectFrom('messages').select('ticket_id').where('channel', '=', 'messenger').executeTakeFirstOrThrow()).ticket_id
  const fbPage = await page(agent, fbTicket)
  t.notMatch(fbPage, /Attach an image/, 'not offered on Messenger')
  const res = await reply(agent, fbTicket, { body: 'Look', to: sendTo(fbPage), media_url: IMAGE })
  t.equal(res.statusCode, 422)
  t.match(res.body, /An image goes out by MMS, to a phone number; Messenger 6011234567890123 cannot take one/)
  t.equal((await db.selectFrom('message_media').select('id').execute()).length, 0)
})

t.test('Retry on a failed MMS sends it again as an MMS with its image; it cannot move to a channel that would drop the image', async (t) => {
  const s = await setup(t)
  const ticketId = await s.textIn(US, 'The lid arrived cracked')
  const to = sendTo(await page(s.agent, ticketId))
  t.equal((await reply(s.agent, ticketId, { body: 'Here is your new label', to, media_url: IMAGE })).statusCode, 303)
  await s.drain()
  const failed = await s.db.selectFrom('messages').select('id').where('ticket_id', '=', ticketId).where('kind', '=', 'reply').executeTakeFirstOrThrow()
  const report = await s.app.inject({ method: 'GET', url: `/webhooks/messagebird/status?id=mms-1&reference=${failed.id}&status=delivery_failed&statusDatetime=2026-01-01T09:00:03%2B00:00` })
  t.equal(report.statusCode, 200)

  // The customer also has a WhatsApp address: the bubble still offers no other channel.
  t.equal((await s.agent.inject({ method: 'POST', url: `/tickets/${ticketId}/addresses`, headers: FORM, payload: form({ channel: 'whatsapp', address: US }) })).statusCode, 303)
  const bubble = new RegExp(`<li class="msg [^"]*" data-item-id="${failed.id}"[\\s\\S]*?</li>`).exec(await page(s.agent, ticketId))?.[0] ?? ''
  t.match(bubble, /class="retry"/, 'the failed MMS offers Retry')
  t.notMatch(bubble, /<select/, 'as MMS only: no other address to pick')
  const bySms = await s.agent.inject({ method: 'POST', url: `/tickets/${ticketId}/messages/${failed.id}/retry`, headers: FORM, payload: form({ to: `sms:${US}` }) })
  t.equal(bySms.statusCode, 422, 'an SMS would drop the image')
  t.match(bySms.body, /image/)

  const res = await s.agent.inject({ method: 'POST', url: `/tickets/${ticketId}/messages/${failed.id}/retry`, headers: FORM, payload: form({ to: `mms:${US}` }) })
  t.equal(res.statusCode, 303, res.body)
  const retry = await s.db.selectFrom('messages').select(['id', 'channel', 'to_address']).where('retry_of', '=', failed.id).executeTakeFirstOrThrow()
  t.same({ channel: retry.channel, to: retry.to_address }, { channel: 'mms', to: US })
  t.match(await s.db.selectFrom('message_media').select(['url', 'kind']).where('message_id', '=', retry.id).execute(), [{ url: IMAGE, kind: 'image' }], 'the retry carries the image')
  await s.drain()
  t.same(s.mms.map((m) => m.mediaUrls), [[IMAGE], [IMAGE]], 'MessageBird got the image both times')
  t.equal(s.mms[1].reference, retry.id)
})
