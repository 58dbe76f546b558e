import { type Kysely, sql } from 'kysely'

// Merging tickets and customers.
//
// - tickets.merged_into: the ticket a merged ticket's messages, notes and timeline moved to. A
//   merged ticket is closed and counted in no view; it always names the final ticket (a later
//   merge of that one rewrites it), so one lookup follows it. No foreign key: a new ticket's
//   insert would check it; the partial index serves the rewrite and costs unmerged tickets nothing.
// - ticket_events.other_ticket_id: the other ticket of a merge event (merged into / merged from).
// - contact_merges: the ledger of customers merged into another one (the merged contact's row is
//   gone: its numbers, tickets and history belong to the one that stayed), so its old address
//   /contacts/<id> still leads somewhere.
// Plain column additions and a new table: the same statements on SQLite and PostgreSQL.
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('tickets').addColumn('merged_into', 'integer').execute()
  await db.schema.createIndex('tickets_merged_into').on('tickets').column('merged_into').where(sql.ref('merged_into'), 'is not', null).execute()
  await db.schema.alterTable('ticket_events').addColumn('other_ticket_id', 'integer').execute()
  await db.schema.createTable('contact_merges')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('from_contact_id', 'integer', (c) => c.notNull())
    .addColumn('from_phone', 'text', (c) => c.notNull())
    .addColumn('from_name', 'text')
    .addColumn('into_contact_id', 'integer', (c) => c.notNull().references('contacts.id'))
    .addColumn('agent_id', 'integer', (c) => c.notNull().references('agents.id'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('contact_merges_from').on('contact_merges').column('from_contact_id').execute()
  await db.schema.createIndex('contact_merges_into').on('contact_merges').columns(['into_contact_id', 'id']).execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('contact_merges').execute()
  await db.schema.alterTable('ticket_events').dropColumn('other_ticket_id').execute()
  await db.schema.dropIndex('tickets_merged_into').execute()
  await db.schema.alterTable('tickets').dropColumn('merged_into').execute()
}
