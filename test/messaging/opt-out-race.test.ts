import nock from 'nock'
import t, { type Test } from 'tap'
import { MessageBirdChannel } from '../../src/messaging/messagebird-channel.js'
import { OPTED_OUT_REASON } from '../../src/messaging/outbound.js'
import { OPT_OUT_CONFIRMATION } from '../../src/tickets/keywords.js'
import { sql } from 'kysely'
import { buildTestApp, FakeClock, form, postgresOnly, sqliteOnly } from '../helper.js'
import { dispatchState, sms, startDispatch } from './failover-helpers.js'

// A reply is waiting in the outbox when the customer texts STOP, and the worker drains at the same
// moment. Whatever the order, the reply must not reach MessageBird: what the real SDK sends is
// intercepted with nock, and that is the evidence.

const API = 'https://rest.messagebird.com'
const PHONE = '+31612345678'
const REPLY = 'Queued before the STOP'
const MB_ENV = { SMS_CHANNEL: 'messagebird', MESSAGEBIRD_API_KEY: 'test_key', MESSAGEBIRD_ORIGINATOR: '3197010260000', PUBLIC_URL: 'https://support.example.com' }

t.before(() => nock.disableNetConnect())
t.afterEach(() => nock.cleanAll())
t.teardown(() => nock.enableNetConnect())

async function setup (t: Test) {
  const clock = new FakeClock()
  const channel = new MessageBirdChannel({ apiKey: 'test_key', originator: '3197010260000', whatsappChannelId: null, timeoutMs: 1000 })
  const built = await buildTestApp(t, { env: MB_ENV, channel, clock })
  const sent: string[] = []
  nock(API).post('/messages').times(10).reply(201, (_uri, body) => {
    sent.push((body as { body: string }).body)
    return { id: `mb-${sent.length}` }
  })
  const res = await built.app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ originator: PHONE.slice(1), payload: 'Where is my parcel?', id: 'in-1' }) })
  const ticketId = res.json().ticket_id as number
  await built.services.worker.drain()
  t.equal(sent.length, 1, 'the ticket\'s confirmation went out')
  const { messageId } = await built.services.tickets.reply(ticketId, REPLY, null)
  clock.advance(1000)
  const stopSms = { provider: 'messagebird', providerMessageId: 'in-stop', from: PHONE, to: null, text: 'STOP', channel: 'sms' as const }
  const reply = async () => await built.db.selectFrom('messages').selectAll().where('id', '=', messageId).executeTakeFirstOrThrow()
  return { ...built, sent, messageId, stopSms, reply }
}

async function assertNotSent (t: Test, s: Awaited<ReturnType<typeof setup>>): Promise<void> {
  // Whatever is left (the STOP's confirmation) goes out now.
  await s.services.worker.drain()
  t.notOk(s.sent.includes(REPLY), 'the reply never reached MessageBird')
  t.equal(s.sent.filter((b) => b === OPT_OUT_CONFIRMATION).length, 1, 'the STOP\'s confirmation did')
  const reply = await s.reply()
  t.match(reply, { status: 'blocked', status_reason: OPTED_OUT_REASON, error_code: 'OPTED_OUT', attempts: 0, provider_message_id: null })
  const events = await s.db.selectFrom('message_events').select(['status', 'source']).where('message_id', '=', s.messageId).execute()
  t.same(events, [{ status: 'blocked', source: 'opt_out' }], 'one blocked event, and nothing after it')
  t.same(await s.db.selectFrom('outbox').selectAll().execute(), [], 'nothing left to send')
}

t.test('STOP committed before the drain claims the reply', async (t) => {
  const s = await setup(t)
  const stop = await s.app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ originator: PHONE.slice(1), payload: 'STOP', id: 'in-stop' }) })
  t.equal(stop.statusCode, 200)
  await assertNotSent(t, s)
})

t.test('STOP committed after the drain claimed the reply, before it marks it sending', async (t) => {
  const s = await setup(t)
  const rows = await s.services.worker.claim()
  t.equal(rows.length, 1, 'the reply\'s send is leased to this worker')
  const stop = await s.app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ originator: PHONE.slice(1), payload: 'STOP', id: 'in-stop' }) })
  t.equal(stop.statusCode, 200)
  await s.services.worker.process(rows)
  await assertNotSent(t, s)
})

t.test('the drain read the reply before the STOP committed, and marks it after', sqliteOnly('the order within one group-commit batch'), async (t) => {
  const s = await setup(t)
  const rows = await s.services.worker.claim()
  t.equal(rows.length, 1)
  // The STOP's unit is queued for the next group commit first; the worker's unit (which reads the
  // reply, checks consent and marks it `sending`) joins the same batch after it, before anything
  // in that batch has committed. The worker that read the reply as queued outside a transaction
  // sent it here; had the worker's unit run first instead, the reply would rightly be on its way
  // and this test would fail too, so it cannot pass by arranging the wrong order.
  const stop = s.services.tickets.receiveInbound(s.stopSms)
  const handled = s.services.worker.process(rows)
  await Promise.all([stop, handled])
  await assertNotSent(t, s)
})

t.test('the drain read the reply before the STOP committed, and marks it after: PostgreSQL, two transactions', postgresOnly('row locks between two transactions'), async (t) => {
  // Two transactions run side by side here, so the order is forced: the STOP's transaction has
  // blocked the reply (its row is locked, nothing committed) and waits inside a status listener;
  // the worker's transaction reads the reply as `queued` and its customer as not opted out, and
  // its guarded UPDATE to `sending` waits for the lock. The STOP then commits. Read committed
  // re-checks the guard against the committed row, which is `blocked`: nothing is sent. A worker
  // that marked it `sending` without the status guard would send it.
  const s = await setup(t)
  const rows = await s.services.worker.claim()
  t.equal(rows.length, 1)
  let held!: () => void
  const stopHoldsTheRow = new Promise<void>((resolve) => { held = resolve })
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  s.services.status.addListener(async (_trx, message, next) => {
    if (message.id !== s.messageId || next !== 'blocked') return
    held()
    await gate
  })
  const stop = s.services.tickets.receiveInbound(s.stopSms)
  await stopHoldsTheRow
  const handled = s.services.worker.process(rows)
  // Until the worker's transaction waits on a lock the STOP's transaction holds.
  const database = await sql<{ name: string }>`select current_database() as name`.execute(s.db)
  const waiting = async () => (await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity where datname = ${database.rows[0].name} and wait_event_type = 'Lock'`.execute(s.db)).rows[0].n
  while (await waiting() === 0) await new Promise((resolve) => setImmediate(resolve))
  t.pass('the worker waits for the STOP\'s row lock')
  release()
  await Promise.all([stop, handled])
  await assertNotSent(t, s)
})

t.test('consent is read when the worker marks a message sending, whatever recorded the opt-out', async (t) => {
  const s = await setup(t)
  const ticketId = (await s.reply()).ticket_id
  const dispatch = await startDispatch(s.services, ticketId, [sms(PHONE, 'step one', 60), sms('+31687654321', 'step two')])
  // An opt-out stored without the STOP path's clean-up of waiting messages (say, by a future agent
  // action, or an import): the reply and the failover step are still queued.
  await s.db.updateTable('contacts').set({ opted_out_at: s.clock.now().toISOString() }).where('phone', '=', PHONE).execute()
  await s.services.worker.drain()
  t.same(s.sent.slice(1), [], 'neither the reply nor the step reached MessageBird')
  t.match(await s.reply(), { status: 'blocked', status_reason: OPTED_OUT_REASON, error_code: 'OPTED_OUT', attempts: 0 })
  const events = await s.db.selectFrom('message_events').select(['status', 'source']).where('message_id', '=', s.messageId).execute()
  t.same(events, [{ status: 'blocked', source: 'opt_out' }])
  const d = await dispatchState(s.services, dispatch.dispatchId)
  t.same(d.messages, ['blocked', 'blocked'], 'the status listeners saw the block: the step failed, and the next one was not sent either')
  t.equal(d.status, 'failed')
})
