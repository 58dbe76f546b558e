import { randomBytes } from 'node:crypto'
import type { Kysely } from 'kysely'

// Data and privacy: erasing a contact, retention of message texts, and the audit log of both.
//
// - contacts.erased_at: when the contact's personal data was erased (null: never).
// - tickets.texts_erased_at: when retention last erased the ticket's message texts; a ticket
//   reopened and closed again after that is due again.
// - erased_numbers: the keyed hash (HMAC-SHA256) of every number an erased contact had, with their
//   consent at that moment, so a later text from, or a message to, the same number still finds an
//   opt-out without the number itself being kept.
// - privacy_keys: the HMAC key, made once here from the system's random source. One row (id 1).
// - audit_log: who (an agent, or null for the system) erased what, and when.
// Plain tables and columns: the same statements on SQLite and PostgreSQL.
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('contacts').addColumn('erased_at', 'text').execute()
  await db.schema.alterTable('tickets').addColumn('texts_erased_at', 'text').execute()
  await db.schema.createTable('erased_numbers')
    .addColumn('number_hash', 'text', (c) => c.primaryKey())
    .addColumn('opted_out_at', 'text')
    .addColumn('erased_at', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createTable('privacy_keys')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('hmac_key', 'text', (c) => c.notNull())
    .execute()
  await db.insertInto('privacy_keys').values({ id: 1, hmac_key: randomBytes(32).toString('base64') }).execute()
  await db.schema.createTable('audit_log')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('agent_id', 'integer', (c) => c.references('agents.id'))
    .addColumn('contact_id', 'integer', (c) => c.references('contacts.id'))
    .addColumn('ticket_id', 'integer', (c) => c.references('tickets.id'))
    .addColumn('detail', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('audit_log_contact').on('audit_log').columns(['contact_id', 'id']).execute()
  // Retention looks for closed tickets by when they closed.
  await db.schema.createIndex('tickets_closed_at').on('tickets').column('closed_at').execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('tickets_closed_at').execute()
  await db.schema.dropTable('audit_log').execute()
  await db.schema.dropTable('privacy_keys').execute()
  await db.schema.dropTable('erased_numbers').execute()
  await db.schema.alterTable('tickets').dropColumn('texts_erased_at').execute()
  await db.schema.alterTable('contacts').dropColumn('erased_at').execute()
}
