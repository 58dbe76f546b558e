import { type Kysely, sql } from 'kysely'

// Every index on `messages` is one more page written per stored SMS. The two address indexes only
// served the simulator's phone view (now read through the contact's tickets), and the dispatch
// index only needs the messages that belong to a dispatch.
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('messages_from_address').execute()
  await db.schema.dropIndex('messages_to_address').execute()
  await db.schema.dropIndex('messages_dispatch').execute()
  await db.schema.createIndex('messages_dispatch').on('messages').column('dispatch_id')
    .where(sql.ref('dispatch_id'), 'is not', null).execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('messages_dispatch').execute()
  await db.schema.createIndex('messages_dispatch').on('messages').column('dispatch_id').execute()
  await db.schema.createIndex('messages_to_address').on('messages').columns(['to_address', 'created_at']).execute()
  await db.schema.createIndex('messages_from_address').on('messages').columns(['from_address', 'created_at']).execute()
}
