import t from 'tap'
import { workflowProblems } from '../../src/messaging/failover.js'
import { buildTestApp, FakeClock, settle } from '../helper.js'
import { dispatchState, deadlineRows, ManualChannel, runDue, sms, startDispatch, ticketFor } from './failover-helpers.js'

const CUSTOMER = '+31612345678'
const SECOND = '+31687654321'
const THIRD = '+31611112222'

t.test('immediate failure: the next step starts at once, without waiting for the expiry', async (t) => {
  const clock = new FakeClock()
  const { services } = await buildTestApp(t, { clock })
  const ticketId = await ticketFor(services, CUSTOMER)
  await runDue(services)
  services.simulator?.setMode(CUSTOMER, 'failing')
  const d = await startDispatch(services, ticketId, [sms(CUSTOMER, 'Your cupcakes are ready', 600), sms(SECOND, 'Retry: your cupcakes are ready')])
  await runDue(services)
  const s = await dispatchState(services, d.dispatchId)
  t.same(s.steps, ['failed', 'met'])
  t.same(s.messages, ['failed', 'delivered'])
  t.equal(s.status, 'completed')
  t.equal(s.current, 1)
  t.equal(s.raw.steps[1].started_at, clock.now().toISOString(), 'started at the moment of the failure, not after 600 s')
  t.same(await deadlineRows(services), [], 'no deadline left behind')
  const onTicket = await services.db.selectFrom('messages').select(['ticket_id', 'dispatch_id', 'kind']).where('dispatch_id', '=', d.dispatchId).execute()
  t.ok(onTicket.every((m) => m.ticket_id === ticketId && m.kind === 'notification'), 'both steps are on the customer\'s ticket')
})

t.test('expiry: the next step starts when the deadline passes without the condition', async (t) => {
  const clock = new FakeClock()
  const { services, db } = await buildTestApp(t, { clock })
  const ticketId = await ticketFor(services, CUSTOMER)
  await runDue(services)
  services.simulator?.setMode(CUSTOMER, 'unreachable')
  const d = await startDispatch(services, ticketId, [sms(CUSTOMER, 'first', 60), sms(SECOND, 'second')])
  clock.advance(2000)
  await runDue(services)
  let s = await dispatchState(services, d.dispatchId)
  t.same(s.steps, ['active', 'waiting'])
  t.same(s.messages, ['sent'])
  const sentAt = clock.now().getTime()
  t.equal(s.raw.steps[0].deadline_at, new Date(sentAt + 60_000).toISOString(), 'the expiry counts from acceptance by the provider')
  const rows = await deadlineRows(services)
  t.equal(rows.length, 1)
  t.equal(rows[0].run_at, s.raw.steps[0].deadline_at, 'the deadline is an outbox row due at that time')
  t.equal(rows[0].dispatch_id, d.dispatchId)

  clock.advance(59_999)
  await runDue(services)
  s = await dispatchState(services, d.dispatchId)
  t.same(s.steps, ['active', 'waiting'], 'one millisecond early: nothing happens')

  clock.advance(1)
  await runDue(services)
  s = await dispatchState(services, d.dispatchId)
  t.same(s.steps, ['expired', 'met'])
  t.same(s.messages, ['sent', 'delivered'], 'the first message keeps its own status')
  t.equal(s.status, 'completed')
  t.equal(s.raw.steps[1].started_at, new Date(sentAt + 60_000).toISOString(), 'handed over exactly at the deadline')
  const second = await db.selectFrom('messages').selectAll().where('to_address', '=', SECOND).executeTakeFirstOrThrow()
  t.equal(second.body, 'second')
})

t.test('condition met: the dispatch completes and no further step is ever sent', async (t) => {
  const clock = new FakeClock()
  const { services, db } = await buildTestApp(t, { clock })
  const ticketId = await ticketFor(services, CUSTOMER)
  const d = await startDispatch(services, ticketId, [sms(CUSTOMER, 'first', 30), sms(SECOND, 'second')])
  await runDue(services)
  let s = await dispatchState(services, d.dispatchId)
  t.same(s.steps, ['met', 'waiting'])
  t.equal(s.status, 'completed')
  t.same(await deadlineRows(services), [], 'the pending deadline was removed')
  clock.advance(3_600_000)
  await runDue(services)
  s = await dispatchState(services, d.dispatchId)
  t.same(s.steps, ['met', 'waiting'])
  t.equal(await db.selectFrom('messages').select('id').where('to_address', '=', SECOND).execute().then((r) => r.length), 0, 'nothing went to the second address')
})

t.test('a late report after the handover is recorded but undoes nothing', async (t) => {
  const clock = new FakeClock()
  const channel = new ManualChannel()
  const { app, services, db } = await buildTestApp(t, { clock, channel })
  const ticketId = await ticketFor(services, CUSTOMER)
  const d = await startDispatch(services, ticketId, [sms(CUSTOMER, 'first', 15), sms(SECOND, 'second', 15), sms(THIRD, 'third')])
  await runDue(services)
  clock.advance(15_000)
  await runDue(services)
  let s = await dispatchState(services, d.dispatchId)
  t.same(s.steps, ['expired', 'active', 'waiting'])
  const first = s.raw.messages[0]
  const res = await app.inject({ method: 'GET', url: `/webhooks/messagebird/status?id=${'manual-2'}&reference=${first.id}&status=delivered&statusDatetime=2026-01-01T09%3A00%3A20%2B00%3A00` })
  t.equal(res.statusCode, 200)
  s = await dispatchState(services, d.dispatchId)
  t.same(s.messages, ['delivered', 'sent'], 'the late delivery is recorded on the first message')
  t.same(s.steps, ['expired', 'active', 'waiting'], 'the first step stays expired')
  t.equal(s.status, 'pending', 'the dispatch still waits on the second step')
  t.equal((await deadlineRows(services)).length, 1, 'the second step\'s deadline still stands')
  const events = await db.selectFrom('message_events').select('status').where('message_id', '=', first.id).execute()
  t.same(events.map((e) => e.status), ['delivered'])
  clock.advance(15_000)
  await runDue(services)
  s = await dispatchState(services, d.dispatchId)
  t.same(s.steps, ['expired', 'expired', 'active'], 'the workflow carried on to the third step')
})

t.test('the dispatch fails when its last step fails; each failure is immediate', async (t) => {
  const { services } = await buildTestApp(t)
  const ticketId = await ticketFor(services, CUSTOMER)
  services.simulator?.setMode(CUSTOMER, 'failing')
  services.simulator?.setMode(SECOND, 'failing')
  const d = await startDispatch(services, ticketId, [sms(CUSTOMER, 'first', 60), sms(SECOND, 'second')])
  await runDue(services)
  const s = await dispatchState(services, d.dispatchId)
  t.same(s.steps, ['failed', 'failed'])
  t.equal(s.status, 'failed')
  t.ok(s.raw.dispatch.ended_at)
})

t.test('a last step without failover waits for delivery; with one, it bounds the wait and then fails', async (t) => {
  const clock = new FakeClock()
  const { services } = await buildTestApp(t, { clock })
  const ticketId = await ticketFor(services, CUSTOMER)
  services.simulator?.setMode(CUSTOMER, 'unreachable')
  const open = await startDispatch(services, ticketId, [sms(CUSTOMER, 'no limit')])
  const bounded = await startDispatch(services, ticketId, [sms(CUSTOMER, 'limited', 20)])
  await runDue(services)
  clock.advance(86_400_000)
  await runDue(services)
  t.equal((await dispatchState(services, open.dispatchId)).status, 'pending', 'still waiting for a report')
  const b = await dispatchState(services, bounded.dispatchId)
  t.equal(b.status, 'failed')
  t.same(b.steps, ['expired'])
})

t.test('WhatsApp with condition read: delivered is not enough, read completes the step', async (t) => {
  const clock = new FakeClock()
  const channel = new ManualChannel()
  const { app, services } = await buildTestApp(t, { clock, channel })
  const ticketId = await ticketFor(services, CUSTOMER)
  const d = await startDispatch(services, ticketId, [
    { channel: 'whatsapp', to: CUSTOMER, body: 'on WhatsApp', failover: { condition: 'read', expirySeconds: 600 } },
    sms(CUSTOMER, 'by SMS')
  ])
  await runDue(services)
  const providerId = channel.sent.find((r) => r.channel === 'whatsapp')?.messageId
  t.ok(providerId)
  const msg = (await dispatchState(services, d.dispatchId)).raw.messages[0]
  const webhook = async (status: string) => await app.inject({
    method: 'POST',
    url: '/webhooks/messagebird/conversations',
    payload: { type: 'message.updated', message: { id: (await services.db.selectFrom('messages').select('provider_message_id').where('id', '=', msg.id).executeTakeFirstOrThrow()).provider_message_id, status, direction: 'sent', platform: 'whatsapp', updatedDatetime: clock.now().toISOString() } }
  })
  t.equal((await webhook('delivered')).statusCode, 200)
  let s = await dispatchState(services, d.dispatchId)
  t.same(s.steps, ['active', 'waiting'], 'delivered does not meet "read"')
  t.same(s.messages, ['delivered'])
  clock.advance(60_000)
  t.equal((await webhook('read')).statusCode, 200)
  s = await dispatchState(services, d.dispatchId)
  t.same(s.steps, ['met', 'waiting'])
  t.equal(s.status, 'completed')
})

t.test('a restart mid-workflow resumes it; a deadline that passed while down fires at the first poll', async (t) => {
  const clock = new FakeClock()
  const first = await buildTestApp(t, { clock })
  const ticketId = await ticketFor(first.services, CUSTOMER)
  first.services.simulator?.setMode(CUSTOMER, 'unreachable')
  const d = await startDispatch(first.services, ticketId, [sms(CUSTOMER, 'first', 120), sms(SECOND, 'second')])
  await runDue(first.services)
  t.same((await dispatchState(first.services, d.dispatchId)).steps, ['active', 'waiting'])
  await first.app.close()

  clock.advance(10 * 60_000)
  const second = await buildTestApp(t, { clock, databasePath: first.databasePath })
  second.services.worker.start()
  for (let i = 0; i < 100; i++) {
    await settle(10)
    if ((await dispatchState(second.services, d.dispatchId)).status !== 'pending') break
  }
  await second.services.worker.stop()
  const s = await dispatchState(second.services, d.dispatchId)
  t.same(s.steps, ['expired', 'met'], 'the started worker fired the overdue deadline and sent the next step')
  t.equal(s.status, 'completed')
  t.equal(s.raw.steps[1].started_at, clock.now().toISOString(), 'handed over at start-up, not a period later')
})

t.test('a restart between steps sends the queued next step exactly once', async (t) => {
  const clock = new FakeClock()
  const channel = new ManualChannel()
  channel.reject(CUSTOMER)
  const first = await buildTestApp(t, { clock, channel })
  const ticketId = await ticketFor(first.services, CUSTOMER)
  const d = await startDispatch(first.services, ticketId, [sms(CUSTOMER, 'first', 60), sms(SECOND, 'second')])
  // Only the first step's send: the failure queues the second step in the same transaction.
  const firstRows = await first.db.selectFrom('outbox').select('id').where('kind', '=', 'send').execute()
  t.ok(firstRows.length >= 1)
  await first.services.worker.drain()
  t.same((await dispatchState(first.services, d.dispatchId)).steps, ['failed', 'active'])
  await first.app.close()
  const second = await buildTestApp(t, { clock, channel, databasePath: first.databasePath })
  await runDue(second.services)
  t.equal(channel.sent.filter((r) => r.to === SECOND).length, 1)
  t.same((await dispatchState(second.services, d.dispatchId)).messages, ['failed', 'sent'])
})

t.test('a customer who opts out mid-workflow gets no further step', async (t) => {
  const clock = new FakeClock()
  const { services } = await buildTestApp(t, { clock })
  const ticketId = await ticketFor(services, CUSTOMER)
  services.simulator?.setMode(CUSTOMER, 'unreachable')
  const d = await startDispatch(services, ticketId, [sms(CUSTOMER, 'first', 60), sms(SECOND, 'second')])
  await runDue(services)
  await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'stop-1', from: CUSTOMER, to: null, text: 'STOP', channel: 'sms' })
  clock.advance(60_000)
  await runDue(services)
  const s = await dispatchState(services, d.dispatchId)
  t.same(s.steps, ['expired', 'failed'])
  t.same(s.messages, ['sent', 'blocked'])
  t.equal(s.status, 'failed')
})

t.test('a duplicated deadline row or a deadline for a finished step changes nothing', async (t) => {
  const clock = new FakeClock()
  const { services, db } = await buildTestApp(t, { clock })
  const ticketId = await ticketFor(services, CUSTOMER)
  services.simulator?.setMode(CUSTOMER, 'unreachable')
  const d = await startDispatch(services, ticketId, [sms(CUSTOMER, 'first', 30), sms(SECOND, 'second')])
  await runDue(services)
  const [row] = await deadlineRows(services)
  await db.insertInto('outbox').values({ kind: 'failover_deadline', dispatch_id: d.dispatchId, payload: row.payload, run_at: row.run_at, created_at: row.created_at }).execute()
  clock.advance(30_000)
  await runDue(services)
  const s = await dispatchState(services, d.dispatchId)
  t.same(s.steps, ['expired', 'met'])
  t.equal(s.messages.length, 2, 'the second step was sent once')
  t.same(await deadlineRows(services), [])
})

t.test('workflow rules: names each bad field in the Dispatch request\'s notation', async (t) => {
  t.same(workflowProblems([]), [{ field: 'workflow', message: 'must have at least one step' }])
  const problems = workflowProblems([
    { channel: 'sms', to: CUSTOMER, body: 'x', failover: { condition: 'read', expirySeconds: 14 } },
    { channel: 'sms', to: SECOND, body: 'y' },
    { channel: 'whatsapp', to: SECOND, body: 'z', failover: { condition: 'read', expirySeconds: 86_401 } }
  ])
  t.same(problems.map((p) => p.field), ['workflow[0].failover.condition_status', 'workflow[0].failover.expiry_time', 'workflow[1].failover', 'workflow[2].failover.expiry_time'])
  t.match(problems[0].message, /cannot be used with sms/)
  t.match(problems[1].message, /from 15 to 86400 \(got 14\)/)
  t.same(workflowProblems([{ channel: 'whatsapp', to: CUSTOMER, body: 'x', failover: { condition: 'read', expirySeconds: 15 } }, { channel: 'sms', to: CUSTOMER, body: 'y' }]), [])
})

t.test('a STOP that blocks a step still waiting in the outbox ends the dispatch', async (t) => {
  const { services } = await buildTestApp(t)
  const ticketId = await ticketFor(services, CUSTOMER)
  await runDue(services)
  const d = await startDispatch(services, ticketId, [sms(CUSTOMER, 'first', 60), sms(SECOND, 'second')])
  await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'stop-early', from: CUSTOMER, to: null, text: 'STOP', channel: 'sms' })
  await runDue(services)
  const s = await dispatchState(services, d.dispatchId)
  t.same(s.messages, ['blocked', 'blocked'], 'the next step is recorded as not sent, for the agent to see why')
  t.same(s.steps, ['failed', 'failed'])
  t.equal(s.status, 'failed')
})

t.test('the deadline timer path hands over every due deadline in one pass, without the worker', async (t) => {
  const clock = new FakeClock()
  const { services } = await buildTestApp(t, { clock })
  const ticketId = await ticketFor(services, CUSTOMER)
  services.simulator?.setMode(CUSTOMER, 'unreachable')
  const ids = []
  for (let i = 0; i < 3; i++) ids.push((await startDispatch(services, ticketId, [sms(CUSTOMER, `first ${i}`, 15), sms(SECOND, `second ${i}`)])).dispatchId)
  await runDue(services)
  await services.failover.fireDue()
  t.same((await deadlineRows(services)).length, 3, 'nothing is due yet')
  clock.advance(15_000)
  await services.failover.fireDue()
  for (const id of ids) t.same((await dispatchState(services, id)).steps, ['expired', 'active'], 'handed over; the next send is queued')
  t.same(await deadlineRows(services), [])
})

t.test('a send with an unknown outcome (timeout) starts the expiry too, and hands over when it passes', async (t) => {
  const clock = new FakeClock()
  const channel = new ManualChannel()
  channel.timeOut(CUSTOMER)
  const { services } = await buildTestApp(t, { clock, channel })
  const ticketId = await ticketFor(services, CUSTOMER)
  const d = await startDispatch(services, ticketId, [sms(CUSTOMER, 'first', 30), sms(SECOND, 'second')])
  await runDue(services)
  let s = await dispatchState(services, d.dispatchId)
  t.same(s.messages, ['unknown'])
  t.equal(s.raw.steps[0].deadline_at, new Date(clock.now().getTime() + 30_000).toISOString())
  clock.advance(30_000)
  await runDue(services)
  s = await dispatchState(services, d.dispatchId)
  t.same(s.steps, ['expired', 'active'], 'not held up for the ten minutes an unknown outcome waits for a report')
})
