import { createHmac } from 'node:crypto'
import type { Executor } from '../db/database.js'
import { privacyKey } from './privacy-repository.js'

// An erased contact's numbers are kept only as HMAC-SHA256 under a key of this database
// (privacy_keys), so a number can be recognised when it texts again, or is messaged again, but
// cannot be read back from the row.

export function numberHash (key: string, number: string): string {
  return createHmac('sha256', key).update(number).digest('hex')
}

// The key never changes once the migration made it: read once per database. Keyed by the dialect's
// adapter, which a database and its transactions share, so a transaction finds its database's key.
const keys = new WeakMap<object, string>()

/** The keyed hash of `number`, under this database's key. */
export async function erasedNumberHash (db: Executor, number: string): Promise<string> {
  const adapter = db.getExecutor().adapter
  let key = keys.get(adapter)
  if (key === undefined) {
    key = await privacyKey(db)
    keys.set(adapter, key)
  }
  return numberHash(key, number)
}
