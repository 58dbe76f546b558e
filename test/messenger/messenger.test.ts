import nock from 'nock'
import t, { type Test } from 'tap'
import { loadConfig } from '../../src/config.js'
import { FAST_HASH_ENV, signedInAgent } from '../auth/agent-session.js'
import { apiClient } from '../api/api-helpers.js'
import { buildTestApp, form } from '../helper.js'

// Facebook Messenger through MessageBird's Conversations API, at the edges: Conversations webhooks
// in (app.inject), the real `messagebird` SDK out (nock on its HTTPS calls), the inbox pages.

const CONV = 'https://conversations.messagebird.com'
const SMS_API = 'https://rest.messagebird.com'
const MESSENGER_CHANNEL = '7c4e1f2a9b8d4c6e8f0a1b2c3d4e5f60'
const WHATSAPP_CHANNEL = '619747f69cf940a98fb443140ce9aed2'
const PSID = '6011234567890123'
const FORM = { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }
const ENV = {
  ...FAST_HASH_ENV,
  SMS_CHANNEL: 'messagebird',
  MESSAGEBIRD_API_KEY: 'test_key',
  MESSAGEBIRD_ORIGINATOR: '3197010260000',
  PUBLIC_URL: 'http://support.example.com',
  MESSAGEBIRD_MESSENGER_CHANNEL_ID: MESSENGER_CHANNEL,
  MESSAGEBIRD_WHATSAPP_CHANNEL_ID: WHATSAPP_CHANNEL
}

interface ConversationSend { to: string, from: string, type: string, content: { text: string }, reportUrl?: string }

/**
 * The app on the MessageBird channel it builds from its own configuration; `conversations` lists
 * every Conversations API send and `sms` every SMS the SDK posted. No other host can be reached.
 */
async function messengerApp (t: Test, env: Record<string, string> = {}) {
  nock.disableNetConnect()
  const conversations: ConversationSend[] = []
  const sms: Array<{ recipients: string, body: string }> = []
  nock(CONV).post('/v1/send').reply(202, (_uri, body) => {
    conversations.push(body as ConversationSend)
    return { id: `conv-out-${conversations.length}`, status: 'accepted' }
  }).persist()
  nock(SMS_API).post('/messages').reply(201, (_uri, body) => {
    sms.push(body as { recipients: string, body: string })
    return { id: `mb-out-${sms.length}` }
  }).persist()
  t.teardown(() => {
    nock.cleanAll()
    nock.enableNetConnect()
  })
  const built = await buildTestApp(t, { env: { ...ENV, ...env } })
  return { ...built, conversations, sms, drain: async () => await built.services.worker.drain() }
}

type App = Awaited<ReturnType<typeof messengerApp>>['app']

let seq = 0
/** A Conversations webhook `message.created` for a message a Messenger user wrote to the page. */
async function messengerIn (app: App, text: string, opts: { psid?: string, contact?: Record<string, unknown> } = {}) {
  return await app.inject({
    method: 'POST',
    url: '/webhooks/messagebird/conversations',
    payload: {
      type: 'message.created',
      contact: opts.contact ?? { id: 'c0ffee00c0ffee00c0ffee00c0ffee00', displayName: 'Jane Doe', firstName: 'Jane', lastName: 'Doe' },
      conversation: { id: 'conv-1', status: 'active' },
      message: {
        id: `fb-in-${++seq}`,
        conversationId: 'conv-1',
        platform: 'facebook',
        channelId: MESSENGER_CHANNEL,
        from: opts.psid ?? PSID,
        to: MESSENGER_CHANNEL,
        direction: 'received',
        status: 'received',
        type: 'text',
        content: { text },
        createdDatetime: '2026-01-01T09:00:00Z'
      }
    }
  })
}

async function statusOf (app: App, providerId: string, status: string, extra: Record<string, unknown> = {}) {
  return await app.inject({
    method: 'POST',
    url: '/webhooks/messagebird/conversations',
    payload: { type: 'message.updated', message: { id: providerId, platform: 'facebook', channelId: MESSENGER_CHANNEL, from: MESSENGER_CHANNEL, to: PSID, direction: 'sent', status, updatedDatetime: '2026-01-01T09:05:00Z', ...extra } }
  })
}

t.test('a Messenger message opens a ticket for the page-scoped id; the confirmation and the reply go back on Messenger', async (t) => {
  const { app, db, conversations, sms, drain } = await messengerApp(t)
  const agent = await signedInAgent(app)
  const res = await messengerIn(app, 'Hi, my order never arrived')
  t.equal(res.statusCode, 200)
  const ticketId = res.json().ticket_id as number
  t.ok(ticketId > 0, 'a ticket was opened')

  const contact = await db.selectFrom('contacts').innerJoin('tickets', 'tickets.contact_id', 'contacts.id').select(['contacts.phone', 'contacts.name']).where('tickets.id', '=', ticketId).executeTakeFirstOrThrow()
  t.same(contact, { phone: `messenger:${PSID}`, name: 'Jane Doe' }, 'known by their Messenger id, named as MessageBird names them')
  const inbound = await db.selectFrom('messages').select(['channel', 'from_address', 'body']).where('ticket_id', '=', ticketId).where('direction', '=', 'inbound').executeTakeFirstOrThrow()
  t.same(inbound, { channel: 'messenger', from_address: `messenger:${PSID}`, body: 'Hi, my order never arrived' })

  await drain()
  t.same(conversations, [{ to: PSID, from: MESSENGER_CHANNEL, type: 'text', content: { text: `Thanks for contacting customer support! Your ticket ID is ${ticketId}.` }, reportUrl: 'http://support.example.com/webhooks/messagebird/conversations' }], 'the confirmation, to the page-scoped id from the Messenger channel')

  const page = await agent.inject({ method: 'GET', url: `/tickets/${ticketId}`, headers: { accept: 'text/html' } })
  t.equal(page.statusCode, 200)
  t.match(page.body, `Reply by Messenger to ${PSID}`, 'the composer says where the reply goes')
  t.match(page.body, /<span class="channel"[^>]*>Messenger<\/span>/, 'each bubble names its channel')
  t.match(page.body, `Messenger ${PSID}`, 'the head shows the Messenger id, not a phone number')

  const reply = await agent.inject({ method: 'POST', url: `/tickets/${ticketId}/replies`, headers: FORM, payload: form({ body: 'Sorry! It ships today.' }) })
  t.equal(reply.statusCode, 303)
  await drain()
  t.same(conversations[1], { to: PSID, from: MESSENGER_CHANNEL, type: 'text', content: { text: 'Sorry! It ships today.' }, reportUrl: 'http://support.example.com/webhooks/messagebird/conversations' }, 'the reply went out on Messenger')
  t.same(sms, [], 'nothing was sent as an SMS')
  const stored = await db.selectFrom('messages').select(['channel', 'to_address', 'status', 'provider_message_id']).where('ticket_id', '=', ticketId).where('kind', '=', 'reply').executeTakeFirstOrThrow()
  t.same(stored, { channel: 'messenger', to_address: `messenger:${PSID}`, status: 'sent', provider_message_id: 'conv-out-2' })

  // A Messenger-only customer has no number to text, and Messenger takes 640 characters: both are
  // refused before anything is queued.
  const asSms = await agent.inject({ method: 'POST', url: `/tickets/${ticketId}/replies`, headers: FORM, payload: form({ body: 'Shall I text you?', send_as_sms: '1' }) })
  t.equal(asSms.statusCode, 422, 'Send as SMS for a customer without a phone number')
  t.match(asSms.body, /no phone number, only Messenger/)
  const long = await agent.inject({ method: 'POST', url: `/tickets/${ticketId}/replies`, headers: FORM, payload: form({ body: 'x'.repeat(641) }) })
  t.equal(long.statusCode, 422, 'a reply over Messenger\'s limit')
  t.match(long.body, /Messenger takes at most 640/)
  await drain()
  t.equal(conversations.length, 2, 'neither went out')
  t.same(sms, [])
  t.equal((await db.selectFrom('messages').select('id').where('ticket_id', '=', ticketId).where('kind', '=', 'reply').execute()).length, 1, 'neither was stored')

  const list = await agent.inject({ method: 'GET', url: '/inbox?view=open', headers: { accept: 'text/html' } })
  t.equal(list.statusCode, 200)
  t.match(list.body, 'Jane Doe')
})

t.test('delivered, read and failed reports of Messenger messages update them', async (t) => {
  const { app, db, drain } = await messengerApp(t)
  const ticketId = (await messengerIn(app, 'Hello')).json().ticket_id as number
  await drain()
  const confirmation = await db.selectFrom('messages').select(['id', 'provider_message_id']).where('ticket_id', '=', ticketId).where('kind', '=', 'confirmation').executeTakeFirstOrThrow()
  const providerId = confirmation.provider_message_id as string
  const status = async () => await db.selectFrom('messages').select(['status', 'status_reason', 'error_code']).where('id', '=', confirmation.id).executeTakeFirstOrThrow()

  t.same((await statusOf(app, providerId, 'delivered')).json(), { ok: true, matched: true })
  t.equal((await status()).status, 'delivered')
  t.same((await statusOf(app, providerId, 'read')).json(), { ok: true, matched: true })
  t.equal((await status()).status, 'read', 'a Messenger read receipt')

  await app.services.tickets.reply(ticketId, 'One more thing', null)
  await drain()
  const second = await db.selectFrom('messages').select(['id', 'provider_message_id']).where('ticket_id', '=', ticketId).where('kind', '=', 'reply').executeTakeFirstOrThrow()
  await statusOf(app, second.provider_message_id as string, 'failed', { error: { code: 1200, description: 'The user is not reachable on Messenger' } })
  t.match(await db.selectFrom('messages').select(['status', 'status_reason', 'error_code']).where('id', '=', second.id).executeTakeFirstOrThrow(), { status: 'failed', status_reason: 'The user is not reachable on Messenger', error_code: '1200' })
})

t.test('one Messenger id is one contact with one open ticket; a phone number with the same digits is someone else', async (t) => {
  const { app, db } = await messengerApp(t)
  const first = (await messengerIn(app, 'First')).json().ticket_id as number
  const second = (await messengerIn(app, 'Second', { contact: { displayName: 'Someone Else' } })).json().ticket_id as number
  t.equal(second, first, 'the same open ticket')
  const other = (await messengerIn(app, 'Another user', { psid: '31612345678' })).json().ticket_id as number
  t.not(other, first, 'another page-scoped id is another customer')
  const sms = await app.inject({ method: 'POST', url: '/webhooks/messagebird', payload: { originator: '31612345678', payload: 'By SMS', id: 'sms-1' } })
  const smsTicket = sms.json().ticket_id as number
  t.not(smsTicket, other, 'a phone number with the digits of a Messenger id is a different customer')
  const contacts = await db.selectFrom('contacts').select(['phone', 'name']).orderBy('id').execute()
  t.same(contacts, [
    { phone: `messenger:${PSID}`, name: 'Jane Doe' },
    { phone: 'messenger:31612345678', name: 'Jane Doe' },
    { phone: '+31612345678', name: null }
  ], 'a name MessageBird sends later does not overwrite the one kept')
  const registry = await db.selectFrom('contact_numbers').select('number').orderBy('number').execute()
  t.same(registry.map((r) => r.number), ['+31612345678', 'messenger:31612345678', `messenger:${PSID}`], 'each address belongs to exactly one contact')
})

t.test('STOP over Messenger opts the contact out: confirmed on Messenger, and nothing more is sent', async (t) => {
  const { app, db, conversations, drain } = await messengerApp(t)
  const ticketId = (await messengerIn(app, 'Hello')).json().ticket_id as number
  await drain()
  await messengerIn(app, 'STOP')
  await drain()
  const contact = await db.selectFrom('contacts').select('opted_out_at').where('phone', '=', `messenger:${PSID}`).executeTakeFirstOrThrow()
  t.not(contact.opted_out_at, null, 'opted out')
  t.equal(conversations.length, 2)
  t.match(conversations[1], { to: PSID, from: MESSENGER_CHANNEL }, 'the opt-out is confirmed on Messenger')
  const { status } = await app.services.tickets.reply(ticketId, 'Are you still there?', null)
  t.equal(status, 'blocked', 'a reply after STOP is blocked')
  await drain()
  t.equal(conversations.length, 2, 'and never sent')
})

t.test('replies go back on the channel the customer last wrote from: WhatsApp on WhatsApp, SMS on SMS', async (t) => {
  const { app, conversations, sms, drain } = await messengerApp(t)
  const wa = await app.inject({
    method: 'POST',
    url: '/webhooks/messagebird/conversations',
    payload: { type: 'message.created', message: { id: 'wa-in-1', platform: 'whatsapp', channelId: WHATSAPP_CHANNEL, from: '+31611112222', to: WHATSAPP_CHANNEL, direction: 'received', status: 'received', type: 'text', content: { text: 'Hi on WhatsApp' } } }
  })
  const waTicket = wa.json().ticket_id as number
  const smsTicket = (await app.inject({ method: 'POST', url: '/webhooks/messagebird', payload: { originator: '31633334444', payload: 'Hi by SMS', id: 'sms-2' } })).json().ticket_id as number
  await drain()
  conversations.length = 0
  sms.length = 0
  await app.services.tickets.reply(waTicket, 'Answer on WhatsApp', null)
  await app.services.tickets.reply(smsTicket, 'Answer by SMS', null)
  await drain()
  t.same(conversations, [{ to: '+31611112222', from: WHATSAPP_CHANNEL, type: 'text', content: { text: 'Answer on WhatsApp' }, reportUrl: 'http://support.example.com/webhooks/messagebird/conversations' }])
  t.same(sms.map((s) => ({ recipients: s.recipients, body: s.body })), [{ recipients: '31633334444', body: 'Answer by SMS' }])
})

t.test('POST /api/v1/messages sends on Messenger to a page-scoped id; refused with a reason when Messenger is not configured', async (t) => {
  const { app, services, db, conversations, drain } = await messengerApp(t)
  const api = await apiClient(app, services)
  const res = await api.post('/api/v1/messages', { channel: 'messenger', to: PSID, text: 'Your order has shipped' })
  t.equal(res.statusCode, 202, res.body)
  await drain()
  t.same(conversations, [{ to: PSID, from: MESSENGER_CHANNEL, type: 'text', content: { text: 'Your order has shipped' }, reportUrl: 'http://support.example.com/webhooks/messagebird/conversations' }])
  const view = await api.get(`/api/v1/messages/${res.json().message_uuid as string}`)
  t.match(view.json(), { channel: 'messenger', to: PSID })
  const contact = await db.selectFrom('contacts').select('phone').executeTakeFirstOrThrow()
  t.equal(contact.phone, `messenger:${PSID}`, 'the notification joins the Messenger customer\'s ticket')

  const badId = await api.post('/api/v1/messages', { channel: 'messenger', to: '+31612345678', text: 'Hi' })
  t.equal(badId.statusCode, 422)
  t.match(badId.json().details, [{ field: 'to', message: /page-scoped id/ }])
  const tooLong = await api.post('/api/v1/messages', { channel: 'messenger', to: PSID, text: 'x'.repeat(641) })
  t.equal(tooLong.statusCode, 422)
  t.match(tooLong.json().details, [{ field: 'text', message: /messenger allows at most 640/ }])
})

t.test('Messenger is refused with 422 naming MESSAGEBIRD_MESSENGER_CHANNEL_ID when it is not configured', async (t) => {
  const { app, services, conversations, drain } = await messengerApp(t, { MESSAGEBIRD_MESSENGER_CHANNEL_ID: '' })
  t.notOk(services.channel.supports('messenger'))
  const api = await apiClient(app, services)
  const res = await api.post('/api/v1/messages', { channel: 'messenger', to: PSID, text: 'Hello' })
  t.equal(res.statusCode, 422)
  t.match(res.json().details, [{ field: 'channel', message: 'messenger is not configured on this server (MESSAGEBIRD_MESSENGER_CHANNEL_ID is not set)' }])
  await drain()
  t.same(conversations, [], 'nothing was sent')
})

t.test('a MESSAGEBIRD_MESSENGER_CHANNEL_ID that is not a channel id stops the start with a clear error', async (t) => {
  t.throws(() => loadConfig({ NODE_ENV: 'test', MESSAGEBIRD_MESSENGER_CHANNEL_ID: 'https://dashboard.messagebird.com/channels/123' }), /MESSAGEBIRD_MESSENGER_CHANNEL_ID must be a MessageBird channel id: 32 hexadecimal characters/)
  t.equal(loadConfig({ NODE_ENV: 'test', MESSAGEBIRD_MESSENGER_CHANNEL_ID: MESSENGER_CHANNEL }).messagebird.messengerChannelId, MESSENGER_CHANNEL)
})

t.test('a Messenger customer merged into their phone contact keeps their Messenger address, and is answered there when they write on Messenger', async (t) => {
  const { app, services, db, clock, conversations, sms, drain } = await messengerApp(t)
  const agent = await signedInAgent(app)
  const phoneTicket = (await app.inject({ method: 'POST', url: '/webhooks/messagebird', payload: { originator: '31612345678', payload: 'By SMS first', id: 'sms-merge-1' } })).json().ticket_id as number
  clock.advance(60_000)
  await messengerIn(app, 'And now on Messenger')
  const phoneContact = await db.selectFrom('contacts').select('id').where('phone', '=', '+31612345678').executeTakeFirstOrThrow()
  const messengerContact = await db.selectFrom('contacts').select('id').where('phone', '=', `messenger:${PSID}`).executeTakeFirstOrThrow()
  const merged = await agent.inject({ method: 'POST', url: `/contacts/${phoneContact.id}/merge`, headers: FORM, payload: form({ other: String(messengerContact.id) }) })
  t.equal(merged.statusCode, 303, merged.body.slice(0, 200))
  const addresses = await db.selectFrom('contact_addresses').select(['channel', 'address']).where('contact_id', '=', phoneContact.id).execute()
  t.same(addresses, [{ channel: 'messenger', address: `messenger:${PSID}` }], 'the Messenger id is one of the kept contact\'s addresses, on its own channel')
  const owners = await db.selectFrom('contact_numbers').select(['number', 'contact_id']).orderBy('number').execute()
  t.same(owners, [{ number: '+31612345678', contact_id: phoneContact.id }, { number: `messenger:${PSID}`, contact_id: phoneContact.id }], 'both addresses belong to the one contact')

  // Minutes later (the reply follows the customer's newest message).
  clock.advance(60_000)
  await messengerIn(app, 'Still there?')
  await drain()
  conversations.length = 0
  sms.length = 0
  const open = await db.selectFrom('tickets').select('id').where('contact_id', '=', phoneContact.id).where('status', '<>', 'closed').execute()
  t.same(open.map((r) => r.id), [phoneTicket], 'one open ticket for the merged customer')
  await services.tickets.reply(phoneTicket, 'Yes, answering on Messenger', null)
  await drain()
  t.match(conversations, [{ to: PSID, from: MESSENGER_CHANNEL, content: { text: 'Yes, answering on Messenger' } }], 'the reply follows them to Messenger')
  t.same(sms, [])
})
