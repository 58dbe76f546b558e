import { existsSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import SQLite from 'better-sqlite3'

export interface BackupResult {
  source: string
  destination: string
  pages: number
  bytes: number
  ms: number
}

export class BackupError extends Error {
  constructor (message: string, readonly reason: 'exists' | 'no-source' | 'same-file' | 'no-directory' | 'corrupt') {
    super(message)
    this.name = 'BackupError'
  }
}

// Every remaining page in one step (better-sqlite3 clamps the number to this).
const ALL_PAGES = 0x7fffffff

/**
 * A consistent copy of a live SQLite database through SQLite's online backup API, taken on a
 * connection of its own while the service keeps writing. The copy is made in one backup step:
 * one read transaction, so one snapshot, while writers go on appending to the WAL. (Copied in
 * small steps instead, the backup restarts whenever another connection commits in between, so it
 * takes longer the busier the service is.) The copy is checked with `PRAGMA integrity_check`,
 * switched to a rollback journal so it is one self-contained file, and only then renamed into
 * place: an interrupted backup never leaves a half-written file under the name asked for.
 */
export async function backupSqlite (sourcePath: string, destinationPath: string, opts: { force?: boolean } = {}): Promise<BackupResult> {
  const source = resolve(sourcePath)
  const destination = resolve(destinationPath)
  if (!existsSync(source)) throw new BackupError(`There is no database at ${source}: check DATABASE_URL`, 'no-source')
  if (existsSync(destination)) {
    if (realpathSync(destination) === realpathSync(source)) throw new BackupError('The backup cannot be written over the database itself', 'same-file')
    if (opts.force !== true) throw new BackupError(`${destination} already exists; pass --force to replace it`, 'exists')
  }
  if (!existsSync(dirname(destination))) throw new BackupError(`The folder ${dirname(destination)} does not exist`, 'no-directory')

  const started = Date.now()
  const partial = `${destination}.partial-${process.pid}`
  const removePartial = (): void => {
    for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(partial + suffix, { force: true })
  }
  removePartial()
  const db = new SQLite(source, { fileMustExist: true })
  try {
    db.pragma('busy_timeout = 5000')
    const progress = await db.backup(partial, { progress: () => ALL_PAGES })
    const copy = new SQLite(partial, { fileMustExist: true })
    try {
      const check = copy.pragma('integrity_check', { simple: true })
      if (check !== 'ok') throw new BackupError(`The copy failed SQLite's integrity check: ${String(check)}`, 'corrupt')
      copy.pragma('journal_mode = DELETE')
    } finally {
      copy.close()
    }
    renameSync(partial, destination)
    return { source, destination, pages: progress.totalPages, bytes: statSync(destination).size, ms: Date.now() - started }
  } catch (err) {
    removePartial()
    throw err
  } finally {
    db.close()
  }
}
