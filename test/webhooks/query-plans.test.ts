import SQLite from 'better-sqlite3'
import t from 'tap'
import { buildTestApp, FakeClock, form, testEngine } from '../helper.js'
import { ManualChannel, runDue, sms, startDispatch } from '../messaging/failover-helpers.js'
import { captureStatements, postgresPlan, type Captured } from '../db/capture-statements.js'

// Every query the webhook paths run, captured from the real paths while driving them through
// inject (not a hand-kept list that could drift), must be served by an index: a SCAN of a table
// that grows with traffic turns each webhook, inside the write batch, into a walk over that table.

const GROWING = ['messages', 'message_events', 'tickets', 'contacts', 'contact_addresses', 'outbox', 'dispatches', 'dispatch_steps', 'webhook_jtis', 'ticket_events', 'notes', 'agent_ticket_reads']
const NOT_QUERIES = /^\s*(begin|commit|rollback|savepoint|release|pragma)\b/i
/** What PostgreSQL's EXPLAIN takes: not `listen`, `set` and the like. */
const EXPLAINABLE = /^\s*(select|insert|update|delete|with)\b/i

const A = '+31612345678'
const B = '+31687654321'
const C = '+31611112222'
const D = '+31633334444'

t.test('every query the webhook paths run is served by an index', async (t) => {
  const capture = captureStatements()
  t.teardown(() => capture.restore())
  const clock = new FakeClock()
  const channel = new ManualChannel()
  const { app, services, db, databasePath, databaseUrl } = await buildTestApp(t, { clock, channel, env: { STATUS_CALLBACK_URL: 'https://hooks.example.com/textdesk', STATUS_CALLBACK_SECRET: 'a-secret-of-enough-length', AUTO_ASSIGN: 'round-robin', REOPEN_WINDOW_HOURS: '24' } })
  const inbound = async (from: string, payload: string, id: string) => {
    clock.advance(1000)
    const res = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ originator: from.slice(1), payload, id }) })
    t.equal(res.statusCode, 200, `inbound ${payload}`)
    return res.json().ticket_id as number
  }
  const dlr = async (q: Record<string, string>) => {
    const res = await app.inject({ method: 'GET', url: '/webhooks/messagebird/status?' + new URLSearchParams({ recipient: '31612345678', statusDatetime: clock.now().toISOString(), ...q }).toString() })
    t.equal(res.statusCode, 200, `report ${q.status}`)
    return res.json() as { matched: boolean }
  }
  const conversation = async (message: Record<string, unknown>, type = 'message.updated') => {
    const res = await app.inject({ method: 'POST', url: '/webhooks/messagebird/conversations', payload: { type, message: { platform: 'whatsapp', updatedDatetime: clock.now().toISOString(), ...message } } })
    t.equal(res.statusCode, 200, `conversation ${String(message.status)}`)
    return res.json() as { matched?: boolean, ticket_id?: number }
  }
  const providerId = async (messageId: string) => (await db.selectFrom('messages').select('provider_message_id').where('id', '=', messageId).executeTakeFirstOrThrow()).provider_message_id as string

  // Before: A has a ticket, a reply and a failover step waiting in the outbox, so A's STOP blocks
  // both and ends the dispatch; B has sent messages, one of them a step with a deadline.
  const ticketA = await inbound(A, 'Where is my parcel?', 'seed-a')
  const ticketB = await inbound(B, 'Hello', 'seed-b')
  const reply = await services.tickets.reply(ticketB, 'Hello back', null)
  const stepMet = await startDispatch(services, ticketB, [sms(B, 'step one', 60), sms(C, 'step two')])
  const stepFails = await startDispatch(services, ticketB, [sms(B, 'fails', 60), sms(C, 'next')])
  const whatsapp = await startDispatch(services, ticketB, [{ channel: 'whatsapp', to: B, body: 'on WhatsApp', failover: { condition: 'read', expirySeconds: 600 } }, sms(B, 'by SMS')])
  await runDue(services)
  await services.tickets.reply(ticketA, 'It ships today', null)
  const waiting = await startDispatch(services, ticketA, [sms(A, 'first', 60), sms(C, 'second')])

  // D's ticket is closed: D's next text reopens it (REOPEN_WINDOW_HOURS).
  const ticketD = await inbound(D, 'Hi', 'seed-d')
  await services.tickets.close(ticketD, null)
  await services.agents.add({ email: 'ada@example.com', name: 'Ada', role: 'agent', password: 'correct horse battery staple' })

  const paths: Record<string, Captured[]> = {}
  paths['inbound SMS'] = await capture.during(async () => {
    await inbound(C, 'New customer', 'in-c1')
    t.equal(await inbound(D, 'Me again', 'in-d1'), ticketD, 'reopened within the window')
    await inbound(C, 'Second text', 'in-c2')
    await inbound(C, 'Second text', 'in-c2')
    await inbound(C, 'HELP', 'in-c3')
    await inbound(A, 'STOP', 'in-a-stop')
    await inbound(A, 'START', 'in-a-start')
  })
  t.equal((await services.failover.find(waiting.dispatchId))?.dispatch.status, 'failed', 'the STOP blocked a waiting step and ended its dispatch')
  const ids = { reply: await providerId(reply.messageId), met: await providerId(stepMet.messageId), fails: await providerId(stepFails.messageId), whatsapp: await providerId(whatsapp.messageId) }
  paths['SMS delivery report'] = await capture.during(async () => {
    t.ok((await dlr({ id: ids.reply, reference: reply.messageId, status: 'delivered', 'price[amount]': '0.07', 'price[currency]': 'EUR' })).matched)
    t.ok((await dlr({ id: ids.reply, reference: reply.messageId, status: 'buffered' })).matched, 'a late report')
    t.ok((await dlr({ id: ids.met, reference: stepMet.messageId, status: 'delivered' })).matched, 'a failover step is met')
    t.ok((await dlr({ id: ids.fails, reference: stepFails.messageId, status: 'delivery_failed' })).matched, 'a failover step hands over')
    t.ok((await dlr({ id: ids.reply, reference: 'not-ours', status: 'delivered' })).matched, 'matched by the provider id')
    t.notOk((await dlr({ id: 'unknown-id', reference: 'not-ours', status: 'delivered' })).matched, 'unmatched')
  })
  paths['Conversations status'] = await capture.during(async () => {
    const id = ids.whatsapp
    t.ok((await conversation({ id, status: 'delivered', direction: 'sent' })).matched)
    t.ok((await conversation({ id, status: 'read', direction: 'sent' })).matched, 'read meets the step')
    t.notOk((await conversation({ id: 'unknown-conversation-message', status: 'read', direction: 'sent' })).matched, 'unmatched')
  })
  paths['Conversations inbound'] = await capture.during(async () => {
    t.ok((await conversation({ id: 'wa-in-1', status: 'received', direction: 'received', from: '+31699998888', content: { text: 'Hi on WhatsApp' } }, 'message.created')).ticket_id)
    t.ok((await conversation({ id: 'wa-in-2', status: 'received', direction: 'received', from: B, content: { text: 'Me again' } }, 'message.created')).ticket_id)
  })

  const explain = testEngine === 'sqlite' ? new SQLite(databasePath, { readonly: true }) : null
  t.teardown(() => explain?.close())
  for (const [path, statements] of Object.entries(paths)) {
    const queries = statements.filter((s) => !NOT_QUERIES.test(s.sql) && (explain !== null || EXPLAINABLE.test(s.sql)))
    t.ok(queries.some((q) => /\b(update|insert into|from) "messages"/.test(q.sql)), `${path}: the capture saw the path's queries on messages`)
    const scans = new Set<string>()
    for (const q of queries) {
      if (explain === null) {
        // PostgreSQL: with sequential scans priced out, one that remains has no index to use.
        for (const line of await postgresPlan(databaseUrl, q)) {
          const table = /Seq Scan on (\w+)/.exec(line)?.[1]
          if (table !== undefined && GROWING.includes(table)) scans.add(`${line.trim()}  ←  ${q.sql}`)
        }
        continue
      }
      const plan = explain.prepare('explain query plan ' + q.sql).all(...q.params) as Array<{ detail: string }>
      for (const { detail } of plan) {
        const table = /^SCAN (\w+)/.exec(detail)?.[1]
        if (table !== undefined && GROWING.includes(table)) scans.add(`${detail}  ←  ${q.sql}`)
      }
    }
    t.same([...scans], [], `${path}: ${new Set(queries.map((q) => q.sql)).size} distinct queries, no scan of a growing table`)
  }
})
