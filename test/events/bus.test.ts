import { sql } from 'kysely'
import t, { type Test } from 'tap'
import { groupCommitter } from '../../src/db/group-commit.js'
import type { Executor } from '../../src/db/database.js'
import type { BusEvent, PersistentEvent, Replay } from '../../src/events/bus.js'
import { InProcessEventBus } from '../../src/events/in-process.js'
import { FakeClock, freshDatabase, sqliteOnly } from '../helper.js'

// PostgreSQL's bus (LISTEN/NOTIFY) is tested in test/postgres/live-across-instances.test.ts.
const SQLITE_ONLY = sqliteOnly('the in-process bus, which SQLite deployments use')

async function setup (t: Test, opts: { replayMax?: number, replayMinutes?: number } = {}) {
  const { db } = await freshDatabase(t)
  t.teardown(async () => await db.destroy())
  // Tables of this test's own: a write to roll back, and a foreign key checked only at COMMIT.
  await sql`create table probe (v text not null)`.execute(db)
  await sql`create table probe_child (parent integer references probe_parent(id) deferrable initially deferred)`.execute(db)
  await sql`create table probe_parent (id integer primary key)`.execute(db)
  const clock = new FakeClock()
  const bus = new InProcessEventBus({ db, clock, replayMax: opts.replayMax ?? 10_000, replayMinutes: opts.replayMinutes ?? 10 })
  const seen: BusEvent[] = []
  bus.subscribe((e) => seen.push(e))
  return { db, clock, bus, seen }
}

const ids = (replay: Replay): string[] => replay.ok ? replay.events.map((e) => e.id) : ['reload']
const changes = (events: BusEvent[]): string[] => events.map((e) => e.name === 'ticket' ? `${e.data.ticketId}:${e.data.change}` : `presence:${e.data.ticketId}`)

t.test('events are delivered in publish order, with ids that only grow, and lastId() names the newest', SQLITE_ONLY, async (t) => {
  const { bus, seen } = await setup(t)
  const before = bus.lastId()
  for (let i = 1; i <= 5; i++) bus.publish({ ticketId: i, change: 'message' })
  t.same(changes(seen), ['1:message', '2:message', '3:message', '4:message', '5:message'])
  const numbers = seen.map((e) => Number((e as PersistentEvent).id))
  t.ok(numbers.every((n, i) => i === 0 ? n > Number(before) : n > numbers[i - 1]), 'each id is greater than the one before')
  t.equal(bus.lastId(), (seen[4] as PersistentEvent).id)
  bus.publishEphemeral({ ticketId: 9, viewers: [] })
  t.equal(bus.lastId(), (seen[4] as PersistentEvent).id, 'presence events take no id')
  t.notOk('id' in seen[5])
})

t.test('replay after an id gives exactly the later events, in order; lastId() at render time replays what came after it', SQLITE_ONLY, async (t) => {
  const { bus } = await setup(t)
  const rendered = bus.lastId()
  for (let i = 1; i <= 5; i++) bus.publish({ ticketId: i, change: 'status' })
  const all = bus.subscribeAfter(rendered, () => {})
  t.equal(ids(all.replay).length, 5, 'a page rendered before any event replays all of them')
  const third = ids(all.replay)[2]
  const later = bus.subscribeAfter(third, () => {})
  t.same(ids(later.replay), ids(all.replay).slice(3))
  t.same(ids(bus.subscribeAfter(bus.lastId(), () => {}).replay), [], 'nothing after the newest')
})

t.test('subscribeAfter: nothing published between the replay and the subscription is lost', SQLITE_ONLY, async (t) => {
  const { bus } = await setup(t)
  bus.publish({ ticketId: 1, change: 'created' })
  const got: BusEvent[] = []
  const { replay } = bus.subscribeAfter(bus.lastId(), (e) => got.push(e))
  bus.publish({ ticketId: 2, change: 'created' })
  t.same(ids(replay), [])
  t.same(changes(got), ['2:created'])
})

t.test('reload (replay not ok) for an unknown id, a malformed one, one from another bus (a restart), and no subscription then', SQLITE_ONLY, async (t) => {
  const { db, clock, bus } = await setup(t)
  bus.publish({ ticketId: 1, change: 'created' })
  const oldId = bus.lastId()
  for (const bad of ['abc', '', '0', '-1', '1e3', '007', String(Number(oldId) + 1), '99999999999999999999']) {
    t.same(ids(bus.subscribeAfter(bad, () => {}).replay), ['reload'], `"${bad}"`)
  }
  // A restart: a new bus on the same database, even at the same clock time.
  const restarted = new InProcessEventBus({ db, clock, replayMax: 10_000, replayMinutes: 10 })
  restarted.publish({ ticketId: 2, change: 'created' })
  t.ok(Number(restarted.lastId()) > Number(oldId), 'ids keep growing across a restart')
  const got: BusEvent[] = []
  const { replay } = restarted.subscribeAfter(oldId, (e) => got.push(e))
  t.same(ids(replay), ['reload'], 'an id from before the restart')
  t.same(ids(restarted.subscribeAfter(bus.lastId(), () => {}).replay), ['reload'], 'even the old bus\'s newest id')
  restarted.publish({ ticketId: 3, change: 'created' })
  t.same(got, [], 'a reloading client is not subscribed')
  t.equal(restarted.listenerCount(), 0)
})

t.test('the ring keeps at most replayMax events: an id older than that gets reload, the boundary still replays', SQLITE_ONLY, async (t) => {
  const { bus } = await setup(t, { replayMax: 10 })
  const rendered = bus.lastId()
  const published: string[] = []
  for (let i = 1; i <= 15; i++) {
    bus.publish({ ticketId: i, change: 'message' })
    published.push(bus.lastId())
  }
  t.same(ids(bus.subscribeAfter(rendered, () => {}).replay), ['reload'], 'a page rendered before 15 events, 10 kept')
  t.same(ids(bus.subscribeAfter(published[3], () => {}).replay), ['reload'], 'the 4th is gone')
  t.same(ids(bus.subscribeAfter(published[4], () => {}).replay), published.slice(5), 'the 5th was the last dropped: everything after it is kept')
  t.same(ids(bus.subscribeAfter(published[5], () => {}).replay), published.slice(6))
})

t.test('a long-running ring (thousands of drops, so its storage is compacted) still replays exactly the last replayMax', SQLITE_ONLY, async (t) => {
  const { bus } = await setup(t, { replayMax: 100 })
  const published: string[] = []
  for (let i = 1; i <= 5_000; i++) {
    bus.publish({ ticketId: i, change: 'message' })
    published.push(bus.lastId())
    // Check around every compaction point and in between.
    if (i % 997 === 0 || i === 5_000) {
      const kept = published.slice(-100)
      t.same(ids(bus.subscribeAfter(published[published.length - 101], () => {}).replay), kept, `after ${i} events: the boundary replays the last 100`)
      t.same(ids(bus.subscribeAfter(published[published.length - 102], () => {}).replay), ['reload'], `after ${i} events: one further back is gone`)
      t.same(ids(bus.subscribeAfter(published[published.length - 50], () => {}).replay), published.slice(-49))
      t.same(ids(bus.subscribeAfter(bus.lastId(), () => {}).replay), [], 'the newest id: nothing to replay')
    }
  }
})

t.test('the ring forgets events older than replayMinutes, by the injected clock', SQLITE_ONLY, async (t) => {
  const { bus, clock } = await setup(t, { replayMinutes: 10 })
  bus.publish({ ticketId: 1, change: 'message' })
  const first = bus.lastId()
  clock.advance(5 * 60_000)
  bus.publish({ ticketId: 2, change: 'message' })
  const second = bus.lastId()
  bus.publish({ ticketId: 3, change: 'message' })
  clock.advance(5 * 60_000 - 1)
  t.equal(ids(bus.subscribeAfter(first, () => {}).replay).length, 2, 'just under 10 minutes: still kept')
  clock.advance(2)
  // No publish since: the age limit applies when a client asks, not only when the next event comes.
  t.same(ids(bus.subscribeAfter(first, () => {}).replay).length, 2, 'the first event itself aged out, but its id is the boundary: nothing after it was lost')
  t.same(ids(bus.subscribeAfter(String(Number(first) - 1), () => {}).replay), ['reload'], 'an id before it is too old')
  clock.advance(5 * 60_000)
  t.same(ids(bus.subscribeAfter(first, () => {}).replay), ['reload'], 'after 10 more minutes the second is gone too')
  t.same(ids(bus.subscribeAfter(bus.lastId(), () => {}).replay), [], 'an idle page that saw the newest event resumes without a reload')
  t.not(second, bus.lastId())
})

t.test('a subscriber that throws neither starves the others nor reaches the publisher', SQLITE_ONLY, async (t) => {
  const { bus, seen } = await setup(t)
  const warnings: Error[] = []
  const onWarning = (w: Error): void => { warnings.push(w) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  bus.subscribe(() => { throw new Error('socket gone') })
  const after: BusEvent[] = []
  bus.subscribe((e) => after.push(e))
  t.doesNotThrow(() => bus.publish({ ticketId: 1, change: 'note' }))
  t.equal(seen.length, 1)
  t.equal(after.length, 1)
  await new Promise((resolve) => setImmediate(resolve))
  t.match(warnings, [{ message: 'socket gone' }], 'the failure is reported as a process warning')
})

t.test('unsubscribe stops delivery; close() drops every listener and later publishes', SQLITE_ONLY, async (t) => {
  const { bus, seen } = await setup(t)
  const got: BusEvent[] = []
  const off = bus.subscribe((e) => got.push(e))
  t.equal(bus.listenerCount(), 2)
  off()
  t.equal(bus.listenerCount(), 1)
  bus.publish({ ticketId: 1, change: 'note' })
  t.equal(got.length, 0)
  await bus.close()
  t.equal(bus.listenerCount(), 0)
  bus.publish({ ticketId: 2, change: 'note' })
  t.equal(seen.length, 1)
})

t.test('the audience travels with the event and through replay', SQLITE_ONLY, async (t) => {
  const { bus, seen } = await setup(t)
  const rendered = bus.lastId()
  bus.publish({ ticketId: 1, change: 'read' }, { audience: 7 })
  bus.publish({ ticketId: 1, change: 'status' })
  t.same(seen.map((e) => e.audience), [7, null])
  const { replay } = bus.subscribeAfter(rendered, () => {})
  t.same(replay.ok ? replay.events.map((e) => e.audience) : null, [7, null])
})

async function insertContact (db: Executor, v: string): Promise<void> {
  await sql`insert into probe (v) values (${v})`.execute(db)
}

t.test('publishInTransaction: published once the Kysely transaction commits, never when it rolls back', SQLITE_ONLY, async (t) => {
  const { db, bus, seen } = await setup(t)
  await db.transaction().execute(async (trx) => {
    bus.publishInTransaction(trx, { ticketId: 1, change: 'delivery' })
    await insertContact(trx, '+31600000001')
    t.same(seen, [], 'not before the commit')
  })
  t.same(changes(seen), ['1:delivery'], 'after the commit')
  await t.rejects(db.transaction().execute(async (trx) => {
    await insertContact(trx, '+31600000002')
    bus.publishInTransaction(trx, { ticketId: 2, change: 'delivery' })
    throw new Error('rolled back')
  }))
  await db.transaction().execute(async (trx) => { await insertContact(trx, '+31600000003') })
  t.same(changes(seen), ['1:delivery'], 'the rolled-back event never goes out, not even with the next commit')
  t.same(ids(bus.subscribeAfter(seen.length > 0 ? (seen[0] as PersistentEvent).id : '', () => {}).replay), [], 'and is not in the ring')
})

t.test('publishInTransaction in group commit: a unit rolled back to its savepoint publishes nothing, its batch-mates publish after the commit', SQLITE_ONLY, async (t) => {
  const { db, bus, seen } = await setup(t)
  const committer = groupCommitter(db)
  let inBatch: BusEvent[] | null = null
  const results = await Promise.allSettled([
    committer.run(async (unit) => {
      await insertContact(unit, '+31600000011')
      bus.publishInTransaction(unit, { ticketId: 11, change: 'delivery' })
    }),
    committer.run(async (unit) => {
      await insertContact(unit, '+31600000012')
      bus.publishInTransaction(unit, { ticketId: 12, change: 'delivery' })
      throw new Error('this unit fails')
    }),
    committer.run(async (unit) => {
      bus.publishInTransaction(unit, { ticketId: 13, change: 'delivery' })
      await insertContact(unit, '+31600000013')
      inBatch = seen.slice()
    })
  ])
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled'])
  t.same(inBatch, [], 'nothing goes out while the batch is still open')
  t.same(changes(seen), ['11:delivery', '13:delivery'])
  const phones = (await sql<{ v: string }>`select v from probe order by v`.execute(db)).rows.map((r) => r.v)
  t.same(phones, ['+31600000011', '+31600000013'], 'the failed unit\'s write was rolled back with its event')
})

t.test('publishInTransaction in group commit: a batch whose commit fails publishes nothing', SQLITE_ONLY, async (t) => {
  const { db, bus, seen } = await setup(t)
  const committer = groupCommitter(db)
  // A unit that leaves the batch unable to commit: a deferred foreign key is checked at COMMIT.
  const results = await Promise.allSettled([
    committer.run(async (unit) => {
      bus.publishInTransaction(unit, { ticketId: 21, change: 'delivery' })
      await insertContact(unit, '+31600000021')
    }),
    committer.run(async (unit) => {
      bus.publishInTransaction(unit, { ticketId: 22, change: 'delivery' })
      await sql`insert into probe_child (parent) values (999999)`.execute(unit)
    })
  ])
  t.same(results.map((r) => r.status), ['rejected', 'rejected'], 'the commit failed for the whole batch')
  t.same(seen, [])
})
