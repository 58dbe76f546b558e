import type { Executor } from '../db/database.js'
import type { CannedReply, CannedReplyAction } from '../db/schema.js'

// All SQL for canned replies. A handful of rows per desk: the list reads them all, in name order
// (the unique index on name serves the order).

export async function listCannedReplies (db: Executor): Promise<CannedReply[]> {
  return await db.selectFrom('canned_replies').selectAll().orderBy('name').execute()
}

/** The list with who last changed each reply. */
export async function listCannedRepliesWithEditors (db: Executor) {
  return await db.selectFrom('canned_replies').leftJoin('agents', 'agents.id', 'canned_replies.updated_by')
    .selectAll('canned_replies').select('agents.name as updated_by_name')
    .orderBy('canned_replies.name').execute()
}

export async function findCannedReply (db: Executor, id: number): Promise<CannedReply | undefined> {
  return await db.selectFrom('canned_replies').selectAll().where('id', '=', id).executeTakeFirst()
}

export async function findCannedReplyByName (db: Executor, name: string): Promise<CannedReply | undefined> {
  return await db.selectFrom('canned_replies').selectAll().where('name', '=', name).executeTakeFirst()
}

export async function insertCannedReply (db: Executor, reply: { name: string, body: string }, agentId: number, now: string): Promise<number> {
  const row = await db.insertInto('canned_replies').values({
    name: reply.name, body: reply.body, created_by: agentId, created_at: now, updated_by: agentId, updated_at: now
  }).returning('id').executeTakeFirstOrThrow()
  return row.id
}

/** Whether a row was changed (false: it is gone). */
export async function updateCannedReply (db: Executor, id: number, reply: { name: string, body: string }, agentId: number, now: string): Promise<boolean> {
  const result = await db.updateTable('canned_replies').set({ name: reply.name, body: reply.body, updated_by: agentId, updated_at: now })
    .where('id', '=', id).executeTakeFirst()
  return Number(result.numUpdatedRows) > 0
}

/** The deleted row, or undefined when it was already gone. */
export async function deleteCannedReply (db: Executor, id: number): Promise<CannedReply | undefined> {
  return await db.deleteFrom('canned_replies').where('id', '=', id).returningAll().executeTakeFirst()
}

export async function recordCannedReplyChange (db: Executor, change: { cannedReplyId: number, action: CannedReplyAction, name: string, body: string, agentId: number }, now: string): Promise<void> {
  await db.insertInto('canned_reply_changes').values({
    canned_reply_id: change.cannedReplyId, action: change.action, name: change.name, body: change.body, agent_id: change.agentId, created_at: now
  }).execute()
}

export async function listCannedReplyChanges (db: Executor, cannedReplyId: number) {
  return await db.selectFrom('canned_reply_changes').leftJoin('agents', 'agents.id', 'canned_reply_changes.agent_id')
    .selectAll('canned_reply_changes').select('agents.name as agent_name')
    .where('canned_reply_id', '=', cannedReplyId).orderBy('canned_reply_changes.id', 'desc').execute()
}
