import type { Kysely } from 'kysely'

// dispatch_steps.media_url: the https URL of the image an mms step sends (MessageBird MMS API
// `mediaUrls`); null for every other step. The step keeps it until it starts, when it becomes the
// queued message's message_media row, which the outbox sends and the thread shows.
// A nullable added column: the same statement on both engines, no table rewrite.
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('dispatch_steps').addColumn('media_url', 'text').execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('dispatch_steps').dropColumn('media_url').execute()
}
