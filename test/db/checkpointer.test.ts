import { statSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import t, { type Test } from 'tap'
import { SAFETY_NET_PAGES, type CheckpointResult } from '../../src/db/checkpointer.js'
import { createDatabase } from '../../src/db/database.js'
import { sqliteOnly } from '../helper.js'

const SQLITE_ONLY = sqliteOnly('the WAL checkpointer')

function fileDb (t: Test, backgroundCheckpoints: boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'textdesk-ckpt-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'x.sqlite')
  const errors: string[] = []
  // Each checkpoint the worker reports; a test waits for the one it needs instead of polling.
  const waiting: Array<{ done: (r: CheckpointResult) => boolean }> = []
  const onCheckpoint = (r: CheckpointResult): void => {
    for (const w of [...waiting]) if (w.done(r)) waiting.splice(waiting.indexOf(w), 1)
  }
  const checkpointWhere = async (check: (r: CheckpointResult) => boolean): Promise<CheckpointResult> =>
    await new Promise((resolve) => waiting.push({ done: (r) => { if (!check(r)) return false; resolve(r); return true } }))
  const db = createDatabase({ database: { kind: 'sqlite', path, synchronous: 'NORMAL' } }, { backgroundCheckpoints, onCheckpointError: (m) => errors.push(m), onCheckpoint })
  return { db, path, errors, checkpointWhere }
}

const autocheckpoint = async (db: ReturnType<typeof createDatabase>): Promise<number> =>
  Number(Object.values((await sql<Record<string, number>>`pragma wal_autocheckpoint`.execute(db)).rows[0])[0])

t.test('with background checkpoints, committed pages reach the database file without a checkpoint on the event loop', SQLITE_ONLY, async (t) => {
  const { db, path, errors, checkpointWhere } = fileDb(t, true)
  t.equal(await autocheckpoint(db), SAFETY_NET_PAGES, 'the main connection only checkpoints as a safety net')
  await sql`create table notes (id integer primary key, body text not null)`.execute(db)
  const before = statSync(path).size
  for (let i = 0; i < 200; i++) await sql`insert into notes (body) values (${'x'.repeat(2000)})`.execute(db)
  // 200 rows of 2 kB are about 100 pages: far below the safety net, so only the worker can have
  // copied them from the WAL into the database file.
  // Checked after each checkpoint the worker reports (a failure here is a test timeout).
  const grown = await checkpointWhere(() => statSync(path).size > before + 300_000)
  t.ok(grown.checkpointedPages > 0, `the database file grew when the worker checkpointed (${grown.checkpointedPages} pages)`)
  const rows = await sql<{ n: number }>`select count(*) as n from notes`.execute(db)
  t.equal(rows.rows[0].n, 200, 'every committed row is readable')
  await db.destroy()
  t.same(errors, [])
})

t.test('without them (scripts, most tests) SQLite checkpoints as usual', SQLITE_ONLY, async (t) => {
  const { db } = fileDb(t, false)
  t.teardown(async () => await db.destroy())
  t.equal(await autocheckpoint(db), 1000)
})
