import { sql } from 'kysely'
import type { Executor } from '../db/database.js'

// SQL for the rate limit on automatic answers to keywords and to ratings: one row per contact (auto_replies).

export type AutoReplyKind = 'help' | 'opt_in' | 'opt_out' | 'csat'

const LAST_AT = { help: 'help_at', opt_in: 'opt_in_at', opt_out: 'opt_out_at', csat: 'csat_at' } as const satisfies Record<AutoReplyKind, string>

export interface AutoReplyLimits {
  /** The last answer of the same kind must be at or before this. */
  lastBefore: string
  /** A window that started at or before this is over: the count starts again. */
  windowOverBefore: string
  maxPerWindow: number
}

/**
 * Takes one automatic answer of `kind` for the contact when the limits allow it, and says whether
 * it did. One conditional upsert (the WHERE of DO UPDATE holds the limits), so two concurrent
 * keywords cannot both take the last answer, on SQLite or on Postgres.
 */
export async function takeAutoReply (db: Executor, contactId: number, kind: AutoReplyKind, now: string, limits: AutoReplyLimits): Promise<boolean> {
  const last = sql.ref(`auto_replies.${LAST_AT[kind]}`)
  const windowOver = sql<boolean>`auto_replies.window_started_at <= ${limits.windowOverBefore}`
  const row = await db.insertInto('auto_replies')
    .values({ contact_id: contactId, help_at: null, opt_in_at: null, opt_out_at: null, [LAST_AT[kind]]: now, window_started_at: now, window_count: 1 })
    .onConflict((oc) => oc.column('contact_id')
      .doUpdateSet({
        [LAST_AT[kind]]: now,
        window_count: sql<number>`case when ${windowOver} then 1 else auto_replies.window_count + 1 end`,
        window_started_at: sql<string>`case when ${windowOver} then ${now} else auto_replies.window_started_at end`
      })
      .where(sql<boolean>`(${last} is null or ${last} <= ${limits.lastBefore}) and (${windowOver} or auto_replies.window_count < ${limits.maxPerWindow})`))
    .returning('contact_id')
    .executeTakeFirst()
  return row !== undefined
}

/** When `kind` was last answered for the contact, and the current window; to explain a refusal. */
export async function findAutoReplyState (db: Executor, contactId: number, kind: AutoReplyKind) {
  return await db.selectFrom('auto_replies')
    .select([`${LAST_AT[kind]} as last_at`, 'window_started_at', 'window_count'])
    .where('contact_id', '=', contactId)
    .executeTakeFirst()
}
