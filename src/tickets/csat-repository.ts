import type { Executor } from '../db/database.js'

// SQL for satisfaction surveys (csat_surveys): one row per ticket asked, and its rating.

export async function hasSurvey (db: Executor, ticketId: number): Promise<boolean> {
  return await db.selectFrom('csat_surveys').select('ticket_id').where('ticket_id', '=', ticketId).executeTakeFirst() !== undefined
}

export async function insertSurvey (db: Executor, s: { ticketId: number, contactId: number, agentId: number | null, messageId: string, sentAt: string, expiresAt: string }): Promise<void> {
  await db.insertInto('csat_surveys')
    .values({ ticket_id: s.ticketId, contact_id: s.contactId, agent_id: s.agentId, message_id: s.messageId, sent_at: s.sentAt, expires_at: s.expiresAt, rating: null, rated_at: null, rating_message_id: null })
    .execute()
}

/** The contact's newest survey still waiting for its rating at `now`: one range read of csat_surveys_waiting. */
export async function findWaitingSurvey (db: Executor, contactId: number, now: string): Promise<{ ticket_id: number } | undefined> {
  return await db.selectFrom('csat_surveys').select('ticket_id')
    .where('contact_id', '=', contactId).where('rating', 'is', null).where('expires_at', '>', now)
    .orderBy('sent_at', 'desc').limit(1)
    .executeTakeFirst()
}

/** Records the rating unless the survey has one already (a concurrent reply won); says whether it did. */
export async function recordRating (db: Executor, ticketId: number, rating: number, messageId: string, now: string): Promise<boolean> {
  const r = await db.updateTable('csat_surveys')
    .set({ rating, rated_at: now, rating_message_id: messageId })
    .where('ticket_id', '=', ticketId).where('rating', 'is', null)
    .executeTakeFirst()
  return Number(r.numUpdatedRows) === 1
}

export async function findSurvey (db: Executor, ticketId: number) {
  return await db.selectFrom('csat_surveys').select(['sent_at', 'expires_at', 'rating', 'rated_at'])
    .where('ticket_id', '=', ticketId).executeTakeFirst()
}
