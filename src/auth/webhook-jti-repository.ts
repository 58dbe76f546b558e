import type { Executor } from '../db/database.js'

// All SQL for webhook replay protection: one row per accepted signature id (jti) until it expires.

/** True when the jti was not in use; an expired row for the same jti is taken over. */
export async function claimJti (db: Executor, jti: string, expiresAt: string, now: string): Promise<boolean> {
  const res = await db.insertInto('webhook_jtis').values({ jti, expires_at: expiresAt })
    .onConflict((oc) => oc.column('jti').doUpdateSet({ expires_at: expiresAt }).where('webhook_jtis.expires_at', '<=', now))
    .executeTakeFirst()
  return Number(res.numInsertedOrUpdatedRows ?? 0n) > 0
}

export async function isJtiSpent (db: Executor, jti: string, now: string): Promise<boolean> {
  const row = await db.selectFrom('webhook_jtis').select('jti').where('jti', '=', jti).where('expires_at', '>', now).executeTakeFirst()
  return row !== undefined
}

export async function deleteExpiredJtis (db: Executor, now: string): Promise<void> {
  await db.deleteFrom('webhook_jtis').where('expires_at', '<=', now).execute()
}
