import nock from 'nock'
import t, { type Test } from 'tap'
import type { MessageStatus } from '../../src/db/schema.js'
import { MessageBirdChannel } from '../../src/messaging/messagebird-channel.js'
import { transitionMessage } from '../../src/messaging/message-repository.js'
import { insertOutbox } from '../../src/messaging/outbox-repository.js'
import { PREDECESSORS } from '../../src/messaging/status.js'
import { buildTestApp, FakeClock, form } from '../helper.js'

const API = 'https://rest.messagebird.com'
const PHONE = '+31612345678'
const MB_ENV = { SMS_CHANNEL: 'messagebird', MESSAGEBIRD_API_KEY: 'test_key', MESSAGEBIRD_ORIGINATOR: '3197010260000', PUBLIC_URL: 'https://support.example.com' }
const ALL: MessageStatus[] = ['received', 'queued', 'sending', 'unknown', 'sent', 'buffered', 'delivered', 'read', 'failed', 'expired', 'blocked']
const FINAL: MessageStatus[] = ['failed', 'expired', 'blocked', 'read']

t.before(() => nock.disableNetConnect())
t.afterEach(() => nock.cleanAll())
t.teardown(() => nock.enableNetConnect())

t.test('the table: final states have no way out, delivered leads only to read, queued is reached only from sending', async (t) => {
  const successors = (s: MessageStatus): MessageStatus[] => ALL.filter((to) => PREDECESSORS[to].includes(s))
  for (const s of FINAL) t.same(successors(s), [], `${s} is final`)
  t.same(successors('delivered'), ['read'])
  t.same(successors('received'), [], 'an inbound message never changes')
  t.same(PREDECESSORS.queued, ['sending'], 'the one move back: the worker\'s transient retry')
  t.same(PREDECESSORS.sending, ['queued'])
  t.same(PREDECESSORS.blocked, ['queued'], 'an opt-out stops only what has not been handed to the provider')
})

t.test('every pair of statuses: the guarded UPDATE changes the row exactly when the table allows it', async (t) => {
  const clock = new FakeClock()
  const { db, services } = await buildTestApp(t, { clock })
  const { ticketId } = await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'seed', from: PHONE, to: null, text: 'hello', channel: 'sms' })
  const { messageId: id } = await services.tickets.reply(ticketId, 'a reply', null)
  const row = async () => await db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
  for (const from of ALL) {
    for (const to of ALL.filter((s) => s !== 'received')) {
      await db.updateTable('messages').set({ status: from, price_amount: '0.01' }).where('id', '=', id).execute()
      const before = await row()
      clock.advance(1000)
      const now = clock.now().toISOString()
      const moved = await transitionMessage(db, id, to, { statusAt: now, reason: `to ${to}`, errorCode: null, priceAmount: '9.99' }, now)
      const after = await row()
      if (PREDECESSORS[to].includes(from)) {
        t.match(moved, { status: to, status_at: now, price_amount: '9.99' }, `${from} → ${to} moves`)
        t.same(after, moved, 'and returns the row as it now is')
      } else {
        t.equal(moved, undefined, `${from} → ${to} is refused`)
        t.same(after, before, 'the row is untouched')
      }
    }
  }
})

/**
 * A reply sent through the real SDK (intercepted), then brought to `state` the way it happens in
 * production: a delivery report, a Conversations webhook, or a STOP while the reply waits.
 */
async function replyIn (t: Test, state: MessageStatus) {
  const clock = new FakeClock()
  const channel = new MessageBirdChannel({ apiKey: 'test_key', originator: '3197010260000', whatsappChannelId: null, timeoutMs: 1000 })
  const built = await buildTestApp(t, { env: MB_ENV, channel, clock })
  const { app, services, db } = built
  const requests: string[] = []
  nock(API).post('/messages').times(20).reply(201, (_u, body) => {
    requests.push((body as { body: string }).body)
    return { id: `mb-${requests.length}` }
  })
  const inbound = async (payload: string, id: string) => await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ originator: PHONE.slice(1), payload, id }) })
  const ticketId = (await inbound('Where is my parcel?', 'in-1')).json().ticket_id as number
  await services.worker.drain()
  const { messageId } = await services.tickets.reply(ticketId, 'It ships today', null)
  const dlr = async (status: string, extra: Record<string, string> = {}) => {
    const row = await db.selectFrom('messages').select('provider_message_id').where('id', '=', messageId).executeTakeFirstOrThrow()
    const res = await app.inject({ method: 'GET', url: '/webhooks/messagebird/status?' + new URLSearchParams({ id: row.provider_message_id ?? 'never-sent', reference: messageId, recipient: PHONE.slice(1), status, statusDatetime: clock.now().toISOString(), ...extra }).toString() })
    t.equal(res.statusCode, 200)
  }
  const conversation = async (status: string) => {
    const row = await db.selectFrom('messages').select('provider_message_id').where('id', '=', messageId).executeTakeFirstOrThrow()
    const res = await app.inject({ method: 'POST', url: '/webhooks/messagebird/conversations', payload: { type: 'message.updated', message: { id: row.provider_message_id ?? 'never-sent', status, direction: 'sent', platform: 'sms', updatedDatetime: clock.now().toISOString() } } })
    t.equal(res.statusCode, 200)
  }
  if (state === 'blocked') {
    await inbound('STOP', 'in-stop')
  } else {
    await services.worker.drain()
    const price = { 'price[amount]': '0.0700', 'price[currency]': 'EUR', messagePartCount: '1' }
    if (state === 'delivered') await dlr('delivered', price)
    if (state === 'failed') await dlr('delivery_failed', { ...price, statusReason: 'unknown subscriber', statusErrorCode: '1' })
    if (state === 'expired') await dlr('expired', price)
    if (state === 'read') {
      await dlr('delivered', price)
      await conversation('read')
    }
  }
  await services.worker.drain()
  const message = async () => await db.selectFrom('messages').selectAll().where('id', '=', messageId).executeTakeFirstOrThrow()
  const arranged = await message()
  t.equal(arranged.status, state, `arranged: the reply is ${state}`)
  return { ...built, clock, messageId, requests, dlr, conversation, message, arranged }
}

const SMS_WORDS = ['scheduled', 'sent', 'buffered', 'delivered', 'expired', 'delivery_failed']
const CONVERSATION_WORDS = ['accepted', 'pending', 'transmitted', 'sent', 'delivered', 'read', 'failed', 'rejected', 'deleted', 'unsupported']

for (const state of [...FINAL, 'delivered'] as MessageStatus[]) {
  t.test(`${/^[aeiou]/.test(state) ? 'an' : 'a'} ${state} message stays ${state}: every report and the worker leave the row untouched${state === 'delivered' ? ' (only read moves it)' : ''}`, async (t) => {
    const s = await replyIn(t, state)
    const sends = s.requests.length
    const eventsBefore = (await s.db.selectFrom('message_events').select('id').where('message_id', '=', s.messageId).execute()).length
    let reports = 0
    for (const word of SMS_WORDS) {
      s.clock.advance(60_000)
      await s.dlr(word, { 'price[amount]': '9.99', 'price[currency]': 'USD', messagePartCount: '7', statusReason: 'late', statusErrorCode: '99' })
      reports++
    }
    for (const word of CONVERSATION_WORDS.filter((w) => !(state === 'delivered' && w === 'read'))) {
      s.clock.advance(60_000)
      await s.conversation(word)
      if (s.arranged.provider_message_id !== null) reports++
    }
    // The worker: a stale send and a stale settle check for the message, both due.
    const now = s.clock.now().toISOString()
    await insertOutbox(s.db, { kind: 'send', messageId: s.messageId, runAt: now }, now)
    await insertOutbox(s.db, { kind: 'settle_unknown', messageId: s.messageId, runAt: now }, now)
    t.equal(await s.services.worker.drain(), 2, 'the worker handled both rows')

    t.same(await s.message(), s.arranged, 'status, time, reason, price, parts and provider id are unchanged, updated_at included')
    t.equal(s.requests.length, sends, 'nothing more reached MessageBird')
    const events = await s.db.selectFrom('message_events').select('id').where('message_id', '=', s.messageId).execute()
    t.equal(events.length, eventsBefore + reports, 'every report is still kept as an event')
    t.same(await s.db.selectFrom('outbox').selectAll().execute(), [], 'the stale rows are gone')

    if (state === 'delivered') {
      await s.conversation('read')
      t.equal((await s.message()).status, 'read', 'read is the one way on from delivered')
    }
  })
}
