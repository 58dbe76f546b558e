import { randomUUID } from 'node:crypto'
import SQLite from 'better-sqlite3'
import Fastify from 'fastify'
import { openSqlite } from '../../src/db/database.js'

// A second yardstick: the ingest written by hand, the way the 48 % reference was, with
// Fastify and better-sqlite3 prepared statements and one transaction per webhook, on this
// product's schema (migrated by the parent) and with the same writes: the message, the ticket's
// inbox columns, for a new sender their contact and number, and for a new ticket its confirmation
// and outbox row. No rate limit, headers, logging, keywords, opt-out or failover.
const db: SQLite.Database = openSqlite(process.env.DATABASE_PATH as string)
const q = {
  duplicate: db.prepare<[string, string], { ticket_id: number }>('select ticket_id from messages where provider = ? and provider_message_id = ?'),
  contact: db.prepare<[string], { id: number }>('select contact_id id from contact_numbers where number = ?'),
  newContact: db.prepare<[string, string, string], { id: number }>('insert into contacts (phone, created_at, updated_at) values (?, ?, ?) returning id'),
  newNumber: db.prepare('insert into contact_numbers (number, contact_id, created_at) values (?, ?, ?)'),
  open: db.prepare<[number], { id: number }>("select id from tickets where contact_id = ? and status <> 'closed'"),
  newTicket: db.prepare<[number, string, string, string, string], { id: number }>("insert into tickets (contact_id, status, created_at, updated_at, last_message_at, last_message_preview, last_message_direction, message_count) values (?, 'open', ?, ?, ?, ?, 'inbound', 0) returning id"),
  message: db.prepare("insert into messages (id, ticket_id, direction, kind, channel, from_address, to_address, body, provider, provider_message_id, status, status_at, created_at, updated_at) values (?, ?, ?, ?, 'sms', ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
  touch: db.prepare("update tickets set last_message_at = ?, last_message_preview = ?, last_message_direction = 'inbound', message_count = message_count + 1, updated_at = ? where id = ?"),
  outbox: db.prepare("insert into outbox (kind, message_id, run_at, created_at) values ('send', ?, ?, ?)")
}

const ingest = db.transaction((f: Record<string, string>): number => {
  const now = new Date().toISOString()
  const seen = q.duplicate.get('messagebird', f.id)
  if (seen !== undefined) return seen.ticket_id
  const from = '+' + f.originator
  let contactId = q.contact.get(from)?.id
  if (contactId === undefined) {
    contactId = (q.newContact.get(from, now, now) as { id: number }).id
    q.newNumber.run(from, contactId, now)
  }
  const open = q.open.get(contactId)?.id
  const ticketId = open ?? (q.newTicket.get(contactId, now, now, now, f.payload) as { id: number }).id
  q.message.run(randomUUID(), ticketId, 'inbound', 'customer', from, f.receiver ?? '', f.payload, 'messagebird', f.id, 'received', now, now, now)
  q.touch.run(now, f.payload, now, ticketId)
  if (open === undefined) {
    const id = randomUUID()
    q.message.run(id, ticketId, 'outbound', 'confirmation', null, from, `Thanks for contacting customer support! Your ticket ID is ${ticketId}.`, null, null, 'queued', now, now, now)
    q.outbox.run(id, now, now)
  }
  return ticketId
})

const app = Fastify({ logger: false })
app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer' }, (_req, body, done) => {
  done(null, Object.fromEntries(new URLSearchParams((body as Buffer).toString('utf8'))))
})
app.post('/webhooks/messagebird', async (req) => ({ ok: true, ticket_id: ingest(req.body as Record<string, string>) }))
const address = await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
process.send?.({ ready: address })
