import { nativeConnection, type Db } from './database.js'

/**
 * Runs `fn` once the transaction now open on the SQLite connection commits, or at once when none is
 * open (the change was an autocommitted statement); never if it rolls back. SQLite has one
 * connection and so at most one open transaction: a Kysely transaction (its commit and rollback
 * are hooked in database.ts) or a group-commit batch (group-commit.ts, which also drops the
 * callbacks of a unit rolled back to its savepoint). Used to publish live events from code that
 * runs inside a transaction it does not own.
 */
export function afterCommit (db: Db, fn: () => void): void {
  const native = nativeConnection(db)
  if (native === undefined) throw new Error('afterCommit needs a database made by createDatabase()')
  if (!native.inTransaction()) {
    fn()
    return
  }
  native.afterCommit.push(fn)
}
