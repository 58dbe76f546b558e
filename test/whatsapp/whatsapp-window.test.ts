import nock from 'nock'
import t, { type Test } from 'tap'
import { FAST_HASH_ENV, signedInAgent, type AgentSession } from '../auth/agent-session.js'
import { apiClient } from '../api/api-helpers.js'
import { buildTestApp, FakeClock, form } from '../helper.js'
import { MB_ENV } from '../webhooks/messagebird-sent.js'
import { MessageBirdChannel } from '../../src/messaging/messagebird-channel.js'

// The WhatsApp 24-hour window at the HTTP edge: the customer writes through the Conversations
// webhook, agents answer through the ticket page's forms, the real MessageBird SDK sends under
// nock, and the injected clock moves the window. What reached MessageBird is the evidence.

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const HTML = { accept: 'text/html' }
const CUSTOMER = '+31612345678'
const WA_CHANNEL = 'wa-channel-1'
const HOUR = 3600_000
type Agent = AgentSession & { id: number, name: string }
interface ConversationSend { to: string, from: string, type: string, content: Record<string, unknown> }
type Answer = [number, Record<string, unknown>]

async function setup (t: Test) {
  nock.disableNetConnect()
  const sms: Array<{ recipients: string[] | string, body: string }> = []
  const whatsapp: ConversationSend[] = []
  /** What the Conversations API answers next (then 202 with an id). */
  const answers: Answer[] = []
  let ids = 0
  nock('https://rest.messagebird.com').post('/messages').reply(201, (_uri, body) => {
    sms.push(body as { recipients: string[], body: string })
    return { id: `mb-sms-${++ids}` }
  }).persist()
  nock('https://conversations.messagebird.com').post('/v1/send').reply((_uri, body) => {
    whatsapp.push(body as ConversationSend)
    return answers.shift() ?? [202, { id: `mb-wa-${++ids}`, status: 'accepted' }]
  }).persist()
  t.teardown(() => {
    nock.cleanAll()
    nock.enableNetConnect()
  })
  const clock = new FakeClock()
  const channel = new MessageBirdChannel({ apiKey: 'test_key', originator: '3197010260000', whatsappChannelId: WA_CHANNEL, timeoutMs: 1000 })
  const built = await buildTestApp(t, { clock, channel, env: { ...MB_ENV, ...FAST_HASH_ENV, SECURE_COOKIES: 'false', SESSION_TTL_HOURS: '720', MESSAGEBIRD_WHATSAPP_CHANNEL_ID: WA_CHANNEL } })
  const ada = await signedInAgent(built.app, { email: 'ada@example.com', name: 'Ada Lovelace' })
  const boss = await signedInAgent(built.app, { email: 'boss@example.com', name: 'Grace Admin', role: 'admin' })
  let n = 0
  /** The customer writes on WhatsApp (a Conversations API webhook); the ticket's id. */
  const whatsappIn = async (text: string): Promise<number> => {
    const res = await built.app.inject({
      method: 'POST',
      url: '/webhooks/messagebird/conversations',
      payload: { type: 'message.created', message: { id: `wa-in-${++n}`, status: 'received', direction: 'received', platform: 'whatsapp', from: CUSTOMER, type: 'text', content: { text } } }
    })
    if (res.statusCode !== 200) throw new Error(`webhook answered ${res.statusCode}: ${res.body}`)
    const row = await built.db.selectFrom('messages').select('ticket_id').where('provider_message_id', '=', `wa-in-${n}`).executeTakeFirstOrThrow()
    return row.ticket_id
  }
  const outbound = async (ticketId: number) => await built.db.selectFrom('messages').select(['id', 'kind', 'channel', 'to_address', 'body', 'status', 'template', 'status_reason', 'error_code'])
    .where('ticket_id', '=', ticketId).where('direction', '=', 'outbound').orderBy('created_at').orderBy('id').execute()
  const drain = async (): Promise<number> => await built.services.worker.drain()
  return { ...built, clock, ada, boss, whatsappIn, outbound, drain, sms, whatsapp, answers }
}

const post = async (agent: Agent, url: string, fields: Record<string, string> | URLSearchParams) =>
  await agent.inject({ method: 'POST', url, headers: { ...FORM, ...HTML }, payload: fields instanceof URLSearchParams ? fields.toString() : form(fields) })
const page = async (agent: Agent, ticketId: number) => (await agent.inject({ method: 'GET', url: `/tickets/${ticketId}`, headers: HTML })).body

/** The customer's ticket after their WhatsApp message, with the confirmation already sent. */
async function customerWrote (s: Awaited<ReturnType<typeof setup>>, text = 'Is my order on its way?') {
  const ticketId = await s.whatsappIn(text)
  await s.drain()
  s.whatsapp.length = 0
  s.sms.length = 0
  return ticketId
}

t.test('inside the window: the composer says for how long, picks WhatsApp, and free text goes out as WhatsApp text', async (t) => {
  const s = await setup(t)
  const ticketId = await customerWrote(s)
  s.clock.advance(20 * HOUR + 48 * 60_000)
  const html = await page(s.ada, ticketId)
  t.match(html, /<p class="whatsapp-window" id="whatsapp-window" role="status">WhatsApp window open for 3 h 12 min \(until <time datetime="2026-01-02T09:00:00.000Z">/, 'open, and until when')
  t.match(html, /<option value="whatsapp:\+31612345678" data-channel="whatsapp" data-channel-label="WhatsApp" data-address="\+31612345678" data-limit="4096" data-window="WhatsApp window open for 3 h 12 min" data-window-open="1" selected>WhatsApp \+31612345678<\/option>/, 'their WhatsApp, where they last wrote, is chosen')
  t.match(html, /<option value="sms:\+31612345678" data-channel="sms" data-channel-label="SMS" data-address="\+31612345678" data-limit="1600">SMS \+31612345678<\/option>/, 'their number by SMS is offered too')
  t.match(html, /WhatsApp \+31612345678: at most 4096 characters\./, 'the channel\'s limit')
  t.match(html, /id="send-as-sms" hidden>Send as SMS instead/, 'no SMS offer while the window is open')

  const res = await post(s.ada, `/tickets/${ticketId}/replies`, { body: 'Yes, it arrives tomorrow', to: `whatsapp:${CUSTOMER}` })
  t.equal(res.statusCode, 303)
  await s.drain()
  t.same(s.whatsapp, [{ to: CUSTOMER, from: WA_CHANNEL, type: 'text', content: { text: 'Yes, it arrives tomorrow' }, reportUrl: 'https://support.example.com/webhooks/messagebird/conversations' }], 'free text on WhatsApp')
  t.same(s.sms, [], 'no SMS')

  // WhatsApp takes up to 4,096 characters; more is refused with its own limit, nothing queued.
  const long = await post(s.ada, `/tickets/${ticketId}/replies`, { body: 'x'.repeat(4097), to: `whatsapp:${CUSTOMER}` })
  t.equal(long.statusCode, 422)
  t.match(long.body, /The reply is 4097 characters long; WhatsApp takes at most 4,096/)
  const fits = await post(s.ada, `/tickets/${ticketId}/replies`, { body: 'y'.repeat(2000), to: `whatsapp:${CUSTOMER}` })
  t.equal(fits.statusCode, 303, '2,000 characters are fine on WhatsApp (over the SMS limit)')
})

t.test('outside the window: the composer says closed, free text to WhatsApp is refused before queueing, "Send as SMS instead" sends it by SMS', async (t) => {
  const s = await setup(t)
  const ticketId = await customerWrote(s)
  s.clock.advance(24 * HOUR + 60_000)
  let html = await page(s.ada, ticketId)
  t.match(html, /<p class="whatsapp-window closed" id="whatsapp-window" role="status">WhatsApp window closed: free text cannot be sent<\/p>/)
  t.match(html, /<button type="submit" name="send_as_sms" value="1" class="secondary" id="send-as-sms">Send as SMS instead<\/button>/, 'one click to SMS')

  const before = await s.outbound(ticketId)
  const res = await post(s.ada, `/tickets/${ticketId}/replies`, { body: 'Your order ships today', to: `whatsapp:${CUSTOMER}` })
  t.equal(res.statusCode, 409)
  t.match(res.body, /WhatsApp window closed: free text cannot be sent\. WhatsApp refuses free text more than 24 h after the customer&#x27;s last WhatsApp message\. Send an approved template, or send it as SMS instead\. Nothing was sent\./)
  t.match(res.body, />Your order ships today<\/textarea>/, 'the draft is kept')
  t.same(await s.outbound(ticketId), before, 'nothing stored')
  await s.drain()
  t.same(s.whatsapp, [], 'nothing reached MessageBird')

  const asSms = await post(s.ada, `/tickets/${ticketId}/replies`, { body: 'Your order ships today', to: `whatsapp:${CUSTOMER}`, send_as_sms: '1' })
  t.equal(asSms.statusCode, 303)
  await s.drain()
  t.same(s.sms.map((m) => [m.recipients, m.body]), [['31612345678', 'Your order ships today']], 'the same text by SMS to their number')
  t.same(s.whatsapp, [])
  html = await page(s.ada, ticketId)
  t.match(html, /Your order ships today/)

  // The customer writes on WhatsApp again: the window opens again.
  await s.whatsappIn('Thanks!')
  html = await page(s.ada, ticketId)
  t.match(html, /WhatsApp window open for 24 h 0 min/)
  t.equal((await post(s.ada, `/tickets/${ticketId}/replies`, { body: 'You are welcome', to: `whatsapp:${CUSTOMER}` })).statusCode, 303)
})

t.test('templates: admins keep the list (422 for bad input, 403 for agents), and a template goes out as hsm outside the window', async (t) => {
  const s = await setup(t)
  t.equal((await s.ada.inject({ method: 'GET', url: '/admin/templates', headers: HTML })).statusCode, 403, 'agents cannot open the list')
  const refused = await post(s.ada, '/admin/templates', { namespace: 'ns_1', name: 'order_update', language: 'en', params: 'name' })
  t.equal(refused.statusCode, 403)
  t.match(refused.body, /Only an admin can add a WhatsApp template/)

  const bad = await post(s.boss, '/admin/templates', { namespace: 'ns 1', name: 'Order Update', language: 'english', params: '' })
  t.equal(bad.statusCode, 422)
  t.match(bad.body, /The namespace is letters, digits, _ and - only/)
  t.match(bad.body, /&quot;Order Update&quot; is not a WhatsApp template name/)
  t.match(bad.body, /&quot;english&quot; is not a language code/)
  t.match(bad.body, /value="Order Update"/, 'what was typed is kept')
  t.equal((await s.db.selectFrom('whatsapp_templates').selectAll().execute()).length, 0, 'nothing saved')

  const made = await post(s.boss, '/admin/templates', { namespace: 'cdb2df51_9816_c754', name: 'order_update', language: 'en_US', params: 'customer name\norder number' })
  t.equal(made.statusCode, 303)
  const dup = await post(s.boss, '/admin/templates', { namespace: 'cdb2df51_9816_c754', name: 'order_update', language: 'en_US', params: '' })
  t.equal(dup.statusCode, 422)
  t.match(dup.body, /There is already a template order_update \(en_US\)/)
  const [tpl] = await s.db.selectFrom('whatsapp_templates').selectAll().execute()
  t.same(JSON.parse(tpl.params), ['customer name', 'order number'])
  const edited = await post(s.boss, `/admin/templates/${tpl.id}`, { namespace: 'cdb2df51_9816_c754', name: 'order_update', language: 'en_US', params: 'customer name, order number' })
  t.equal(edited.statusCode, 303)
  const list = (await s.boss.inject({ method: 'GET', url: '/admin/templates', headers: HTML })).body
  t.match(list, /<td><code>order_update<\/code><\/td>\s*<td>en_US<\/td>\s*<td><code>cdb2df51_9816_c754<\/code><\/td>\s*<td>2: customer name, order number<\/td>/)
  const noCsrf = await s.boss.inject({ method: 'POST', url: `/admin/templates/${tpl.id}/delete`, headers: { ...FORM, ...HTML, 'x-csrf-token': '' }, payload: '' })
  t.equal(noCsrf.statusCode, 403, 'a form without the session\'s CSRF token is refused')
  t.equal((await s.db.selectFrom('whatsapp_templates').selectAll().execute()).length, 1, 'and changes nothing')

  const ticketId = await customerWrote(s)
  s.clock.advance(30 * HOUR)
  const html = await page(s.ada, ticketId)
  t.match(html, /<strong>order_update<\/strong> <span class="muted">\(en_US\)<\/span>/, 'the composer offers the template')
  t.match(html, /<label for="template-\d+-p0">customer name<\/label>/)

  const missing = await post(s.ada, `/tickets/${ticketId}/template`, new URLSearchParams([['template', String(tpl.id)], ['params', 'Ada'], ['params', '']]))
  t.equal(missing.statusCode, 422)
  t.match(missing.body, /Fill in &quot;order number&quot; for the template order_update\. Nothing was sent\./)

  const sent = await post(s.ada, `/tickets/${ticketId}/template`, new URLSearchParams([['template', String(tpl.id)], ['to', `whatsapp:${CUSTOMER}`], ['params', 'Ada'], ['params', 'A-1042']]))
  t.equal(sent.statusCode, 303)
  await s.drain()
  t.same(s.whatsapp, [{
    to: CUSTOMER,
    from: WA_CHANNEL,
    type: 'hsm',
    content: { hsm: { namespace: 'cdb2df51_9816_c754', templateName: 'order_update', language: { policy: 'deterministic', code: 'en_US' }, params: [{ default: 'Ada' }, { default: 'A-1042' }] } },
    reportUrl: 'https://support.example.com/webhooks/messagebird/conversations'
  }], 'the exact hsm request')
  const rows = await s.outbound(ticketId)
  t.match(rows.at(-1), { channel: 'whatsapp', status: 'sent', body: 'WhatsApp template order_update (en_US): Ada · A-1042' }, 'stored with a readable text')

  t.equal((await post(s.boss, `/admin/templates/${tpl.id}/delete`, {})).statusCode, 303)
  t.equal((await s.db.selectFrom('whatsapp_templates').selectAll().execute()).length, 0, 'deleted')
  t.equal((await post(s.ada, `/tickets/${ticketId}/template`, new URLSearchParams([['template', String(tpl.id)], ['params', 'Ada'], ['params', 'A-1']]))).statusCode, 422, 'a deleted template is refused')
})

t.test('"Send to": an address that is not the customer\'s is a 422 and nothing is queued', async (t) => {
  const s = await setup(t)
  const ticketId = await customerWrote(s)
  const before = await s.outbound(ticketId)
  for (const to of ['sms:+31699999999', 'whatsapp:+31699999999', 'telegram:+31612345678', 'nonsense']) {
    const res = await post(s.ada, `/tickets/${ticketId}/replies`, { body: 'Hello', to })
    t.equal(res.statusCode, 422, to)
    t.match(res.body, /is not one of this customer&#x27;s addresses; pick one from &quot;Send to&quot;\. Nothing was sent\./, to)
  }
  t.same(await s.outbound(ticketId), before, 'nothing stored')
  const tpl = await post(s.ada, `/tickets/${ticketId}/template`, { template: '1', to: `sms:${CUSTOMER}` })
  t.equal(tpl.statusCode, 422, 'an unknown template')
})

t.test('an API dispatch: a WhatsApp step refused for the window fails over to SMS at once, and says why in plain words', async (t) => {
  const s = await setup(t)
  const api = await apiClient(s.app, s.services)
  s.answers.push([422, { errors: [{ code: 470, description: 'Message failed to send because more than 24 hours have passed since the customer last replied to this number', parameter: null }] }])
  const res = await api.post('/api/v1/dispatch', {
    template: 'failover',
    workflow: [
      { from: { type: 'whatsapp', id: WA_CHANNEL }, to: { type: 'whatsapp', number: '31612345678' }, message: { content: { type: 'text', text: 'Your cupcakes are ready' } }, failover: { expiry_time: 600, condition_status: 'delivered' } },
      { from: { type: 'sms', number: '3197010260000' }, to: { type: 'sms', number: '31612345678' }, message: { content: { type: 'text', text: 'Your cupcakes are ready' } } }
    ]
  })
  t.equal(res.statusCode, 202, res.body)
  await s.drain()
  await s.drain()
  t.equal(s.whatsapp.length, 1, 'WhatsApp was tried once')
  t.same(s.sms.map((m) => m.body), ['Your cupcakes are ready'], 'and the SMS step went out at once, without waiting for the expiry')
  const [wa] = await s.db.selectFrom('messages').select(['status', 'status_reason', 'error_code', 'ticket_id']).where('channel', '=', 'whatsapp').where('direction', '=', 'outbound').execute()
  t.match(wa, { status: 'failed', error_code: '470' })
  const html = await page(s.ada, wa.ticket_id)
  t.match(html, /WhatsApp refused free text: the customer last wrote on WhatsApp more than 24 hours ago\. Only an approved template, or an SMS, reaches them now\./, 'the reason in plain words')
})
