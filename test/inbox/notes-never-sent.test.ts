import t from 'tap'
import { FAST_HASH_ENV, signedInAgent } from '../auth/agent-session.js'
import { form } from '../helper.js'
import { messagebirdApp } from '../webhooks/messagebird-sent.js'

// "A note never reaches the customer, whatever happens": notes in every state a ticket can be in,
// through the real MessageBird SDK with its HTTPS calls intercepted, then the worker drained.

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

t.test('notes on open, pending, closed, opted-out and failover tickets send nothing and queue nothing', async (t) => {
  const { app, db, sent, drain, services } = await messagebirdApp(t, { env: { ...FAST_HASH_ENV, SECURE_COOKIES: 'false' } })
  const agent = await signedInAgent(app)
  let n = 0
  const text = async (from: string, body: string) =>
    (await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: from, payload: body, id: `in-${++n}` }) })).json().ticket_id as number
  const post = async (url: string, fields: Record<string, string>) => await agent.inject({ method: 'POST', url, headers: FORM, payload: form(fields) })

  const open = await text('31612345001', 'open ticket')
  const pending = await text('31612345002', 'pending ticket')
  await post(`/tickets/${pending}/status`, { status: 'pending' })
  const closed = await text('31612345003', 'closed ticket')
  await post(`/tickets/${closed}/status`, { status: 'closed' })
  const optedOut = await text('31612345004', 'hello')
  await text('31612345004', 'STOP')
  const withFailover = await text('31612345005', 'failover customer')
  t.equal((await post(`/tickets/${withFailover}/addresses`, { channel: 'whatsapp', address: '+31612345006' })).statusCode, 303)
  t.equal((await post(`/tickets/${withFailover}/addresses`, { channel: 'sms', address: '+31612345007' })).statusCode, 303)
  await drain()
  const sentBefore = sent.length
  t.ok(sentBefore >= 5, 'confirmations went out through the SDK, so the interception sees sends')
  const messagesBefore = (await db.selectFrom('messages').select('id').execute()).length

  const tickets = [open, pending, closed, optedOut, withFailover]
  for (const id of tickets) {
    for (const body of ['Customer is a VIP', 'Call them back at +31612345999', 'STOP']) {
      t.equal((await post(`/tickets/${id}/notes`, { body })).statusCode, 303, `note on ticket ${id}`)
    }
  }
  t.equal((await db.selectFrom('notes').select('id').execute()).length, tickets.length * 3)
  await drain()
  await services.worker.drain()
  t.equal(sent.length, sentBefore, 'not one request reached MessageBird')
  t.same(sent.filter((s) => /VIP|\+31612345999/.test(s.body)), [], 'no note text was ever sent')
  t.equal((await db.selectFrom('messages').select('id').execute()).length, messagesBefore, 'no message row')
  t.same(await db.selectFrom('outbox').select('id').execute(), [], 'no outbox row')
  const contact = await db.selectFrom('contacts').select('opted_out_at').where('phone', '=', '+31612345004').executeTakeFirstOrThrow()
  t.not(contact.opted_out_at, null, 'STOP in a note changes no consent: only the customer\'s STOP did')
})
