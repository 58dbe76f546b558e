import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import type SQLite from 'better-sqlite3'

/**
 * Moves WAL checkpoints off the event loop. A checkpoint copies the pages the WAL holds back into
 * the database file and fsyncs both; run by SQLite after a commit (its default), that work and its
 * two fsyncs land on whichever webhook happened to commit, which profiling showed as half the cost
 * of a commit. Here a worker thread with its own connection checkpoints every `intervalMs`
 * (PASSIVE: it never blocks the writer or readers). The main connection keeps a high automatic
 * checkpoint threshold as a safety net, so under sustained writing, or if the worker dies, the WAL
 * still cannot grow without bound. Durability is unchanged: commits reach the WAL exactly as before.
 */
export interface Checkpointer {
  stop: () => Promise<void>
}

/** One PASSIVE checkpoint: pages in the WAL, and how many of them are now in the database file. */
export interface CheckpointResult { walPages: number, checkpointedPages: number }

/** WAL pages (4 KiB) after which the main connection checkpoints on its own. */
export const SAFETY_NET_PAGES = 10_000
/** SQLite's default threshold, restored when the worker is gone. */
const DEFAULT_AUTOCHECKPOINT_PAGES = 1000

// Plain JavaScript run with `eval`, so the same code works from the TypeScript sources in tests
// and from dist/ (a worker file would need the TypeScript loader in tests).
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.driver)
const db = new Database(workerData.path)
db.pragma('busy_timeout = 1000')
// A checkpoint copies pages from the WAL to the file; it needs no page cache of its own.
db.pragma('cache_size = -256')
const checkpoint = () => {
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)')
    if (workerData.report) parentPort.postMessage({ walPages: r.log, checkpointedPages: r.checkpointed })
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message || err) })
  }
}
const timer = setInterval(checkpoint, workerData.intervalMs)
parentPort.on('message', (m) => {
  if (m !== 'stop') return
  clearInterval(timer)
  db.close()
  parentPort.close()
})
`

export function startCheckpointer (sqlite: SQLite.Database, opts: { intervalMs?: number, onError?: (message: string) => void, onCheckpoint?: (r: CheckpointResult) => void } = {}): Checkpointer {
  const path = sqlite.name
  const driver = createRequire(import.meta.url).resolve('better-sqlite3')
  sqlite.pragma(`wal_autocheckpoint = ${SAFETY_NET_PAGES}`)
  const worker = new Worker(WORKER, {
    eval: true,
    workerData: { path, driver, intervalMs: opts.intervalMs ?? 200, report: opts.onCheckpoint !== undefined },
    // It allocates next to nothing; small heap limits keep its share of the process's memory small.
    resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 }
  })
  // The process may exit while the worker sleeps; SQLite recovers an unfinished checkpoint.
  worker.unref()
  let stopped = false
  const restoreDefault = (): void => {
    if (sqlite.open) sqlite.pragma(`wal_autocheckpoint = ${DEFAULT_AUTOCHECKPOINT_PAGES}`)
  }
  worker.on('message', (m: { error?: string } & Partial<CheckpointResult>) => {
    if (m.error !== undefined) opts.onError?.(m.error)
    else if (m.walPages !== undefined && m.checkpointedPages !== undefined) opts.onCheckpoint?.({ walPages: m.walPages, checkpointedPages: m.checkpointedPages })
  })
  worker.on('error', (err) => {
    opts.onError?.(err.message)
    restoreDefault()
  })
  worker.on('exit', () => {
    if (!stopped) restoreDefault()
  })
  return {
    stop: async () => {
      if (stopped) return
      stopped = true
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
      worker.postMessage('stop')
      await exited
    }
  }
}
