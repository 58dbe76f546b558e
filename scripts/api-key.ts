import 'dotenv/config'
import { runApiKeyCli } from '../src/api/api-key-cli.js'
import { ConfigError, loadConfig } from '../src/config.js'
import { createDatabase } from '../src/db/database.js'
import { migrateToLatest } from '../src/db/migrate.js'

// Manages API keys for the notifications API on the configured database (DATABASE_URL).
try {
  const config = loadConfig()
  const db = createDatabase(config)
  await migrateToLatest(db)
  const code = await runApiKeyCli(process.argv.slice(2), { db, out: (l) => console.log(l), err: (l) => console.error(l) })
  await db.destroy()
  process.exitCode = code
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : `api-key failed: ${(err as Error).message}`)
  process.exitCode = 1
}
