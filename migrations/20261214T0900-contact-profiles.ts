import type { Kysely } from 'kysely'

// Customer profiles and agent-started conversations. A contact gets notes about the customer
// (with who wrote them last and when); every change of a contact's name or notes is kept in
// contact_changes (who, when, what it became), shown on the profile. conversation_tokens holds
// the one-time token of each "New message" form that was sent: spent in the transaction that
// queues the message, so a double click sends once (the primary key decides a race).
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('contacts').addColumn('notes', 'text').execute()
  await db.schema.alterTable('contacts').addColumn('notes_updated_by', 'integer').execute()
  await db.schema.alterTable('contacts').addColumn('notes_updated_at', 'text').execute()

  await db.schema.createTable('contact_changes')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('contact_id', 'integer', (c) => c.notNull().references('contacts.id'))
    .addColumn('field', 'text', (c) => c.notNull())
    .addColumn('value', 'text')
    .addColumn('agent_id', 'integer', (c) => c.notNull().references('agents.id'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('contact_changes_contact').on('contact_changes').columns(['contact_id', 'id']).execute()

  await db.schema.createTable('conversation_tokens')
    .addColumn('token', 'text', (c) => c.primaryKey())
    .addColumn('agent_id', 'integer', (c) => c.notNull().references('agents.id'))
    .addColumn('ticket_id', 'integer', (c) => c.references('tickets.id'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('conversation_tokens_created').on('conversation_tokens').column('created_at').execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('conversation_tokens').execute()
  await db.schema.dropTable('contact_changes').execute()
  await db.schema.alterTable('contacts').dropColumn('notes_updated_at').execute()
  await db.schema.alterTable('contacts').dropColumn('notes_updated_by').execute()
  await db.schema.alterTable('contacts').dropColumn('notes').execute()
}
