import { Migrator, type Kysely, type Migration, type MigrationResultSet } from 'kysely'
import * as core from '../../migrations/20261122T0800-core-tickets.js'
import * as agents from '../../migrations/20261122T0900-agents-and-webhook-auth.js'
import * as dispatch from '../../migrations/20261122T1000-dispatch-and-api.js'
import * as leanIndexes from '../../migrations/20261122T1100-lean-message-indexes.js'

// Migrations are listed explicitly (not read from a folder) so the same list works from the
// TypeScript sources in tests and from the compiled files in dist/. Add new ones at the end.
const migrations: Record<string, Migration> = {
  '20261122T0800-core-tickets': core,
  '20261122T0900-agents-and-webhook-auth': agents,
  '20261122T1000-dispatch-and-api': dispatch,
  '20261122T1100-lean-message-indexes': leanIndexes
}

export async function migrateToLatest (db: Kysely<any>): Promise<MigrationResultSet> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } })
  const result = await migrator.migrateToLatest()
  if (result.error !== undefined) {
    const failed = result.results?.find((r) => r.status === 'Error')
    const err = new Error(`Migration ${failed?.migrationName ?? '(unknown)'} failed: ${String((result.error as Error)?.message ?? result.error)}`)
    err.cause = result.error
    throw err
  }
  return result
}
