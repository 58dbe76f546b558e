import { Migrator, type Kysely, type Migration, type MigrationResultSet } from 'kysely'
import * as core from '../../migrations/20261122T0800-core-tickets.js'
import * as agents from '../../migrations/20261122T0900-agents-and-webhook-auth.js'
import * as dispatch from '../../migrations/20261122T1000-dispatch-and-api.js'
import * as leanIndexes from '../../migrations/20261122T1100-lean-message-indexes.js'
import * as oneNumberOneContact from '../../migrations/20261210T0900-one-number-one-contact.js'
import * as autoReplyLimits from '../../migrations/20261210T1000-auto-reply-limits.js'
import * as apiMessageKeys from '../../migrations/20261211T0900-api-message-keys.js'
import * as dispatchesByTicket from '../../migrations/20261211T1000-dispatches-by-ticket.js'
import * as teamInbox from '../../migrations/20261212T0900-team-inbox.js'

// Migrations are listed explicitly (not read from a folder) so the same list works from the
// TypeScript sources in tests and from the compiled files in dist/. Add new ones at the end.
export const migrations: Record<string, Migration> = {
  '20261122T0800-core-tickets': core,
  '20261122T0900-agents-and-webhook-auth': agents,
  '20261122T1000-dispatch-and-api': dispatch,
  '20261122T1100-lean-message-indexes': leanIndexes,
  '20261210T0900-one-number-one-contact': oneNumberOneContact,
  '20261210T1000-auto-reply-limits': autoReplyLimits,
  '20261211T0900-api-message-keys': apiMessageKeys,
  '20261211T1000-dispatches-by-ticket': dispatchesByTicket,
  '20261212T0900-team-inbox': teamInbox
}

export async function migrateToLatest (db: Kysely<any>): Promise<MigrationResultSet> {
  return checked(await migrator(db).migrateToLatest())
}

/** Up (or down) to the named migration; for tests that need a database as an older release left it. */
export async function migrateTo (db: Kysely<any>, name: string): Promise<MigrationResultSet> {
  return checked(await migrator(db).migrateTo(name))
}

function migrator (db: Kysely<any>): Migrator {
  return new Migrator({ db, provider: { getMigrations: async () => migrations } })
}

function checked (result: MigrationResultSet): MigrationResultSet {
  if (result.error !== undefined) {
    const failed = result.results?.find((r) => r.status === 'Error')
    const err = new Error(`Migration ${failed?.migrationName ?? '(unknown)'} failed: ${String((result.error as Error)?.message ?? result.error)}`)
    err.cause = result.error
    throw err
  }
  return result
}

/** Migrations this build knows that the database has not applied yet (read-only). */
export async function pendingMigrations (db: Kysely<any>): Promise<string[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } })
  return (await migrator.getMigrations()).filter((m) => m.executedAt === undefined).map((m) => m.name)
}
