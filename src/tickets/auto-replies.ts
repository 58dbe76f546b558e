import type { Config } from '../config.js'
import type { Executor } from '../db/database.js'
import { findAutoReplyState, takeAutoReply, type AutoReplyKind } from './auto-reply-repository.js'

export type { AutoReplyKind }

const DAY_MS = 24 * 60 * 60 * 1000
export const KEYWORD_WORDS: Record<AutoReplyKind, string> = { help: 'HELP', opt_in: 'START', opt_out: 'STOP', csat: 'a rating' }

/**
 * The limits on automatic answers to HELP, START and STOP, per contact (so per number: a number
 * belongs to one contact) and per keyword: at most one answer to each keyword per
 * `AUTO_REPLY_INTERVAL_MINUTES`, and at most `AUTO_REPLY_MAX_PER_DAY` answers of all keywords
 * together in a 24-hour window. Unsigned webhooks would otherwise let anyone make us text any
 * number as often as they like. The state is in the database, so it holds across restarts.
 */
export class AutoReplies {
  constructor (private readonly config: Pick<Config, 'autoReply'>) {}

  /** Null when the answer may go out (and is counted); otherwise why it may not, in words for the ticket. */
  async take (trx: Executor, contactId: number, kind: AutoReplyKind, now: string): Promise<string | null> {
    const { intervalMinutes, maxPerDay } = this.config.autoReply
    const at = Date.parse(now)
    const limits = {
      lastBefore: new Date(at - intervalMinutes * 60_000).toISOString(),
      windowOverBefore: new Date(at - DAY_MS).toISOString(),
      maxPerWindow: maxPerDay
    }
    if (await takeAutoReply(trx, contactId, kind, now, limits)) return null
    const state = await findAutoReplyState(trx, contactId, kind)
    if (state?.last_at != null && state.last_at > limits.lastBefore) {
      return `No automatic answer: ${KEYWORD_WORDS[kind]} was already answered less than ${minutes(intervalMinutes)} ago (one answer per keyword and number every ${minutes(intervalMinutes)}).`
    }
    return `No automatic answer: this number already got ${maxPerDay} automatic ${maxPerDay === 1 ? 'answer' : 'answers'} within 24 hours.`
  }
}

function minutes (n: number): string {
  return n % 60 === 0 && n >= 60 ? `${n / 60} hour${n === 60 ? '' : 's'}` : `${n} minute${n === 1 ? '' : 's'}`
}
