import { createHmac } from 'node:crypto'
import type { Executor } from '../db/database.js'
import { findErasedNumber, privacyKey } from './privacy-repository.js'

// An erased contact's numbers are kept only as HMAC-SHA256 under a key of this database
// (privacy_keys), so a number can be recognised when it texts again, or is messaged again, but
// cannot be read back from the row.

export function numberHash (key: string, number: string): string {
  return createHmac('sha256', key).update(number).digest('hex')
}

/**
 * The consent an erased contact had on `number`: their opt-out time, or null when they had not
 * opted out or the number was never erased. A new contact for the number starts with it.
 */
export async function erasedOptOut (db: Executor, number: string): Promise<string | null> {
  const found = await findErasedNumber(db, numberHash(await privacyKey(db), number))
  return found?.opted_out_at ?? null
}
