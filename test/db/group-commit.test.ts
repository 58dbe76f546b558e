import SQLite from 'better-sqlite3'
import { sql } from 'kysely'
import t from 'tap'
import { groupCommitter } from '../../src/db/group-commit.js'
import { insertOutbox } from '../../src/messaging/outbox-repository.js'
import { freshDatabase } from '../helper.js'

// A second connection sees only what has been committed; its data_version moves once per commit
// made by another connection.
function observer (path: string) {
  const other = new SQLite(path, { readonly: true })
  return {
    outboxKinds: () => (other.prepare('select kind from outbox order by id').all() as Array<{ kind: string }>).map((r) => r.kind),
    commits: () => Number(other.pragma('data_version', { simple: true })),
    close: () => other.close()
  }
}

const NOW = '2026-01-01T09:00:00.000Z'

t.test('units submitted together share one commit, and each learns its outcome only after it', async (t) => {
  const { db, path } = await freshDatabase(t)
  const seen = observer(path)
  t.teardown(async () => { seen.close(); await db.destroy() })
  const before = seen.commits()
  const visibleAtResolve: number[] = []
  await Promise.all(Array.from({ length: 10 }, async (_, i) => {
    // insertOutbox is a compiled-once query, so inside a batch it runs on better-sqlite3 directly.
    await groupCommitter(db).run(async (trx) => await insertOutbox(trx, { kind: 'send', runAt: NOW, payload: { i } }, NOW))
    visibleAtResolve.push(seen.outboxKinds().length)
  }))
  t.equal(seen.commits() - before, 1, 'ten units, one commit')
  t.ok(visibleAtResolve.every((n) => n === 10), 'every unit was committed before its caller resumed')
})

t.test('a failing unit rolls back its own writes only, including writes made through the query builder', async (t) => {
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

t.test('a batch waits for a Kysely transaction that is still open, and never runs inside it', async (t) => {
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
