import type { Executor } from '../db/database.js'
import { uuidv7 } from '../db/ids.js'
import type { MediaKind, MessageMediaTable } from '../db/schema.js'

/** One item of media as a provider describes it. */
export interface MediaItem {
  kind: MediaKind
  url: string
  caption: string | null
  contentType: string | null
}

/** A stored item as the thread and the proxy read it: the table's row without its timestamp. */
export type StoredMedia = Omit<MessageMediaTable, 'created_at'>

/** Stores a message's media in `db` (the message's own transaction), in the provider's order. */
export async function insertMedia (db: Executor, messageId: string, items: readonly MediaItem[], now: string): Promise<void> {
  if (items.length === 0) return
  const nowMs = Date.parse(now)
  await db.insertInto('message_media').values(items.map((m, position) => ({
    id: uuidv7(nowMs),
    message_id: messageId,
    position,
    kind: m.kind,
    url: m.url,
    caption: m.caption,
    content_type: m.contentType,
    created_at: now
  }))).execute()
}

const columns = ['id', 'message_id', 'position', 'kind', 'url', 'caption', 'content_type'] as const

export async function findMedia (db: Executor, id: string): Promise<StoredMedia | undefined> {
  return await db.selectFrom('message_media').select(columns).where('id', '=', id).executeTakeFirst()
}

/** The media of every message of a ticket, for its thread. */
export async function listTicketMedia (db: Executor, ticketId: number): Promise<StoredMedia[]> {
  return await db.selectFrom('message_media').innerJoin('messages', 'messages.id', 'message_media.message_id')
    .select(columns.map((c) => `message_media.${c}` as const))
    .where('messages.ticket_id', '=', ticketId)
    .orderBy('message_media.message_id').orderBy('message_media.position').execute()
}

/** The media of one message (an outbound MMS being sent). */
export async function listMessageMedia (db: Executor, messageId: string): Promise<StoredMedia[]> {
  return await db.selectFrom('message_media').select(columns).where('message_id', '=', messageId).orderBy('position').execute()
}

/** The media of the given messages (the simulator's phone shows a page of them). */
export async function listMediaOfMessages (db: Executor, messageIds: readonly string[]): Promise<StoredMedia[]> {
  if (messageIds.length === 0) return []
  return await db.selectFrom('message_media').select(columns).where('message_id', 'in', messageIds)
    .orderBy('message_id').orderBy('position').execute()
}
