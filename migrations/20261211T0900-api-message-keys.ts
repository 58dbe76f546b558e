import { type Kysely, sql } from 'kysely'

// Which API key sent each message created through POST /api/v1/messages, so a key reads only its
// own messages. A table of the API's own rather than a column on `messages`: the hot inbound insert
// stays as it is, and a dispatch's messages are already owned through `dispatches.api_key_id`.
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('api_messages')
    .addColumn('message_id', 'text', (c) => c.primaryKey().references('messages.id').onDelete('cascade'))
    .addColumn('api_key_id', 'integer', (c) => c.notNull().references('api_keys.id'))
    .execute()
  // Messages sent before this change have no recorded key. When only one key was ever created,
  // they were all its own; otherwise no key can read them (they stay visible in the inbox).
  await sql`
    insert into api_messages (message_id, api_key_id)
    select m.id, (select id from api_keys) from messages m
    where m.kind = 'notification' and m.dispatch_id is null and (select count(*) from api_keys) = 1
  `.execute(db)
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('api_messages').execute()
}
