import type { Kysely } from 'kysely'

// The media a message carries (a WhatsApp photo, an MMS picture, the image of an outbound MMS):
// one row per item, in the order the provider listed them. `url` is the provider's, fetched only
// by the service (GET /media/:id), never by an agent's browser. The message keeps its text line
// ("[image] caption"), so the thread reads the same where media cannot be shown.
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('message_media')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('message_id', 'text', (c) => c.notNull().references('messages.id'))
    .addColumn('position', 'integer', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('caption', 'text')
    .addColumn('content_type', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('message_media_message').on('message_media').columns(['message_id', 'position']).unique().execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('message_media').execute()
}
