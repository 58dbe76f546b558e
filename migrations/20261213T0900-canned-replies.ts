import type { Kysely } from 'kysely'

// Canned replies: shared texts agents insert in the composer (`/name`), with variables filled in
// for the ticket at hand. Names are unique (the index decides a race between two agents). Every
// change is also written to canned_reply_changes (who, when, what the text became), which keeps
// the row of a deleted reply too, so it has no foreign key to canned_replies.
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('canned_replies')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('created_by', 'integer', (c) => c.notNull().references('agents.id'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_by', 'integer', (c) => c.notNull().references('agents.id'))
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('canned_replies_name').on('canned_replies').column('name').unique().execute()

  await db.schema.createTable('canned_reply_changes')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('canned_reply_id', 'integer', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('agent_id', 'integer', (c) => c.notNull().references('agents.id'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('canned_reply_changes_reply').on('canned_reply_changes').columns(['canned_reply_id', 'id']).execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('canned_reply_changes').execute()
  await db.schema.dropTable('canned_replies').execute()
}
