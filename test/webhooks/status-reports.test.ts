import t, { type Test } from 'tap'
import { fromProviderStatus } from '../../src/messaging/status.js'
import { buildTestApp, FakeClock } from '../helper.js'
import { ManualChannel, runDue, ticketFor } from '../messaging/failover-helpers.js'

type App = Awaited<ReturnType<typeof buildTestApp>>['app']

const dlr = async (app: App, q: Record<string, string>) => await app.inject({ method: 'GET', url: '/webhooks/messagebird/status?' + new URLSearchParams(q).toString() })
const conversation = async (app: App, message: Record<string, unknown>, type = 'message.updated') =>
  await app.inject({ method: 'POST', url: '/webhooks/messagebird/conversations', payload: { type, message: { direction: 'sent', platform: 'whatsapp', ...message } } })

/** An agent reply that the (manual) provider has accepted: status `sent`, provider id known. */
async function sentReply (t: Test, opts: { clock?: FakeClock } = {}) {
  const channel = new ManualChannel()
  const built = await buildTestApp(t, { clock: opts.clock, channel })
  const ticketId = await ticketFor(built.services, '+31612345678')
  const { messageId } = await built.services.tickets.reply(ticketId, 'Your order ships today', null)
  await runDue(built.services)
  const message = await built.db.selectFrom('messages').selectAll().where('id', '=', messageId).executeTakeFirstOrThrow()
  return { ...built, ticketId, message, providerId: message.provider_message_id as string }
}

t.test('every MessageBird status word maps onto our model', async (t) => {
  const sms: Record<string, string> = { scheduled: 'sent', sent: 'sent', buffered: 'buffered', delivered: 'delivered', expired: 'expired', delivery_failed: 'failed' }
  const conversations: Record<string, string> = { accepted: 'sent', pending: 'sent', transmitted: 'sent', sent: 'sent', delivered: 'delivered', read: 'read', failed: 'failed', rejected: 'failed', deleted: 'failed', unsupported: 'failed' }
  for (const [word, ours] of Object.entries({ ...sms, ...conversations })) t.equal(fromProviderStatus(word), ours, word)
  t.equal(fromProviderStatus('DELIVERED'), 'delivered', 'case does not matter')
  t.equal(fromProviderStatus('pending_media'), null, 'unknown words change nothing')
})

t.test('each SMS DLR status moves a fresh message to the mapped status, through the webhook', async (t) => {
  const { app, services, db } = await buildTestApp(t, { channel: new ManualChannel() })
  const ticketId = await ticketFor(services, '+31612345678')
  const expected: Record<string, string> = { scheduled: 'sent', sent: 'sent', buffered: 'buffered', delivered: 'delivered', expired: 'expired', delivery_failed: 'failed' }
  for (const [word, ours] of Object.entries(expected)) {
    const { messageId } = await services.tickets.reply(ticketId, `status ${word}`, null)
    const res = await dlr(app, { id: `mb-${word}`, reference: messageId, recipient: '31612345678', status: word, statusDatetime: '2026-01-01T09:00:05+00:00' })
    t.same(res.json(), { ok: true, matched: true }, word)
    const m = await db.selectFrom('messages').select(['status', 'status_at', 'provider_message_id']).where('id', '=', messageId).executeTakeFirstOrThrow()
    t.equal(m.status, ours, `${word} → ${ours}`)
    t.equal(m.status_at, '2026-01-01T09:00:05.000Z', 'the provider\'s status time is kept')
    t.equal(m.provider_message_id, `mb-${word}`)
  }
})

t.test('reason, error code, price and parts are stored; the raw report is kept as an event', async (t) => {
  const { app, db, message, providerId } = await sentReply(t)
  // A raw `+` in the offset arrives decoded as a space.
  const res = await app.inject({ method: 'GET', url: `/webhooks/messagebird/status?id=${providerId}&reference=${message.id}&recipient=31612345678&status=delivery_failed&statusDatetime=2026-01-01T09:00:07 00:00&statusReason=unknown+subscriber&statusErrorCode=1&price%5Bamount%5D=0.071&price%5Bcurrency%5D=EUR&messagePartCount=2&mccmnc=20416` })
  t.same(res.json(), { ok: true, matched: true })
  const m = await db.selectFrom('messages').selectAll().where('id', '=', message.id).executeTakeFirstOrThrow()
  t.match(m, { status: 'failed', status_at: '2026-01-01T09:00:07.000Z', status_reason: 'unknown subscriber', error_code: '1', price_amount: '0.071', price_currency: 'EUR', segments: 2 })
  const events = await db.selectFrom('message_events').selectAll().where('message_id', '=', message.id).execute()
  t.equal(events.length, 1)
  t.match(events[0], { status: 'delivery_failed', occurred_at: '2026-01-01T09:00:07.000Z', source: 'messagebird' })
  t.match(JSON.parse(events[0].raw as string), { id: providerId, statusReason: 'unknown subscriber', mccmnc: '20416', 'price[amount]': '0.071' })
})

t.test('a duplicate report changes nothing', async (t) => {
  const clock = new FakeClock()
  const { app, db, message, providerId } = await sentReply(t, { clock })
  const q = { id: providerId, reference: message.id, status: 'delivered', statusDatetime: '2026-01-01T09:00:05+00:00', statusReason: 'successfully delivered' }
  t.equal((await dlr(app, q)).statusCode, 200)
  const after1 = await db.selectFrom('messages').selectAll().where('id', '=', message.id).executeTakeFirstOrThrow()
  clock.advance(60_000)
  const second = await dlr(app, q)
  t.same(second.json(), { ok: true, matched: true })
  const after2 = await db.selectFrom('messages').selectAll().where('id', '=', message.id).executeTakeFirstOrThrow()
  t.same(after2, after1, 'the message row is untouched, updated_at included')
})

t.test('a report that does not move the status changes no price or parts, and is still kept as an event', async (t) => {
  const clock = new FakeClock()
  const { app, db, message, providerId } = await sentReply(t, { clock })
  const report = async (status: string, amount: string, parts: string) => {
    clock.advance(60_000)
    const res = await dlr(app, { id: providerId, reference: message.id, status, statusDatetime: clock.now().toISOString(), 'price[amount]': amount, 'price[currency]': 'EUR', messagePartCount: parts })
    t.same(res.json(), { ok: true, matched: true })
  }
  await report('delivered', '0.0700', '1')
  const billed = await db.selectFrom('messages').selectAll().where('id', '=', message.id).executeTakeFirstOrThrow()
  t.match(billed, { status: 'delivered', price_amount: '0.0700', price_currency: 'EUR', segments: 1 }, 'the report that advanced the status set the price')
  await report('delivered', '0.1400', '2')
  await report('buffered', '0.2100', '3')
  await report('expired', '0.2800', '4')
  t.same(await db.selectFrom('messages').selectAll().where('id', '=', message.id).executeTakeFirstOrThrow(), billed, 'price, currency, parts and updated_at are as the advancing report left them')
  const events = await db.selectFrom('message_events').select(['status', 'raw']).where('message_id', '=', message.id).orderBy('id').execute()
  t.same(events.map((e) => [e.status, JSON.parse(e.raw as string)['price[amount]']]), [['delivered', '0.0700'], ['delivered', '0.1400'], ['buffered', '0.2100'], ['expired', '0.2800']], 'each report, with its price, is on record')
})

t.test('out of order and late: status only moves forward; a final state is never overwritten', async (t) => {
  const { app, db, message, providerId } = await sentReply(t)
  const send = async (status: string, at: string) => await dlr(app, { id: providerId, reference: message.id, status, statusDatetime: at })
  await send('delivered', '2026-01-01T09:00:10+00:00')
  await send('buffered', '2026-01-01T09:00:05+00:00')
  await send('sent', '2026-01-01T09:00:01+00:00')
  await send('expired', '2026-01-01T10:00:00+00:00')
  const m = await db.selectFrom('messages').select(['status', 'status_at']).where('id', '=', message.id).executeTakeFirstOrThrow()
  t.same(m, { status: 'delivered', status_at: '2026-01-01T09:00:10.000Z' })
  const events = await db.selectFrom('message_events').select('status').where('message_id', '=', message.id).orderBy('id').execute()
  t.same(events.map((e) => e.status), ['delivered', 'buffered', 'sent', 'expired'], 'every report is still on record')

  const failed = await sentReply(t)
  await dlr(failed.app, { id: failed.providerId, reference: failed.message.id, status: 'delivery_failed', statusDatetime: '2026-01-01T09:00:03+00:00' })
  await dlr(failed.app, { id: failed.providerId, reference: failed.message.id, status: 'delivered', statusDatetime: '2026-01-01T09:00:09+00:00' })
  const f = await failed.db.selectFrom('messages').select('status').where('id', '=', failed.message.id).executeTakeFirstOrThrow()
  t.equal(f.status, 'failed', 'a failure is final')
})

t.test('Conversations API webhooks: matched by message id, read after delivered, error wording stored', async (t) => {
  const { app, db, message, providerId } = await sentReply(t)
  t.same((await conversation(app, { id: providerId, status: 'delivered', updatedDatetime: '2026-01-01T09:01:00Z' })).json(), { ok: true, matched: true })
  await conversation(app, { id: providerId, status: 'read', updatedDatetime: '2026-01-01T09:02:00Z' })
  await conversation(app, { id: providerId, status: 'delivered', updatedDatetime: '2026-01-01T09:01:30Z' })
  const m = await db.selectFrom('messages').select(['status', 'status_at']).where('id', '=', message.id).executeTakeFirstOrThrow()
  t.same(m, { status: 'read', status_at: '2026-01-01T09:02:00.000Z' })

  const other = await sentReply(t)
  await conversation(other.app, { id: other.providerId, status: 'rejected', updatedDatetime: '2026-01-01T09:01:00Z', error: { code: 470, description: 'Message failed to send because more than 24 hours have passed since the customer last replied' } })
  const r = await other.db.selectFrom('messages').select(['status', 'status_reason', 'error_code']).where('id', '=', other.message.id).executeTakeFirstOrThrow()
  t.same(r, { status: 'failed', status_reason: 'Message failed to send because more than 24 hours have passed since the customer last replied', error_code: '470' })
})

t.test('a report for an unknown message is answered 200 and stored nowhere', async (t) => {
  const { app, db, ticketId } = await sentReply(t)
  const before = await db.selectFrom('message_events').select('id').execute()
  const unknown = await dlr(app, { id: 'ffffffffffffffffffffffffffffffff', reference: 'not-ours', status: 'delivered', statusDatetime: '2026-01-01T09:00:05+00:00' })
  t.equal(unknown.statusCode, 200, 'not an error: retrying would not make it known')
  t.same(unknown.json(), { ok: true, matched: false })
  const conv = await conversation(app, { id: 'unknown-conversation-message', status: 'read' })
  t.same(conv.json(), { ok: true, matched: false })
  const inbound = await db.selectFrom('messages').select('id').where('direction', '=', 'inbound').where('ticket_id', '=', ticketId).executeTakeFirstOrThrow()
  const misdirected = await dlr(app, { id: 'x1', reference: inbound.id, status: 'delivered' })
  t.same(misdirected.json(), { ok: true, matched: false }, 'an inbound message never takes a delivery status')
  t.same(await db.selectFrom('message_events').select('id').execute(), before)
  const malformed = await dlr(app, { status: 'delivered' })
  t.equal(malformed.statusCode, 400, 'a report without an id is malformed')
  t.match(malformed.json().message, /needs id and status/)
})

t.test('the simulator reports through the same path: unreachable stays sent, failing is rejected at once', async (t) => {
  const { services, db } = await buildTestApp(t)
  const ticketId = await ticketFor(services, '+31612345678')
  services.simulator?.setMode('+31612345678', 'unreachable')
  const a = await services.tickets.reply(ticketId, 'never arrives', null)
  await runDue(services)
  services.simulator?.setMode('+31612345678', 'failing')
  const b = await services.tickets.reply(ticketId, 'refused', null)
  await runDue(services)
  services.simulator?.setMode('+31612345678', 'normal')
  const c = await services.tickets.reply(ticketId, 'arrives', null)
  await runDue(services)
  const status = async (id: string) => (await db.selectFrom('messages').select(['status', 'status_reason', 'price_amount']).where('id', '=', id).executeTakeFirstOrThrow())
  t.match(await status(a.messageId), { status: 'sent' })
  t.match(await status(b.messageId), { status: 'failed', status_reason: 'The simulated number rejected the message' })
  t.match(await status(c.messageId), { status: 'delivered', price_amount: '0.0710' })
  const events = await db.selectFrom('message_events').select(['source', 'status']).where('message_id', '=', c.messageId).execute()
  t.same(events, [{ source: 'simulator', status: 'delivered' }])
})
