import SQLite from 'better-sqlite3'
import { CompiledQuery, sql } from 'kysely'
import t, { type Test } from 'tap'
import type { Db } from '../../src/db/database.js'
import { groupCommitter } from '../../src/db/group-commit.js'
import { findConversation, findOrOpenTicket } from '../../src/tickets/conversations.js'
import { conversationQuery, insertContact } from '../../src/tickets/ticket-repository.js'
import { apiClient } from '../api/api-helpers.js'
import { buildTestApp, form, sqliteOnly } from '../helper.js'
import { messagebirdApp } from '../webhooks/messagebird-sent.js'

// "Find or open the customer's ticket" under concurrent writers. SQLite has one writer, so the
// interleaving Postgres allows (two transactions both read "no open ticket", both insert) is made
// by hand: the service's read is taken first, then a second connection to the same file commits
// the contact, number or ticket, then the service's inserts run on that state.

// On PostgreSQL the races are real: test/postgres/instances.test.ts sends racing texts through two instances.
const RACE = sqliteOnly('a second better-sqlite3 connection plays the concurrent writer')
const BATCH = sqliteOnly('units sharing one group commit')
const PLAN = sqliteOnly('SQLite\'s EXPLAIN QUERY PLAN')

const PHONE = '+31612345678'
const OTHER = '+31687654321'
const AT = '2026-01-01T09:00:00.000Z'
const FIRST = { preview: 'Hello', direction: 'inbound' as const, sender: 'customer' as const }
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

/** The concurrent writer: its own better-sqlite3 connection, committing what another ingest would. */
function secondConnection (t: Test, path: string) {
  const conn = new SQLite(path)
  conn.pragma('foreign_keys = ON')
  conn.pragma('busy_timeout = 5000')
  t.teardown(() => conn.close())
  const openTicket = (contactId: number): number => Number(conn.prepare("insert into tickets (contact_id, status, created_at, updated_at, last_message_at, last_message_preview, last_message_direction, message_count) values (?, 'open', ?, ?, ?, 'from the other writer', 'inbound', 0)").run(contactId, AT, AT, AT).lastInsertRowid)
  return {
    contactWithTicket: (phone: string) => conn.transaction(() => {
      const contactId = Number(conn.prepare('insert into contacts (phone, created_at, updated_at) values (?, ?, ?)').run(phone, AT, AT).lastInsertRowid)
      conn.prepare('insert into contact_numbers (number, contact_id, created_at) values (?, ?, ?)').run(phone, contactId, AT)
      return { contactId, ticketId: openTicket(contactId) }
    })(),
    openTicket,
    addAddress: (contactId: number, channel: string, address: string) => conn.transaction(() => {
      conn.prepare('insert into contact_numbers (number, contact_id, created_at) values (?, ?, ?)').run(address, contactId, AT)
      conn.prepare('insert into contact_addresses (contact_id, channel, address, position, created_at) values (?, ?, ?, 1, ?)').run(contactId, channel, address, AT)
    })()
  }
}

async function tally (db: Db) {
  const n = async (q: string): Promise<number> => Number((await sql<{ n: number }>`${sql.raw(q)}`.execute(db)).rows[0].n)
  return {
    contacts: await n('select count(*) n from contacts'),
    numbers: await n('select count(*) n from contact_numbers'),
    openTickets: await n("select count(*) n from tickets where status <> 'closed'")
  }
}

t.test('a contact and ticket a concurrent writer created after our read are used: no error, no duplicate', RACE, async (t) => {
  const { db, databasePath } = await buildTestApp(t)
  const other = secondConnection(t, databasePath)
  const seen = await findConversation(db, PHONE)
  t.equal(seen, undefined, 'our read: nobody has this number')
  const theirs = other.contactWithTicket(PHONE)
  const got = await db.transaction().execute(async (trx) => await findOrOpenTicket(trx, PHONE, seen, AT, FIRST))
  t.same(got, { contactId: theirs.contactId, optedOutAt: null, ticketId: theirs.ticketId, newTicket: false, status: 'open', assigneeId: null, reopened: false })
  t.same(await tally(db), { contacts: 1, numbers: 1, openTickets: 1 })
})

t.test('a number a concurrent writer gave to another contact as an extra address stays theirs', RACE, async (t) => {
  const { db, databasePath } = await buildTestApp(t)
  const other = secondConnection(t, databasePath)
  const owner = other.contactWithTicket(OTHER)
  const seen = await findConversation(db, PHONE)
  t.equal(seen, undefined)
  other.addAddress(owner.contactId, 'whatsapp', PHONE)
  const got = await db.transaction().execute(async (trx) => await findOrOpenTicket(trx, PHONE, seen, AT, FIRST))
  t.same(got, { contactId: owner.contactId, optedOutAt: null, ticketId: owner.ticketId, newTicket: false, status: 'open', assigneeId: null, reopened: false }, 'the owner\'s ticket')
  t.same(await tally(db), { contacts: 1, numbers: 2, openTickets: 1 }, 'the contact our insert made was taken back')
})

t.test('a ticket a concurrent writer opened after our read showed none is used', RACE, async (t) => {
  const { db, databasePath } = await buildTestApp(t)
  const other = secondConnection(t, databasePath)
  const first = await db.transaction().execute(async (trx) => await findOrOpenTicket(trx, PHONE, await findConversation(trx, PHONE), AT, FIRST))
  t.equal(first.newTicket, true)
  await db.updateTable('tickets').set({ status: 'closed' }).where('id', '=', first.ticketId).execute()
  const seen = await findConversation(db, PHONE)
  t.same(seen, { contactId: first.contactId, optedOutAt: null, openTicketId: null, openTicketStatus: null, openTicketAssigneeId: null }, 'our read: no open ticket')
  const theirs = other.openTicket(first.contactId)
  const got = await db.transaction().execute(async (trx) => await findOrOpenTicket(trx, PHONE, seen, AT, FIRST))
  t.same(got, { contactId: first.contactId, optedOutAt: null, ticketId: theirs, newTicket: false, status: 'open', assigneeId: null, reopened: false })
  t.same(await tally(db), { contacts: 1, numbers: 1, openTickets: 1 })
})

t.test('through the webhook: the text lands on the ticket the concurrent writer opened, and no second confirmation goes out', RACE, async (t) => {
  const { app, db, databasePath, services, sent, drain } = await messagebirdApp(t)
  const other = secondConnection(t, databasePath)
  const text = async (body: string, id: string) => await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: PHONE.slice(1), payload: body, id }) })

  const opened = await text('My parcel is late', 'in-1')
  await drain()
  t.equal(sent.length, 1, 'the first ticket was confirmed through MessageBird')
  await services.tickets.close(opened.json().ticket_id as number, null)

  // The webhook's read happens before the other writer commits the customer's next ticket.
  const stale = await findConversation(db, PHONE)
  const theirs = other.openTicket(stale?.contactId as number)
  const lookUp = services.tickets.lookUpSender
  services.tickets.lookUpSender = async () => stale
  t.teardown(() => { services.tickets.lookUpSender = lookUp })

  const res = await text('Any news?', 'in-2')
  t.equal(res.statusCode, 200, 'no error')
  t.same(res.json(), { ok: true, ticket_id: theirs, duplicate: false })
  t.same(await tally(db), { contacts: 1, numbers: 1, openTickets: 1 })
  const onTicket = await db.selectFrom('messages').select(['direction', 'kind', 'body']).where('ticket_id', '=', theirs).execute()
  t.same(onTicket, [{ direction: 'inbound', kind: 'customer', body: 'Any news?' }], 'the text is on the existing ticket, with no confirmation queued')
  await drain()
  t.equal(sent.length, 1, 'nothing more reached MessageBird')
})

t.test('through the webhook: a first text from a number whose contact a concurrent writer just created', RACE, async (t) => {
  const { app, db, databasePath, services, sent, drain } = await messagebirdApp(t)
  const other = secondConnection(t, databasePath)
  // The webhook's read happens before the other writer commits the customer's contact and ticket.
  const stale = await findConversation(db, PHONE)
  t.equal(stale, undefined)
  const theirs = other.contactWithTicket(PHONE)
  const lookUp = services.tickets.lookUpSender
  services.tickets.lookUpSender = async () => stale
  t.teardown(() => { services.tickets.lookUpSender = lookUp })
  const res = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: PHONE.slice(1), payload: 'Hello?', id: 'in-1' }) })
  t.equal(res.statusCode, 200)
  t.equal(res.json().ticket_id, theirs.ticketId)
  t.same(await tally(db), { contacts: 1, numbers: 1, openTickets: 1 })
  await drain()
  t.equal(sent.length, 0, 'no confirmation: this text did not open the ticket')
})

t.test('a unit that fails after creating a contact takes the contact with it; the units sharing its commit still commit', BATCH, async (t) => {
  const { db, services } = await buildTestApp(t)
  // Started in one tick, so group commit runs them in one transaction, each in its own savepoint.
  const [failed, stored] = await Promise.allSettled([
    groupCommitter(db).run(async (trx) => {
      // A contact whose number is not claimed yet: a violation of the deferred foreign key, pending.
      await insertContact(trx, OTHER, AT)
      throw new Error('the rest of this unit failed')
    }),
    services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'ok-1', from: PHONE, to: null, text: 'Hi', channel: 'sms' })
  ])
  t.match(failed, { status: 'rejected', reason: { message: 'the rest of this unit failed' } })
  t.match(stored, { status: 'fulfilled', value: { newTicket: true } })
  t.same((await db.selectFrom('contacts').select('phone').execute()).map((c) => c.phone), [PHONE], 'the failed unit left no contact (and no half-made one for the deferred foreign key to trip on)')
  t.same(await tally(db), { contacts: 1, numbers: 1, openTickets: 1 })
})

t.test('the notifications API finds the customer through the same lookup: any of their numbers, on any channel', async (t) => {
  const { app, services, db } = await buildTestApp(t)
  const inbound = await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'a-1', from: PHONE, to: null, text: 'Hi', channel: 'sms' })
  await services.contacts.add(inbound.ticketId, 'whatsapp', OTHER)
  const api = await apiClient(app, services)
  // An SMS to the number the customer has as a WhatsApp address: the same customer, not a new one.
  const res = await api.post('/api/v1/messages', { to: OTHER, text: 'Your cupcakes are ready' })
  t.equal(res.statusCode, 202, res.body)
  t.equal(res.json().ticket_id, inbound.ticketId)
  t.same(await tally(db), { contacts: 1, numbers: 2, openTickets: 1 })
})

t.test('an inbound text resolves its sender in one statement, served by indexes', PLAN, async (t) => {
  const { db } = await buildTestApp(t)
  const compiled = conversationQuery(db).compile()
  const plan = await db.executeQuery<{ detail: string }>(CompiledQuery.raw('explain query plan ' + compiled.sql, compiled.parameters.map(() => PHONE)))
  const details = plan.rows.map((r) => r.detail)
  t.notOk(details.some((d) => /^SCAN/.test(d)), `no table scan: ${details.join('; ')}`)
  t.ok(details.some((d) => /SEARCH n USING INDEX sqlite_autoindex_contact_numbers/.test(d)), 'the number by the registry\'s key')
  t.ok(details.some((d) => /SEARCH t USING INDEX tickets_one_open_per_contact/.test(d)), 'the open ticket by the partial unique index')
})
