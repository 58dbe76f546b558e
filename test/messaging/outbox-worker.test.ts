import nock from 'nock'
import t from 'tap'
import { MessageBirdChannel } from '../../src/messaging/messagebird-channel.js'
import { claimDue, insertOutbox } from '../../src/messaging/outbox-repository.js'
import { buildTestApp, FakeClock, form, freshDatabase } from '../helper.js'

const API = 'https://rest.messagebird.com'
const MB_ENV = { SMS_CHANNEL: 'messagebird', MESSAGEBIRD_API_KEY: 'test_key', MESSAGEBIRD_ORIGINATOR: '3197010260000', PUBLIC_URL: 'https://support.example.com', OUTBOX_MAX_ATTEMPTS: '3', OUTBOX_BACKOFF_BASE_MS: '1000', OUTBOX_AMBIGUOUS_GRACE_MS: '600000', MESSAGEBIRD_TIMEOUT_MS: '1000' }

t.before(() => nock.disableNetConnect())
t.afterEach(() => nock.cleanAll())
t.teardown(() => nock.enableNetConnect())

async function mbApp (t: Parameters<typeof buildTestApp>[0], opts: { clock?: FakeClock, databasePath?: string, timeoutMs?: number } = {}) {
  const channel = new MessageBirdChannel({ apiKey: 'test_key', originator: '3197010260000', whatsappChannelId: null, timeoutMs: opts.timeoutMs ?? 1000 })
  return await buildTestApp(t, { env: MB_ENV, channel, clock: opts.clock, databasePath: opts.databasePath })
}

async function openTicket (app: Awaited<ReturnType<typeof buildTestApp>>['app'], id = 'in-1'): Promise<number> {
  const res = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ originator: '31612345678', payload: 'help me', id }) })
  return res.json().ticket_id as number
}

t.test('a reply goes out through the MessageBird SDK and records the provider id', async (t) => {
  const { app, services, db } = await mbApp(t)
  const ticketId = await openTicket(app)
  const bodies: Array<Record<string, unknown>> = []
  nock(API).post('/messages').times(2).reply(201, (_u, b) => { bodies.push(b as Record<string, unknown>); return { id: `mb-${bodies.length}` } })
  const { messageId } = await services.tickets.reply(ticketId, 'Your order ships today.', null)
  t.equal(await services.worker.drain(), 2, 'confirmation and reply')
  t.equal(bodies.length, 2)
  const reply = bodies.find((b) => b.body === 'Your order ships today.')
  t.match(reply, { originator: '3197010260000', recipients: '31612345678', reference: messageId, reportUrl: 'https://support.example.com/webhooks/messagebird/status', datacoding: 'auto' })
  const row = await db.selectFrom('messages').selectAll().where('id', '=', messageId).executeTakeFirstOrThrow()
  t.equal(row.status, 'sent')
  t.equal(row.provider, 'messagebird')
  t.match(row.provider_message_id, /^mb-\d$/)
  t.equal(row.attempts, 1)
  t.equal(await db.selectFrom('outbox').selectAll().execute().then((r) => r.length), 0, 'outbox drained')
})

t.test('transient failures retry with backoff; the message goes out once the provider recovers', async (t) => {
  const clock = new FakeClock()
  const { app, services, db } = await mbApp(t, { clock })
  await openTicket(app)
  nock(API).post('/messages').reply(503, { message: 'down' })
  await services.worker.drain()
  const queued = await db.selectFrom('messages').selectAll().where('kind', '=', 'confirmation').executeTakeFirstOrThrow()
  t.equal(queued.status, 'queued')
  t.match(queued.status_reason, /Retrying/)
  const row = await db.selectFrom('outbox').selectAll().executeTakeFirstOrThrow()
  t.equal(row.attempts, 1)
  const delay = Date.parse(row.run_at) - clock.now().getTime()
  t.ok(delay >= 500 && delay <= 1000, `first backoff within [base/2, base]: ${delay} ms`)
  t.equal(await services.worker.drain(), 0, 'not retried before its time')
  clock.advance(1000)
  nock(API).post('/messages').reply(201, { id: 'mb-ok' })
  t.equal(await services.worker.drain(), 1)
  const sent = await db.selectFrom('messages').selectAll().where('kind', '=', 'confirmation').executeTakeFirstOrThrow()
  t.equal(sent.status, 'sent')
  t.equal(sent.attempts, 2)
})

t.test('transient failures stop after OUTBOX_MAX_ATTEMPTS with a reason', async (t) => {
  const clock = new FakeClock()
  const { app, services, db } = await mbApp(t, { clock })
  await openTicket(app)
  nock(API).post('/messages').times(3).reply(500, { errors: [{ code: 99, description: 'internal error' }] })
  for (let i = 0; i < 3; i++) {
    await services.worker.drain()
    clock.advance(60_000)
  }
  const m = await db.selectFrom('messages').selectAll().where('kind', '=', 'confirmation').executeTakeFirstOrThrow()
  t.equal(m.status, 'failed')
  t.equal(m.status_reason, 'Gave up after 3 attempts: internal error')
  t.equal((await db.selectFrom('outbox').selectAll().execute()).length, 0)
})

t.test('a permanent error fails at once and its text is shown on the ticket', async (t) => {
  const { app, services, db } = await mbApp(t)
  const ticketId = await openTicket(app)
  nock(API).post('/messages').reply(422, { errors: [{ code: 9, description: 'no (correct) recipients found', parameter: 'recipients' }] })
  await services.worker.drain()
  const m = await db.selectFrom('messages').selectAll().where('kind', '=', 'confirmation').executeTakeFirstOrThrow()
  t.equal(m.status, 'failed')
  t.equal(m.error_code, '9')
  const { messages } = await services.tickets.getTicket(ticketId)
  t.equal(messages.find((x) => x.kind === 'confirmation')?.status_reason, 'no (correct) recipients found')
})

/** The confirmation's send times out after the request was written: its outcome is unknown. */
async function timedOutSend (t: Parameters<typeof buildTestApp>[0]) {
  const clock = new FakeClock()
  const built = await mbApp(t, { clock, timeoutMs: 50 })
  await openTicket(built.app)
  nock(API).post('/messages').delay(500).reply(201, { id: 'late' })
  await built.services.worker.drain()
  const m = await built.db.selectFrom('messages').selectAll().where('kind', '=', 'confirmation').executeTakeFirstOrThrow()
  return { ...built, clock, m }
}

t.test('a timeout is not retried: the message waits for a report, then settles as failed with an explanation', async (t) => {
  const { services, db, clock, m } = await timedOutSend(t)
  t.equal(m.status, 'unknown')
  clock.advance(600_000)
  await services.worker.drain()
  const settled = await db.selectFrom('messages').selectAll().where('id', '=', m.id).executeTakeFirstOrThrow()
  t.equal(settled.status, 'failed')
  t.equal(settled.error_code, 'OUTCOME_UNKNOWN')
  t.match(settled.status_reason, /to avoid sending it twice/)
  t.equal(settled.attempts, 1, 'sent exactly once')
})

t.test('a delivery report settles an ambiguous send as delivered', async (t) => {
  const { app, db, m } = await timedOutSend(t)
  const dlr = await app.inject({ method: 'GET', url: `/webhooks/messagebird/status?id=mbid-9&reference=${m.id}&recipient=31612345678&status=delivered&statusDatetime=2026-01-01T09%3A00%3A05%2B00%3A00` })
  t.equal(dlr.statusCode, 200)
  const after = await db.selectFrom('messages').selectAll().where('id', '=', m.id).executeTakeFirstOrThrow()
  t.equal(after.status, 'delivered')
  t.equal(after.provider_message_id, 'mbid-9')
  t.equal((await db.selectFrom('outbox').selectAll().execute()).length, 0, 'the pending settle check is gone')
})

t.test('a restart resumes queued messages: nothing queued before the crash is lost', async (t) => {
  const first = await mbApp(t)
  const ticketId = await openTicket(first.app)
  await first.services.tickets.reply(ticketId, 'queued before the crash', null)
  await first.app.close()
  nock(API).post('/messages').times(2).reply(201, (_u, b) => ({ id: 'after-restart-' + String((b as { body: string }).body.length) }))
  const second = await mbApp(t, { databasePath: first.databasePath })
  t.equal(await second.services.worker.drain(), 2)
  const statuses = await second.db.selectFrom('messages').select(['kind', 'status']).where('direction', '=', 'outbound').orderBy('kind').execute()
  t.same(statuses, [{ kind: 'confirmation', status: 'sent' }, { kind: 'reply', status: 'sent' }])
})

t.test('a send interrupted by a crash is never attempted a second time', async (t) => {
  const clock = new FakeClock()
  const first = await mbApp(t, { clock })
  await openTicket(first.app)
  // Reproduce the crash window: the worker marked the message `sending` and held the lease, then died.
  const now = clock.now().toISOString()
  await first.db.updateTable('messages').set({ status: 'sending', attempts: 1 }).where('kind', '=', 'confirmation').execute()
  await first.db.updateTable('outbox').set({ locked_until: new Date(clock.now().getTime() + 30_000).toISOString() }).execute()
  await first.app.close()
  let calls = 0
  nock(API).post('/messages').reply(201, () => { calls++; return { id: 'dup' } })
  const second = await mbApp(t, { clock, databasePath: first.databasePath })
  t.equal(await second.services.worker.drain(), 0, 'the lease still holds')
  clock.advance(31_000)
  t.equal(await second.services.worker.drain(), 1)
  t.equal(calls, 0, 'no second request to MessageBird')
  const m = await second.db.selectFrom('messages').selectAll().where('kind', '=', 'confirmation').executeTakeFirstOrThrow()
  t.equal(m.status, 'unknown')
  t.ok(now)
})

t.test('two workers draining at once send each message once', async (t) => {
  const { app, services, db } = await mbApp(t)
  for (let i = 0; i < 20; i++) {
    await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ originator: `3161234${String(5000 + i)}`, payload: 'hi', id: `p-${i}` }) })
  }
  let calls = 0
  nock(API).post('/messages').times(40).reply(201, () => ({ id: `mb-${++calls}` }))
  const handled = await Promise.all([services.worker.drain(), services.worker.drain()])
  t.equal(handled[0] + handled[1], 20)
  t.equal(calls, 20)
  const sent = await db.selectFrom('messages').select('status').where('direction', '=', 'outbound').execute()
  t.ok(sent.every((m) => m.status === 'sent'))
})

t.test('the simulator channel reports delivery through the status path', async (t) => {
  const { app, services, db } = await buildTestApp(t)
  await openTicket(app)
  await services.worker.drain()
  await services.simulator?.idle()
  const m = await db.selectFrom('messages').selectAll().where('kind', '=', 'confirmation').executeTakeFirstOrThrow()
  t.equal(m.status, 'delivered')
  const events = await db.selectFrom('message_events').select(['status', 'source']).where('message_id', '=', m.id).execute()
  t.same(events, [{ status: 'delivered', source: 'simulator' }])
})

t.test('a claimed row leaves the due range for its lease, and is due again when the lease lapses', async (t) => {
  const { db } = await freshDatabase(t)
  t.teardown(async () => await db.destroy())
  const at = (s: number): string => new Date(Date.parse('2026-01-01T09:00:00.000Z') + s * 1000).toISOString()
  await insertOutbox(db, { kind: 'send', runAt: at(0) }, at(0))
  await insertOutbox(db, { kind: 'send', runAt: at(5) }, at(0))
  const first = await claimDue(db, at(10), at(40), 10)
  t.equal(first.length, 2)
  t.ok(first.every((r) => r.run_at === at(40) && r.locked_until === at(40)), 'run_at moved to the end of the lease')
  t.same(await claimDue(db, at(39), at(69), 10), [], 'nobody else can claim them during the lease')
  t.equal((await claimDue(db, at(40), at(70), 10)).length, 2, 'due again once the lease has lapsed')
})
