import 'dotenv/config'
import { ConfigError, loadConfig } from '../src/config.js'
import { runBackupCli } from '../src/ops/backup-cli.js'

// A consistent copy of the configured database (DATABASE_URL), safe while the service runs.
try {
  const config = loadConfig()
  process.exitCode = await runBackupCli(process.argv.slice(2), { config, out: (l) => console.log(l), err: (l) => console.error(l) })
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : `backup failed: ${(err as Error).message}`)
  process.exitCode = err instanceof ConfigError ? 78 : 1
}
