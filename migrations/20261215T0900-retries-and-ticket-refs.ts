import { type Kysely, sql } from 'kysely'

// Retrying a failed message, and customers pointing at a ticket with `#<ref>`.
//
// - messages.retry_of: the failed outbound message a retry sends again. Unique: a message is
//   retried at most once (a failed retry is retried in its turn), so two POSTs of the same
//   "Retry" (a double click, two agents) insert one row. NULLs are distinct on both engines.
// - messages.ref_ticket_id: the customer's own ticket a text named with a leading `#<ref>`; the
//   text is stored without that prefix in `body`, and as it arrived in original_body.
// - ticket_events.message_id: the message an event is about (the retry an agent sent, the text
//   whose `#<ref>` reopened a ticket).
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('messages').addColumn('retry_of', 'text', (c) => c.references('messages.id')).execute()
  await db.schema.alterTable('messages').addColumn('ref_ticket_id', 'integer', (c) => c.references('tickets.id')).execute()
  await db.schema.alterTable('messages').addColumn('original_body', 'text').execute()
  await db.schema.createIndex('messages_retry_of').on('messages').column('retry_of').unique().execute()
  // A new ticket's insert checks the foreign keys that point at tickets: this keeps that check a
  // lookup. Partial, so the texts that name no ticket (nearly all) write no index entry.
  await db.schema.createIndex('messages_ref_ticket').on('messages').column('ref_ticket_id').where(sql.ref('ref_ticket_id'), 'is not', null).execute()
  await db.schema.alterTable('ticket_events').addColumn('message_id', 'text').execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('ticket_events').dropColumn('message_id').execute()
  await db.schema.dropIndex('messages_ref_ticket').execute()
  await db.schema.dropIndex('messages_retry_of').execute()
  for (const c of ['original_body', 'ref_ticket_id', 'retry_of']) await db.schema.alterTable('messages').dropColumn(c).execute()
}
