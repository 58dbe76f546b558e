import 'dotenv/config'
import { ConfigError, describeDatabase, loadConfig } from '../src/config.js'
import { createDatabase } from '../src/db/database.js'
import { migrateToLatest } from '../src/db/migrate.js'

// Creates or upgrades the schema. Safe to run any number of times.
try {
  const config = loadConfig()
  const db = createDatabase(config)
  const where = describeDatabase(config.database)
  try {
    const result = await migrateToLatest(db)
    const applied = result.results ?? []
    if (applied.length === 0) console.log(`Database ${where} is up to date; nothing to do.`)
    for (const r of applied) console.log(`${r.status === 'Success' ? 'Applied' : r.status}: ${r.migrationName}`)
    if (applied.length > 0) console.log(`Database ${where} is now at the latest schema.`)
  } finally {
    await db.destroy()
  }
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : `init-db failed: ${(err as Error).message}`)
  process.exit(1)
}
