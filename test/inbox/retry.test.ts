import t, { type Test } from 'tap'
import { FAST_HASH_ENV, signedInAgent, type AgentSession } from '../auth/agent-session.js'
import { FakeClock, form } from '../helper.js'
import { messagebirdApp } from '../webhooks/messagebird-sent.js'

// Retrying a failed message from its bubble, at the HTTP edge: the customer texts through the
// webhook, the agent replies and retries through the page's forms, the real MessageBird SDK sends
// under nock, and a delivery report makes the reply fail. What reached MessageBird is the evidence.

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const HTML = { accept: 'text/html' }
const CUSTOMER = '31612345678'
type Agent = AgentSession & { id: number, name: string }

async function setup (t: Test) {
  const clock = new FakeClock()
  const built = await messagebirdApp(t, { clock, env: { ...FAST_HASH_ENV, SECURE_COOKIES: 'false' } })
  const ada = await signedInAgent(built.app, { email: 'ada@example.com', name: 'Ada Lovelace' })
  let n = 0
  const text = async (from: string, body: string): Promise<number> => {
    const res = await built.app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: from, payload: body, id: `in-${++n}` }) })
    if (res.statusCode !== 200) throw new Error(`webhook answered ${res.statusCode}`)
    return res.json().ticket_id as number
  }
  /** A ticket whose agent reply has failed (a delivery report said so): its id and the reply's. */
  const failedReply = async (from = CUSTOMER, body = 'Your parcel left today') => {
    const ticketId = await text(from, 'Where is my parcel?')
    t.equal((await post(ada, `/tickets/${ticketId}/replies`, { body })).statusCode, 303)
    const reply = await built.db.selectFrom('messages').select('id').where('ticket_id', '=', ticketId).where('kind', '=', 'reply').orderBy('created_at', 'desc').executeTakeFirstOrThrow()
    await built.drain()
    const report = await built.app.inject({ method: 'GET', url: `/webhooks/messagebird/status?id=x&reference=${reply.id}&status=delivery_failed&statusDatetime=2026-01-01T09:00:03%2B00:00&statusReason=unknown+subscriber` })
    t.equal(report.statusCode, 200)
    return { ticketId, messageId: reply.id }
  }
  const rows = async (ticketId: number) => await built.db.selectFrom('messages').select(['id', 'to_address', 'channel', 'body', 'status', 'retry_of', 'agent_id', 'kind'])
    .where('ticket_id', '=', ticketId).where('direction', '=', 'outbound').orderBy('created_at').orderBy('id').execute()
  return { ...built, clock, ada, text, failedReply, rows }
}

const post = async (agent: Agent, url: string, fields: Record<string, string>) =>
  await agent.inject({ method: 'POST', url, headers: { ...FORM, ...HTML }, payload: form(fields) })
const page = async (agent: Agent, ticketId: number) => (await agent.inject({ method: 'GET', url: `/tickets/${ticketId}`, headers: HTML })).body
const item = (html: string, id: string) => new RegExp(`<li class="msg [^"]*" data-item-id="${id}"[\\s\\S]*?</li>`).exec(html)?.[0] ?? ''

t.test('a failed reply is retried to the same number: a new message linked both ways, sent once through the outbox', async (t) => {
  const s = await setup(t)
  const { ticketId, messageId } = await s.failedReply()
  t.equal(s.sent.length, 2, 'the confirmation and the reply went out')
  let html = await page(s.ada, ticketId)
  t.match(item(html, messageId), /<span class="status failed"/)
  t.match(item(html, messageId), new RegExp(`<form method="post" action="/tickets/${ticketId}/messages/${messageId}/retry" class="retry">`), 'the failed bubble offers Retry')
  t.notMatch(item(html, messageId), /<select/, 'one address: no list to choose from')
  const confirmation = (await s.rows(ticketId)).find((m) => m.kind === 'confirmation')
  t.notMatch(item(html, confirmation?.id ?? 'x'), /class="retry"/, 'a delivered (sent) message offers no Retry')

  const res = await post(s.ada, `/tickets/${ticketId}/messages/${messageId}/retry`, {})
  t.equal(res.statusCode, 303)
  const retry = (await s.rows(ticketId)).find((m) => m.retry_of === messageId)
  t.ok(retry, 'a new message, linked to the failed one')
  t.equal(res.headers.location, `/tickets/${ticketId}#m-${retry?.id ?? ''}`, 'back to the ticket, at the retry')
  t.same({ to: retry?.to_address, channel: retry?.channel, body: retry?.body, status: retry?.status, agent: retry?.agent_id, kind: retry?.kind },
    { to: '+31612345678', channel: 'sms', body: 'Your parcel left today', status: 'queued', agent: s.ada.id, kind: 'reply' }, 'the same text to the same number, queued as the agent\'s')
  t.equal(Number((await s.db.selectFrom('outbox').select((eb) => eb.fn.countAll().as('n')).where('message_id', '=', retry?.id ?? '').executeTakeFirstOrThrow()).n), 1, 'its send is an outbox row')
  await s.drain()
  t.same(s.sent.slice(2).map((m) => [m.recipients, m.body]), [['31612345678', 'Your parcel left today']], 'sent once, by the SDK')

  html = await page(s.ada, ticketId)
  t.match(item(html, messageId), new RegExp(`retried as <a href="#m-${retry?.id ?? ''}">the message of`), 'the original says what it was retried as')
  t.notMatch(item(html, messageId), /class="retry"/, 'and offers Retry no more')
  t.match(item(html, retry?.id ?? ''), new RegExp(`retry of <a href="#m-${messageId}">the failed message of`), 'the retry links back')
  t.match(html, new RegExp(`id="m-${retry?.id ?? ''}"`), 'the link target exists')
  t.match(html, /<li class="event" data-item-id="event-\d+">Ada Lovelace retried a failed message · /, 'the timeline records who retried')
})

t.test('a failed reply is retried to another of the customer\'s addresses, chosen from a list', async (t) => {
  const s = await setup(t)
  const { ticketId, messageId } = await s.failedReply()
  t.equal((await post(s.ada, `/tickets/${ticketId}/addresses`, { channel: 'sms', address: '+31687654321' })).statusCode, 303)
  const html = await page(s.ada, ticketId)
  t.match(item(html, messageId), /<label for="retry-to-[^"]+">Send again to<\/label>/)
  t.match(item(html, messageId), /<option value="sms:\+31612345678" selected>SMS \+31612345678<\/option><option value="sms:\+31687654321">SMS \+31687654321<\/option>/, 'the contact\'s addresses, the one it went to first')
  const res = await post(s.ada, `/tickets/${ticketId}/messages/${messageId}/retry`, { to: 'sms:+31687654321' })
  t.equal(res.statusCode, 303)
  await s.drain()
  t.same(s.sent.slice(2).map((m) => [m.recipients, m.body]), [['31687654321', 'Your parcel left today']], 'sent to the other number')
  const retry = (await s.rows(ticketId)).find((m) => m.retry_of === messageId)
  t.equal(retry?.to_address, '+31687654321')
})

t.test('a double click sends once: sequential and concurrent POSTs create one retry and land on it', async (t) => {
  const s = await setup(t)
  const { ticketId, messageId } = await s.failedReply()
  const url = `/tickets/${ticketId}/messages/${messageId}/retry`
  const first = await post(s.ada, url, {})
  const second = await post(s.ada, url, {})
  t.equal(first.statusCode, 303)
  t.equal(second.statusCode, 303, 'the second click is no error')
  t.equal(second.headers.location, first.headers.location, 'it lands on the same retry')
  t.equal((await s.rows(ticketId)).filter((m) => m.retry_of === messageId).length, 1, 'one retry row')
  let before = s.sent.length
  await s.drain()
  t.same(s.sent.slice(before).map((m) => m.body), ['Your parcel left today'], 'sent again exactly once')

  // Concurrent: a second failed message, two POSTs at once.
  const other = await s.failedReply(CUSTOMER, 'Second try')
  const both = await Promise.all([post(s.ada, `/tickets/${other.ticketId}/messages/${other.messageId}/retry`, {}), post(s.ada, `/tickets/${other.ticketId}/messages/${other.messageId}/retry`, {})])
  t.same(both.map((r) => r.statusCode), [303, 303], 'neither is a 500')
  t.equal(both[0].headers.location, both[1].headers.location, 'both land on the one retry')
  t.equal((await s.rows(other.ticketId)).filter((m) => m.retry_of === other.messageId).length, 1, 'one retry row')
  before = s.sent.length
  await s.drain()
  t.same(s.sent.slice(before).map((m) => m.body), ['Second try'], 'sent again exactly once')
  const events = await s.db.selectFrom('ticket_events').select('id').where('kind', '=', 'retry').execute()
  t.equal(events.length, 2, 'one timeline entry per retry')
})

t.test('refusals: not failed, inbound, another ticket, an address not the customer\'s, an opted-out customer', async (t) => {
  const s = await setup(t)
  const { ticketId, messageId } = await s.failedReply()
  const all = await s.rows(ticketId)
  const confirmation = all.find((m) => m.kind === 'confirmation')?.id ?? ''
  const inbound = (await s.db.selectFrom('messages').select('id').where('ticket_id', '=', ticketId).where('direction', '=', 'inbound').executeTakeFirstOrThrow()).id
  const retryUrl = (ticket: number, message: string) => `/tickets/${ticket}/messages/${message}/retry`
  const count = async () => (await s.db.selectFrom('messages').select('id').execute()).length
  const messagesBefore = await count()

  const notFailed = await post(s.ada, retryUrl(ticketId, confirmation), {})
  t.equal(notFailed.statusCode, 422)
  t.match(notFailed.body, /Only a failed message can be retried; this one is sent\. Nothing was sent\./)
  const fromCustomer = await post(s.ada, retryUrl(ticketId, inbound), {})
  t.equal(fromCustomer.statusCode, 422)
  t.match(fromCustomer.body, /Only a message to the customer can be retried/)

  const otherTicket = await s.text('31611111111', 'Another customer')
  const elsewhere = await post(s.ada, retryUrl(otherTicket, messageId), {})
  t.equal(elsewhere.statusCode, 404, 'a message of another ticket is not found on this one')
  t.equal((await post(s.ada, retryUrl(ticketId, 'no-such-message'), {})).statusCode, 404)
  t.equal((await post(s.ada, retryUrl(999, messageId), {})).statusCode, 404)

  const stranger = await post(s.ada, retryUrl(ticketId, messageId), { to: 'sms:+31611111111' })
  t.equal(stranger.statusCode, 422, 'another customer\'s number')
  t.match(stranger.body, /\+31611111111 is not one of this customer&#x27;s addresses; choose one from the list\. Nothing was sent\./)
  const garbage = await post(s.ada, retryUrl(ticketId, messageId), { to: 'carrier-pigeon' })
  t.equal(garbage.statusCode, 422)

  await s.text(CUSTOMER, 'STOP')
  const optedOut = await post(s.ada, retryUrl(ticketId, messageId), {})
  t.equal(optedOut.statusCode, 422)
  t.match(optedOut.body, /This customer texted STOP: nothing is sent to them until they text START\. Nothing was sent\./)
  t.notMatch(item(await page(s.ada, ticketId), messageId), /class="retry"/, 'no Retry offered while they opted out')
  const stored = await s.db.selectFrom('messages').select(['id', 'retry_of']).execute()
  t.equal(stored.filter((m) => m.retry_of !== null).length, 0, 'no retry was stored')
  t.equal(stored.length, messagesBefore + 1 + 1 + 1 + 1, 'only the other customer\'s text and confirmation, the STOP and its answer')
})
