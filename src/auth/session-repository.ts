import type { Executor } from '../db/database.js'

// All SQL for agent sessions. Session ids are SHA-256 digests of the cookie token.

export async function insertSession (db: Executor, session: { id: string, agentId: number, csrfSecret: string, expiresAt: string }, now: string): Promise<void> {
  await db.insertInto('sessions').values({
    id: session.id,
    agent_id: session.agentId,
    csrf_secret: session.csrfSecret,
    created_at: now,
    expires_at: session.expiresAt,
    last_seen_at: now
  }).execute()
}

export function findSessionWithAgent (db: Executor, id: string) {
  return db.selectFrom('sessions')
    .innerJoin('agents', 'agents.id', 'sessions.agent_id')
    .select([
      'sessions.id', 'sessions.csrf_secret', 'sessions.expires_at', 'sessions.last_seen_at',
      'agents.id as agent_id', 'agents.email', 'agents.name', 'agents.role', 'agents.disabled_at'
    ])
    .where('sessions.id', '=', id)
    .executeTakeFirst()
}

export async function touchSession (db: Executor, id: string, now: string): Promise<void> {
  await db.updateTable('sessions').set({ last_seen_at: now }).where('id', '=', id).execute()
}

export async function deleteSession (db: Executor, id: string): Promise<void> {
  await db.deleteFrom('sessions').where('id', '=', id).execute()
}

export async function deleteSessionsForAgent (db: Executor, agentId: number): Promise<number> {
  const res = await db.deleteFrom('sessions').where('agent_id', '=', agentId).executeTakeFirst()
  return Number(res.numDeletedRows)
}

export async function deleteExpiredSessions (db: Executor, now: string): Promise<void> {
  await db.deleteFrom('sessions').where('expires_at', '<=', now).execute()
}
