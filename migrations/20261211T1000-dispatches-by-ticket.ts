import type { Kysely } from 'kysely'

// `dispatches.ticket_id` references `tickets`. SQLite checks a parent row against its child tables
// when a ticket is inserted with RETURNING (as every new ticket is), and without an index that
// check is a scan of `dispatches` inside the inbound webhook's transaction. Dispatches are written
// once per workflow, never per inbound text, so the index costs ingestion nothing.
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('dispatches_ticket').on('dispatches').column('ticket_id').execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('dispatches_ticket').execute()
}
