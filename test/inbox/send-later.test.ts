import t, { type Test } from 'tap'
import { FAST_HASH_ENV, signedInAgent, type AgentSession } from '../auth/agent-session.js'
import { FakeClock, form } from '../helper.js'
import { apiClient, bakeryWorkflow } from '../api/api-helpers.js'
import { MB_ENV, messagebirdApp } from '../webhooks/messagebird-sent.js'

// Send later and quiet hours at the HTTP edge: the customer texts through the webhook, the agent
// schedules, edits and cancels through the page's forms, a business system calls the API, the real
// MessageBird SDK sends under nock, and the injected clock moves time; the worker's drain stands
// for its polling. What reached MessageBird, and when, is the evidence.
//
// The clock starts at 2026-01-01T09:00Z: 10:00 in the Netherlands (CET, UTC+1), 18:00 in Japan.

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const HTML = { accept: 'text/html' }
const NL = '31612345678'
type Agent = AgentSession & { id: number, name: string }

async function setup (t: Test, env: Record<string, string> = {}) {
  const clock = new FakeClock()
  const built = await messagebirdApp(t, { clock, env: { ...FAST_HASH_ENV, SECURE_COOKIES: 'false', SESSION_TTL_HOURS: '720', LOG_LEVEL: 'warn', ...env } })
  const ada = await signedInAgent(built.app, { email: 'ada@example.com', name: 'Ada Lovelace' })
  let n = 0
  let seen = 0
  const text = async (from: string, body: string): Promise<number> => {
    const res = await built.app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: from, payload: body, id: `in-${++n}` }) })
    if (res.statusCode !== 200) throw new Error(`webhook answered ${res.statusCode}`)
    return res.json().ticket_id as number
  }
  /** A ticket from `from`, its confirmation already sent. */
  const ticket = async (from = NL) => {
    const id = await text(from, 'Where is my parcel?')
    await built.drain()
    seen = built.sent.length
    return id
  }
  /** What reached MessageBird since the last ticket was opened (its confirmation excluded). */
  const out = () => built.sent.slice(seen)
  const post = async (url: string, fields: Record<string, string>, agent: Agent = ada) =>
    await agent.inject({ method: 'POST', url, headers: { ...FORM, ...HTML }, payload: form(fields) })
  const page = async (ticketId: number) => (await ada.inject({ method: 'GET', url: `/tickets/${ticketId}`, headers: HTML })).body
  const replies = async (ticketId: number) => await built.db.selectFrom('messages').select(['id', 'body', 'status', 'send_at', 'status_reason', 'error_code'])
    .where('ticket_id', '=', ticketId).where('kind', '=', 'reply').orderBy('send_at').orderBy('created_at').orderBy('id').execute()
  const sendRow = async (messageId: string) => await built.db.selectFrom('outbox').select(['run_at']).where('kind', '=', 'send').where('message_id', '=', messageId).executeTakeFirst()
  /** Moves the clock to `iso` and runs the worker as its poll would. */
  const at = async (iso: string) => {
    clock.set(iso)
    await built.drain()
  }
  return { ...built, clock, ada, text, ticket, out, post, page, replies, sendRow, at }
}

const item = (html: string, id: string) => new RegExp(`<li class="msg [^"]*" data-item-id="${id}"[\\s\\S]*?</li>`).exec(html)?.[0] ?? ''

t.test('a scheduled reply waits in the outbox and goes out at its time, in the customer\'s zone', async (t) => {
  const s = await setup(t)
  const ticketId = await s.ticket()
  const html = await s.page(ticketId)
  t.match(html, /<input type="datetime-local" id="send-at" name="send_at" value="">/, 'the composer offers a date and time')
  t.match(html, /<option value="their">their time \(Europe\/[A-Za-z]+\)<\/option>/, 'in the customer\'s zone, named')
  t.match(html, new RegExp(`formaction="/tickets/${ticketId}/scheduled"[^>]*>Send later</button>`))

  const res = await s.post(`/tickets/${ticketId}/scheduled`, { body: 'Your parcel arrives this afternoon', send_at: '2026-01-01T14:30', zone: 'their' })
  t.equal(res.statusCode, 303)
  const [reply] = await s.replies(ticketId)
  t.equal(res.headers.location, `/tickets/${ticketId}#m-${reply.id}`)
  t.same({ status: reply.status, sendAt: reply.send_at }, { status: 'queued', sendAt: '2026-01-01T13:30:00.000Z' }, '14:30 in the Netherlands is 13:30 UTC')
  t.equal((await s.sendRow(reply.id))?.run_at, '2026-01-01T13:30:00.000Z', 'its send is an outbox row due then: it survives a restart')
  t.match(item(await s.page(ticketId), reply.id), /Scheduled: will send at 14:30 their time/)

  await s.drain()
  await s.at('2026-01-01T13:29:59.000Z')
  t.same(s.out(), [], 'nothing before its time')
  await s.at('2026-01-01T13:30:00.000Z')
  t.same(s.out().map((m) => [m.recipients, m.body]), [[NL, 'Your parcel arrives this afternoon']], 'sent at its time, by the SDK')
  t.equal((await s.replies(ticketId))[0].status, 'sent')
  const after = item(await s.page(ticketId), reply.id)
  t.match(after, /Was scheduled for 14:30 their time/)
  t.notMatch(after, /class="cancel-scheduled"/, 'no Cancel once sent')
})

t.test('an explicit zone (the agent\'s browser\'s) is honoured', async (t) => {
  const s = await setup(t)
  const ticketId = await s.ticket()
  t.equal((await s.post(`/tickets/${ticketId}/scheduled`, { body: 'Morning in New York', send_at: '2026-01-01T09:15', zone: 'America/New_York' })).statusCode, 303)
  t.equal((await s.replies(ticketId))[0].send_at, '2026-01-01T14:15:00.000Z', '09:15 in New York (UTC-5)')
})

t.test('bad times are refused with a sentence, the draft is kept, and nothing is stored', async (t) => {
  const s = await setup(t)
  const ticketId = await s.ticket()
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ send_at: '2026-01-01T09:59', zone: 'their' }, /2026-01-01 09:59 \(Europe\/[A-Za-z]+\) has already passed: it is now 2026-01-01 10:00 there\. Choose a later time/],
    [{ send_at: '2026-02-30T10:00', zone: 'their' }, /&quot;2026-02-30T10:00&quot; is not a date and time/],
    [{ send_at: 'tomorrow', zone: 'their' }, /&quot;tomorrow&quot; is not a date and time/],
    [{ send_at: '', zone: 'their' }, /Choose the date and time to send it at/],
    [{ send_at: '2026-01-02T10:00', zone: 'Mars/Olympus' }, /&quot;Mars\/Olympus&quot; is not a time zone/],
    [{ send_at: '2028-01-01T10:00', zone: 'their' }, /at most 365 days ahead/]
  ]
  for (const [fields, message] of cases) {
    const res = await s.post(`/tickets/${ticketId}/scheduled`, { body: 'Keep this text', ...fields })
    t.equal(res.statusCode, 422, JSON.stringify(fields))
    t.match(res.body, message)
    t.match(res.body, />Keep this text<\/textarea>/, 'the agent\'s text is kept')
  }
  t.same(await s.replies(ticketId), [], 'nothing stored')
  t.equal((await s.post(`/tickets/${ticketId}/scheduled`, { body: '  ', send_at: '2026-01-02T10:00', zone: 'their' })).statusCode, 422, 'an empty reply')
})

t.test('cancel: a scheduled reply is never sent, and cancelling again, or after it went, is 409', async (t) => {
  const s = await setup(t)
  const ticketId = await s.ticket()
  await s.post(`/tickets/${ticketId}/scheduled`, { body: 'Never mind', send_at: '2026-01-01T12:00', zone: 'their' })
  const [reply] = await s.replies(ticketId)
  t.match(item(await s.page(ticketId), reply.id), new RegExp(`action="/tickets/${ticketId}/messages/${reply.id}/cancel"`))
  const res = await s.post(`/tickets/${ticketId}/messages/${reply.id}/cancel`, {})
  t.equal(res.statusCode, 303)
  t.match(await s.replies(ticketId), [{ status: 'blocked', status_reason: 'Cancelled by Ada Lovelace before it was sent.', error_code: 'CANCELLED' }])
  t.equal(await s.sendRow(reply.id), undefined, 'its send is gone from the outbox')
  await s.at('2026-01-01T12:00:00.000Z')
  await s.at('2026-01-02T12:00:00.000Z')
  t.same(s.out(), [], 'never sent')
  const again = await s.post(`/tickets/${ticketId}/messages/${reply.id}/cancel`, {})
  t.equal(again.statusCode, 409)
  t.match(again.body, /already cancelled/)

  await s.post(`/tickets/${ticketId}/scheduled`, { body: 'Too late to stop', send_at: '2026-01-02T14:00', zone: 'their' })
  const sent = (await s.replies(ticketId))[1]
  await s.at('2026-01-02T13:00:00.000Z')
  t.equal(s.out().length, 1)
  const late = await s.post(`/tickets/${ticketId}/messages/${sent.id}/cancel`, {})
  t.equal(late.statusCode, 409)
  t.match(late.body, /already left the queue \(sent\), so it can no longer be changed or cancelled/)
  const edit = await s.post(`/tickets/${ticketId}/messages/${sent.id}/edit`, { body: 'changed', send_at: '2026-01-03T10:00' })
  t.equal(edit.statusCode, 409, 'editing a sent one too')
  t.equal((await s.replies(ticketId))[1].body, 'Too late to stop', 'and nothing changed')
  const other = await s.post(`/tickets/${ticketId}/messages/nope/cancel`, {})
  t.equal(other.statusCode, 404, 'not a scheduled reply of this ticket')
})

t.test('edit: the new text goes out at the new time, not the old one', async (t) => {
  const s = await setup(t)
  const ticketId = await s.ticket()
  await s.post(`/tickets/${ticketId}/scheduled`, { body: 'First draft', send_at: '2026-01-01T12:00', zone: 'their' })
  const [reply] = await s.replies(ticketId)
  t.match(item(await s.page(ticketId), reply.id), /<input type="datetime-local" id="edit-at-[^"]+" name="send_at" value="2026-01-01T12:00">/, 'the edit form holds the time in their zone')
  const res = await s.post(`/tickets/${ticketId}/messages/${reply.id}/edit`, { body: 'Final text', send_at: '2026-01-01T16:00', zone: 'their' })
  t.equal(res.statusCode, 303)
  t.equal((await s.sendRow(reply.id))?.run_at, '2026-01-01T15:00:00.000Z', 'the outbox row moved')
  const bad = await s.post(`/tickets/${ticketId}/messages/${reply.id}/edit`, { body: 'x', send_at: '2025-01-01T16:00', zone: 'their' })
  t.equal(bad.statusCode, 422, 'an edit into the past is refused')
  await s.at('2026-01-01T11:00:00.000Z')
  t.same(s.out(), [], 'not at the old time')
  await s.at('2026-01-01T15:00:00.000Z')
  t.same(s.out().map((m) => m.body), ['Final text'])
})

t.test('an edit to a later time while the worker holds the row is honoured: the worker reads the time again', async (t) => {
  const s = await setup(t)
  const ticketId = await s.ticket()
  await s.post(`/tickets/${ticketId}/scheduled`, { body: 'Soon', send_at: '2026-01-01T11:00', zone: 'their' })
  const [reply] = await s.replies(ticketId)
  s.clock.set('2026-01-01T10:00:00.000Z')
  const claimed = await s.services.worker.claim()
  t.equal(claimed.length, 1, 'the worker leased the row')
  t.equal((await s.post(`/tickets/${ticketId}/messages/${reply.id}/edit`, { body: 'Later', send_at: '2026-01-01T18:00', zone: 'their' })).statusCode, 303)
  await s.services.worker.process(claimed)
  t.same(s.out(), [], 'not sent at the old time')
  t.equal((await s.sendRow(reply.id))?.run_at, '2026-01-01T17:00:00.000Z', 'due again at the new time')
  await s.at('2026-01-01T17:00:00.000Z')
  t.same(s.out().map((m) => m.body), ['Later'])
})

t.test('opt-out between scheduling and sending blocks the scheduled reply', async (t) => {
  const s = await setup(t)
  const ticketId = await s.ticket()
  await s.post(`/tickets/${ticketId}/scheduled`, { body: 'A scheduled hello', send_at: '2026-01-01T12:00', zone: 'their' })
  await s.text(NL, 'STOP')
  await s.at('2026-01-01T12:00:00.000Z')
  t.same(s.out().map((m) => m.body).filter((b) => b === 'A scheduled hello'), [], 'never sent')
  t.match(await s.replies(ticketId), [{ status: 'blocked', error_code: 'OPTED_OUT' }])
  const refused = await s.post(`/tickets/${ticketId}/scheduled`, { body: 'another', send_at: '2026-01-02T12:00', zone: 'their' })
  t.equal(refused.statusCode, 422, 'and no new one can be scheduled')
  t.match(refused.body, /texted STOP/)
})

t.test('a STOP that commits after the worker leased the scheduled send still blocks it', async (t) => {
  const s = await setup(t)
  const ticketId = await s.ticket()
  await s.post(`/tickets/${ticketId}/scheduled`, { body: 'A scheduled hello', send_at: '2026-01-01T12:00', zone: 'their' })
  s.clock.set('2026-01-01T11:00:00.000Z')
  const claimed = await s.services.worker.claim()
  t.equal(claimed.length, 1)
  await s.text(NL, 'STOP')
  await s.services.worker.process(claimed)
  t.same(s.out().map((m) => m.body).filter((b) => b === 'A scheduled hello'), [])
  t.match(await s.replies(ticketId), [{ status: 'blocked' }])
})

t.test('consent is read at the moment of sending: a contact opted out by any path is not sent a scheduled reply', async (t) => {
  const s = await setup(t)
  const ticketId = await s.ticket()
  await s.post(`/tickets/${ticketId}/scheduled`, { body: 'A scheduled hello', send_at: '2026-01-01T12:00', zone: 'their' })
  // The opt-out as the worker's claim reads it, without the STOP's own blocking of queued messages.
  await s.db.updateTable('contacts').set({ opted_out_at: '2026-01-01T10:30:00.000Z' }).where('phone', '=', `+${NL}`).execute()
  await s.at('2026-01-01T11:00:00.000Z')
  t.same(s.out(), [], 'never sent')
  t.match(await s.replies(ticketId), [{ status: 'blocked', error_code: 'OPTED_OUT' }])
})

const QUIET = { QUIET_HOURS: '21:00-08:00' }

t.test('quiet hours hold a scheduled reply until they end, on both sides of midnight, in the recipient\'s zone', async (t) => {
  const s = await setup(t, QUIET)
  const ticketId = await s.ticket()
  t.match(await s.page(ticketId), /Quiet hours: 21:00–08:00 their time\. A scheduled reply due in them waits until they end; a reply sent now is never held\./)
  // Before midnight: 22:30 in the Netherlands.
  await s.post(`/tickets/${ticketId}/scheduled`, { body: 'Late evening', send_at: '2026-01-01T22:30', zone: 'their' })
  // After midnight: 02:00 there the next night.
  await s.post(`/tickets/${ticketId}/scheduled`, { body: 'Small hours', send_at: '2026-01-03T02:00', zone: 'their' })
  const [evening, night] = await s.replies(ticketId)
  t.match(item(await s.page(ticketId), evening.id), /Scheduled: will send at 08:00, Fri 2 Jan their time \(held by quiet hours, 21:00–08:00; scheduled for 22:30\)/, 'the ticket says when it will really go')

  await s.at('2026-01-01T21:30:00.000Z')
  t.same(s.out(), [], 'held at 22:30 their time')
  t.equal((await s.sendRow(evening.id))?.run_at, '2026-01-02T07:00:00.000Z', 'until 08:00 their time the next morning')
  t.match((await s.replies(ticketId))[0], { status: 'queued', status_reason: /Held for quiet hours \(21:00–08:00 their time\): sends at 08:00, Fri 2 Jan their time/ })
  await s.at('2026-01-02T06:59:59.000Z')
  t.same(s.out(), [])
  await s.at('2026-01-02T07:00:00.000Z')
  t.same(s.out().map((m) => m.body), ['Late evening'], 'sent when quiet hours end')

  await s.at('2026-01-03T01:00:00.000Z')
  t.same(s.out().map((m) => m.body), ['Late evening'], 'held at 02:00 their time')
  t.equal((await s.sendRow(night.id))?.run_at, '2026-01-03T07:00:00.000Z', 'until 08:00 the same morning')
  await s.at('2026-01-03T07:00:00.000Z')
  t.same(s.out().map((m) => m.body), ['Late evening', 'Small hours'])
})

t.test('quiet hours are the recipient\'s: Japan\'s night is not the Netherlands\'; a number of a country with several zones uses QUIET_HOURS_TIMEZONE', async (t) => {
  const s = await setup(t, { ...QUIET, QUIET_HOURS_TIMEZONE: 'America/New_York' })
  const jp = await s.ticket('819012345678')
  const us = await s.ticket('12125550123')
  const nl = await s.ticket(NL)
  // 14:00 UTC: 23:00 in Tokyo, 09:00 in New York, 15:00 in the Netherlands.
  for (const id of [jp, us, nl]) await s.post(`/tickets/${id}/scheduled`, { body: `to ${id}`, send_at: '2026-01-01T14:00', zone: 'UTC' })
  await s.at('2026-01-01T14:00:00.000Z')
  t.same(s.out().map((m) => m.body).sort(), [`to ${nl}`, `to ${us}`].sort(), 'Tokyo is held; New York and the Netherlands are awake')
  t.equal((await s.sendRow((await s.replies(jp))[0].id))?.run_at, '2026-01-01T23:00:00.000Z', '08:00 in Tokyo')
  t.match(await s.page(jp), /Quiet hours: 21:00–08:00 their time/)
  t.match(await s.page(us), /Quiet hours: 21:00–08:00 America\/New_York/, 'the fallback zone is named, not called "their time"')
  // 02:00 UTC the next day: 21:00 in New York.
  await s.post(`/tickets/${us}/scheduled`, { body: 'evening in NY', send_at: '2026-01-02T02:00', zone: 'UTC' })
  await s.at('2026-01-02T02:00:00.000Z')
  t.notOk(s.out().some((m) => m.body === 'evening in NY'), 'held in the fallback zone\'s night')
})

t.test('a reply typed live is never held by quiet hours', async (t) => {
  const s = await setup(t, QUIET)
  s.clock.set('2026-01-01T22:30:00.000Z')
  const ticketId = await s.ticket()
  t.equal((await s.post(`/tickets/${ticketId}/replies`, { body: 'Answering right away' })).statusCode, 303)
  await s.drain()
  t.same(s.out().map((m) => m.body), ['Answering right away'], 'sent at 23:30 their time')
})

t.test('API notifications wait out quiet hours unless the request says "urgent": true', async (t) => {
  const s = await setup(t, QUIET)
  const api = await apiClient(s.app, s.services)
  s.clock.set('2026-01-01T22:00:00.000Z')
  const held = await api.post('/api/v1/messages', { to: NL, text: 'Your order shipped' })
  t.equal(held.statusCode, 202)
  const urgent = await api.post('/api/v1/messages', { to: NL, text: 'Your card was blocked', urgent: true })
  t.equal(urgent.statusCode, 202)
  await s.drain()
  t.same(s.out().map((m) => m.body), ['Your card was blocked'], 'only the urgent one goes out at 23:00 their time')
  const status = await api.get(`/api/v1/messages/${held.json().message_uuid as string}`)
  t.match(status.json(), { status: 'queued', reason: /Held for quiet hours/ }, 'the API says why it waits')
  await s.at('2026-01-02T07:00:00.000Z')
  t.same(s.out().map((m) => m.body), ['Your card was blocked', 'Your order shipped'])
  const bad = await api.post('/api/v1/messages', { to: NL, text: 'x', urgent: 'yes' })
  t.equal(bad.statusCode, 422, 'urgent must be a boolean')
  const spec = (await s.app.inject({ method: 'GET', url: '/api/openapi.json' })).json()
  t.match(JSON.stringify(spec), /Send even during quiet hours/, 'the OpenAPI description documents it')
})

t.test('a failover handover due in quiet hours is held; in an urgent dispatch it is not', async (t) => {
  const s = await setup(t, QUIET)
  const api = await apiClient(s.app, s.services)
  // 20:59:50 in the Netherlands: the first step goes out; its 15 s expire after 21:00.
  s.clock.set('2026-01-01T19:59:50.000Z')
  // From this account's own sender: a `from` it does not own is refused (MB_ENV's originator).
  const ours = (first: string, second: string) => {
    const body = bakeryWorkflow(first, second)
    for (const step of body.workflow) step.from.number = MB_ENV.MESSAGEBIRD_ORIGINATOR
    return body
  }
  const normal = await api.post('/api/v1/dispatch', ours('31612345671', '31612345672'))
  t.equal(normal.statusCode, 202)
  const urgent = await api.post('/api/v1/dispatch', { ...ours('31612345673', '31612345674'), urgent: true })
  t.equal(urgent.statusCode, 202)
  await s.drain()
  t.same(s.out().map((m) => m.recipients).sort(), ['31612345671', '31612345673'], 'both first steps went out before 21:00')
  await s.at('2026-01-01T20:00:10.000Z')
  await s.drain()
  t.same(s.out().map((m) => m.recipients).sort(), ['31612345671', '31612345673', '31612345674'], 'the urgent handover went; the other waits')
  const step = await s.db.selectFrom('messages').select(['id', 'status', 'status_reason']).where('to_address', '=', '+31612345672').executeTakeFirstOrThrow()
  t.match(step, { status: 'queued', status_reason: /Held for quiet hours/ })
  t.equal((await s.sendRow(step.id))?.run_at, '2026-01-02T07:00:00.000Z')
  await s.at('2026-01-02T07:00:00.000Z')
  t.ok(s.out().some((m) => m.recipients === '31612345672'), 'the held handover goes out when quiet hours end')
})
