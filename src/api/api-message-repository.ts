import type { Executor } from '../db/database.js'

// SQL for which API key sent which message (POST /api/v1/messages). A dispatch's messages are
// owned through their dispatch instead.

export async function insertApiMessage (db: Executor, messageId: string, apiKeyId: number): Promise<void> {
  await db.insertInto('api_messages').values({ message_id: messageId, api_key_id: apiKeyId }).execute()
}

export async function findApiMessageKey (db: Executor, messageId: string): Promise<number | undefined> {
  const row = await db.selectFrom('api_messages').select('api_key_id').where('message_id', '=', messageId).executeTakeFirst()
  return row?.api_key_id
}
