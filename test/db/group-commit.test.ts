import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import { sql } from 'kysely'
import t, { type Test } from 'tap'
import { createDatabase, nativeConnection, ROOT_DB_IN_UNIT, type Db, type TxExecutor, type UnitExecutor } from '../../src/db/database.js'
import { groupCommitter } from '../../src/db/group-commit.js'
import { migrateToLatest } from '../../src/db/migrate.js'
import { insertOutbox } from '../../src/messaging/outbox-repository.js'
import { freshDatabase, sqliteOnly } from '../helper.js'

const SQLITE_ONLY = sqliteOnly('group commit\'s batches and savepoints on SQLite\'s one connection')

// A second connection sees only what has been committed. Every commit appends at least one frame
// to the WAL, so frames appended bound the number of commits from above.
function observer (path: string) {
  const other = new SQLite(path, { readonly: true })
  const frameBytes = 24 + Number(other.pragma('page_size', { simple: true }))
  return {
    outboxKinds: () => (other.prepare('select kind from outbox order by id').all() as Array<{ kind: string }>).map((r) => r.kind),
    walFrames: () => Math.floor(statSync(path + '-wal').size / frameBytes),
    close: () => other.close()
  }
}

const NOW = '2026-01-01T09:00:00.000Z'

t.test('units submitted together share one commit, and each learns its outcome only after it', SQLITE_ONLY, async (t) => {
  const { db, path } = await freshDatabase(t)
  const seen = observer(path)
  t.teardown(async () => { seen.close(); await db.destroy() })
  const before = seen.walFrames()
  const visibleAtResolve: number[] = []
  await Promise.all(Array.from({ length: 10 }, async (_, i) => {
    // insertOutbox is a compiled-once query, so inside a batch it runs on better-sqlite3 directly.
    await groupCommitter(db).run(async (trx) => await insertOutbox(trx, { kind: 'send', runAt: NOW, payload: { i } }, NOW))
    visibleAtResolve.push(seen.outboxKinds().length)
  }))
  const frames = seen.walFrames() - before
  t.ok(frames > 0 && frames < 10, `ten units, fewer commits than units: ${frames} WAL frames, where ten commits write at least ten`)
  t.ok(visibleAtResolve.every((n) => n === 10), 'every unit was committed before its caller resumed')
})

t.test('a failing unit rolls back its own writes only, including writes made through the query builder', SQLITE_ONLY, async (t) => {
  const { db, path } = await freshDatabase(t)
  const seen = observer(path)
  t.teardown(async () => { seen.close(); await db.destroy() })
  const commit = groupCommitter(db)
  const results = await Promise.allSettled([
    commit.run(async (trx) => await insertOutbox(trx, { kind: 'send', runAt: NOW }, NOW)),
    commit.run(async (trx) => {
      await insertOutbox(trx, { kind: 'settle_unknown', runAt: NOW }, NOW)
      await trx.insertInto('outbox').values({ kind: 'status_callback', run_at: NOW, created_at: NOW }).execute()
      throw new Error('this unit fails')
    }),
    commit.run(async (trx) => await insertOutbox(trx, { kind: 'failover_deadline', runAt: NOW }, NOW))
  ])
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled'])
  t.match((results[1] as PromiseRejectedResult).reason, { message: 'this unit fails' })
  t.same(seen.outboxKinds(), ['send', 'failover_deadline'], 'the failed unit left nothing behind')
})

t.test('a batch waits for a Kysely transaction that is still open, and never runs inside it', SQLITE_ONLY, async (t) => {
  const { db, path } = await freshDatabase(t)
  const seen = observer(path)
  t.teardown(async () => { seen.close(); await db.destroy() })
  let release: () => void = () => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  let inserted: () => void = () => {}
  const insertDone = new Promise<void>((resolve) => { inserted = resolve })
  const open = db.transaction().execute(async (trx) => {
    await trx.insertInto('outbox').values({ kind: 'send', run_at: NOW, created_at: NOW }).execute()
    inserted()
    await held
    await sql`select 1`.execute(trx)
    throw new Error('the open transaction rolls back')
  })
  await insertDone
  let ran = false
  const unit = groupCommitter(db).run(async (trx) => {
    ran = true
    await insertOutbox(trx, { kind: 'status_callback', runAt: NOW }, NOW)
  })
  // The batch starts at the next check phase (setImmediate), queued before this one.
  await new Promise((resolve) => setImmediate(resolve))
  t.notOk(ran, 'the batch waits for the connection the open transaction holds')
  t.same(seen.outboxKinds(), [], 'nothing committed while the other transaction is open')
  release()
  await t.rejects(open, { message: 'the open transaction rolls back' })
  await unit
  t.same(seen.outboxKinds(), ['status_callback'], 'the unit committed on its own, after the rollback')
})

t.test('a unit that touches the root database fails at once with a clear error, and the rest of its batch commits', SQLITE_ONLY, async (t) => {
  const { db, path } = await freshDatabase(t)
  const seen = observer(path)
  t.teardown(async () => { seen.close(); await db.destroy() })
  const commit = groupCommitter(db)
  // Each of these would wait forever for the connection its own batch holds.
  const mistakes: Array<(unit: UnitExecutor) => Promise<unknown>> = [
    async (unit) => {
      await insertOutbox(unit, { kind: 'settle_unknown', runAt: NOW }, NOW)
      await insertOutbox(db, { kind: 'status_callback', runAt: NOW }, NOW)
    },
    async () => await db.selectFrom('outbox').selectAll().execute(),
    async () => await db.transaction().execute(async (trx) => await insertOutbox(trx, { kind: 'status_callback', runAt: NOW }, NOW)),
    async () => await commit.run(async (inner) => await insertOutbox(inner, { kind: 'status_callback', runAt: NOW }, NOW))
  ]
  const results = await Promise.allSettled([
    commit.run(async (unit) => await insertOutbox(unit, { kind: 'send', runAt: NOW }, NOW)),
    ...mistakes.map(async (work) => await commit.run(work)),
    commit.run(async (unit) => await insertOutbox(unit, { kind: 'failover_deadline', runAt: NOW }, NOW))
  ])
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'rejected', 'rejected', 'rejected', 'fulfilled'])
  for (const r of results.slice(1, -1)) t.match((r as PromiseRejectedResult).reason, { message: ROOT_DB_IN_UNIT })
  t.match(ROOT_DB_IN_UNIT, /root database.*wait forever.*executor the unit was given/s, 'the message says what went wrong and what to do')
  t.same(seen.outboxKinds(), ['send', 'failover_deadline'], 'the failing units left nothing behind')
})

t.test('a root-database query from outside any unit waits for a running batch instead of failing', SQLITE_ONLY, async (t) => {
  const { db } = await freshDatabase(t)
  t.teardown(async () => await db.destroy())
  await outsideQueryWaitsForBatch(t, db)
})

t.test('in production there is no unit bookkeeping, and group commit works the same', SQLITE_ONLY, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'textdesk-prod-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'p.sqlite')
  const db = createDatabase({ database: { kind: 'sqlite', path, synchronous: 'NORMAL' }, nodeEnv: 'production' })
  t.teardown(async () => await db.destroy())
  await migrateToLatest(db)
  t.equal(nativeConnection(db)?.units, null, 'no AsyncLocalStorage, so no per-unit or per-query cost')
  const dev = createDatabase({ database: { kind: 'sqlite', path: join(dir, 'd.sqlite'), synchronous: 'NORMAL' }, nodeEnv: 'development' })
  t.teardown(async () => await dev.destroy())
  t.ok(nativeConnection(dev)?.units, 'development tracks units')

  const seen = observer(path)
  t.teardown(() => seen.close())
  const commit = groupCommitter(db)
  const results = await Promise.allSettled([
    commit.run(async (unit) => await insertOutbox(unit, { kind: 'send', runAt: NOW }, NOW)),
    commit.run(async (unit) => {
      await unit.insertInto('outbox').values({ kind: 'status_callback', run_at: NOW, created_at: NOW }).execute()
      throw new Error('this unit fails')
    }),
    commit.run(async (unit) => await unit.insertInto('outbox').values({ kind: 'failover_deadline', run_at: NOW, created_at: NOW }).execute())
  ])
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled'])
  t.same(seen.outboxKinds(), ['send', 'failover_deadline'], 'builder and compiled queries commit; a failing unit rolls back alone')
  await outsideQueryWaitsForBatch(t, db)
})

async function outsideQueryWaitsForBatch (t: Test, db: Db): Promise<void> {
  let entered: () => void = () => {}
  const inUnit = new Promise<void>((resolve) => { entered = resolve })
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  const unit = groupCommitter(db).run(async (u) => {
    entered()
    await gate
    await insertOutbox(u, { kind: 'settle_unknown', runAt: NOW, payload: { marker: true } }, NOW)
  })
  await inUnit
  // The batch holds the connection now; this query comes from outside it and simply waits.
  const outside = db.selectFrom('outbox').select('payload').where('kind', '=', 'settle_unknown').execute()
  release()
  await unit
  t.same(await outside, [{ payload: '{"marker":true}' }], 'it ran once the batch had committed')
}

t.test('the type checker keeps the root database out of a unit\'s place', SQLITE_ONLY, async (t) => {
  const { db } = await freshDatabase(t)
  t.teardown(async () => await db.destroy())
  const unitOnly = (unit: UnitExecutor): UnitExecutor => unit
  const inTransaction = (trx: TxExecutor): TxExecutor => trx
  // @ts-expect-error the root database is not a unit's executor
  t.ok(unitOnly(db), 'the check is the directive above: tsc fails if the root database were accepted')
  // @ts-expect-error nor a transaction
  t.ok(inTransaction(db))
  await groupCommitter(db).run(async (unit) => {
    t.equal(inTransaction(unitOnly(unit)), unit, 'a unit\'s executor is a transaction executor')
  })
})

t.test('a unit\'s savepoint journal stays in memory: past 64 KiB SQLite would spill it to a temporary file that every later unit of the batch writes to (a quarter of ingestion throughput, npm run bench -- ingest)', SQLITE_ONLY, async (t) => {
  const { db } = await freshDatabase(t)
  t.teardown(async () => { await db.destroy() })
  const { rows } = await sql<{ temp_store: number }>`pragma temp_store`.execute(db)
  t.equal(rows[0]?.temp_store, 2, 'temp_store = MEMORY')
  // A batch whose units each change far more than 64 KiB still commits every unit.
  const big = 'x'.repeat(100_000)
  await Promise.all(Array.from({ length: 5 }, async (_, i) => await groupCommitter(db).run(async (unit) => await insertOutbox(unit, { kind: 'send', runAt: NOW, payload: { i, big } }, NOW))))
  const { rows: n } = await sql<{ n: number }>`select count(*) as n from outbox`.execute(db)
  t.equal(n[0]?.n, 5)
})
