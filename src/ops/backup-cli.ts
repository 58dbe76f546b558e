import type { Config } from '../config.js'
import { BackupError, backupSqlite } from '../db/backup.js'

export const BACKUP_USAGE = `Usage:
  npm run backup -- <file>           copy the database (DATABASE_URL) to <file> while the service runs
  npm run backup -- <file> --force   replace <file> if it exists`

// sysexits.h, as the other commands use.
const CODES: Record<BackupError['reason'], number> = { 'same-file': 64, 'no-source': 66, exists: 73, 'no-directory': 73, corrupt: 1 }

/**
 * The backup command, separate from its entry script so tests can run it. Returns the exit code;
 * everything meant for the person goes through `out` and `err`.
 */
export async function runBackupCli (args: string[], io: { config: Pick<Config, 'database'>, out: (line: string) => void, err: (line: string) => void }): Promise<number> {
  const force = args.includes('--force')
  const files = args.filter((a) => a !== '--force')
  if (args.includes('--help') || args.includes('-h')) {
    io.out(BACKUP_USAGE)
    return 0
  }
  const unknown = files.find((a) => a.startsWith('-'))
  if (files.length !== 1 || unknown !== undefined) {
    io.err(unknown !== undefined ? `Unknown option ${unknown}.` : 'Name one file to write the backup to.')
    io.err(BACKUP_USAGE)
    return 64
  }
  if (io.config.database.kind !== 'sqlite') {
    io.err('npm run backup copies a SQLite database; DATABASE_URL names a PostgreSQL server. Back it up with pg_dump (README "PostgreSQL").')
    return 64
  }
  try {
    const r = await backupSqlite(io.config.database.path, files[0], { force })
    io.out(`Backed up ${r.source} to ${r.destination}: ${r.pages} pages, ${(r.bytes / 1024 / 1024).toFixed(1)} MB, in ${r.ms} ms; integrity check ok.`)
    io.out('To restore it: stop the service, then follow "Backup and restore" in the README.')
    return 0
  } catch (err) {
    if (!(err instanceof BackupError)) throw err
    io.err(`Backup not made: ${err.message}`)
    return CODES[err.reason]
  }
}
