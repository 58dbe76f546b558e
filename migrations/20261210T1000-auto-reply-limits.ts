import type { Kysely } from 'kysely'

// What the rate limit on automatic answers (HELP, START, STOP) remembers per contact: when each
// keyword was last answered, and how many answers went out in the current 24-hour window. One row
// per contact, changed by one conditional upsert, so the limit holds across restarts and between
// concurrent writers.
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('auto_replies')
    .addColumn('contact_id', 'integer', (c) => c.primaryKey().references('contacts.id'))
    .addColumn('help_at', 'text')
    .addColumn('opt_in_at', 'text')
    .addColumn('opt_out_at', 'text')
    .addColumn('window_started_at', 'text', (c) => c.notNull())
    .addColumn('window_count', 'integer', (c) => c.notNull())
    .execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('auto_replies').execute()
}
