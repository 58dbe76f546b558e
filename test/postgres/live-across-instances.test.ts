import { sql } from 'kysely'
import t, { type Test } from 'tap'
import type { BusEvent } from '../../src/events/bus.js'
import { PostgresEventBus } from '../../src/events/postgres.js'
import { buildTestApp, FakeClock, form, postgresOnly } from '../helper.js'

const ONLY = postgresOnly('live events between instances travel through LISTEN/NOTIFY')

/** Resolves with the first event `bus` delivers that `match` accepts. */
function next (bus: { subscribe: (fn: (e: BusEvent) => void) => () => void }, match: (e: BusEvent) => boolean): Promise<BusEvent> {
  return new Promise((resolve) => {
    const off = bus.subscribe((e) => {
      if (!match(e)) return
      off()
      resolve(e)
    })
  })
}

async function twoInstances (t: Test) {
  const a = await buildTestApp(t)
  const b = await buildTestApp(t, { databaseUrl: a.databaseUrl })
  return { a, b }
}

t.test('a text that arrives on instance A reaches the pages of instance B, once, after its commit', ONLY, async (t) => {
  const { a, b } = await twoInstances(t)
  const onB = next(b.services.events, (e) => e.name === 'ticket' && e.data.change === 'created')
  const onA = next(a.services.events, (e) => e.name === 'ticket' && e.data.change === 'created')
  const started = Date.now()
  const res = await a.app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ originator: '31612345678', payload: 'Hello from A', id: 'mb-1' }) })
  t.equal(res.statusCode, 200)
  const [eb, ea] = await Promise.all([onB, onA])
  t.comment(`delivered to B ${Date.now() - started} ms after the request began`)
  const ticket = await b.db.selectFrom('tickets').select('id').executeTakeFirstOrThrow()
  t.match(eb, { name: 'ticket', data: { ticketId: ticket.id, change: 'created' }, audience: null })
  t.match(ea, { name: 'ticket', data: { ticketId: ticket.id, change: 'created' } }, 'A hears its own NOTIFY too: one path for every instance')
})

t.test('a change published inside a transaction that rolls back is never announced; one that commits is', ONLY, async (t) => {
  const { a, b } = await twoInstances(t)
  const seen: BusEvent[] = []
  b.services.events.subscribe((e) => seen.push(e))
  await a.db.transaction().execute(async (trx) => {
    await a.services.events.publishInTransaction(trx, { ticketId: 41, change: 'status' })
    throw new Error('rolled back on purpose')
  }).catch(() => {})
  const committed = next(b.services.events, (e) => e.name === 'ticket' && e.data.ticketId === 42)
  await a.db.transaction().execute(async (trx) => {
    await a.services.events.publishInTransaction(trx, { ticketId: 42, change: 'status' })
  })
  await committed
  // NOTIFYs from one session arrive in commit order: 42 came, so 41 would have come before it.
  t.same(seen.filter((e) => e.name === 'ticket').map((e) => e.name === 'ticket' ? e.data.ticketId : null), [42])
})

t.test('an agent-only event (unread marks) keeps its audience across instances', ONLY, async (t) => {
  const { a, b } = await twoInstances(t)
  const got = next(b.services.events, (e) => e.name === 'ticket' && e.data.change === 'read')
  a.services.events.publish({ ticketId: 7, change: 'read' }, { audience: 3 })
  t.match(await got, { audience: 3 })
})

t.test('when the LISTEN connection drops, the instance reconnects and tells every open page to reload (what it missed is unknown)', ONLY, async (t) => {
  const a = await buildTestApp(t, { clock: new FakeClock() })
  const bus = new PostgresEventBus({ db: a.db, clock: a.clock, config: a.config.database as never, replayMax: 100, replayMinutes: 10, retryMs: 10 })
  t.teardown(async () => await bus.close())
  await bus.ready()
  bus.publish({ ticketId: 1, change: 'message' })
  await next(bus, (e) => e.name === 'ticket')
  const before = bus.lastId()
  const reload = next(bus, (e) => e.name === 'reload')
  const killed = await sql<{ n: number }>`select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where datname = current_database() and query = ${'listen textdesk_events'} and pid <> pg_backend_pid()`.execute(a.db)
  t.ok(killed.rows[0].n >= 1, 'the LISTEN connections were terminated')
  t.match(await reload, { name: 'reload', audience: null })
  t.same(bus.subscribeAfter(before, () => {}).replay, { ok: false }, 'an id from before the gap gets reload, not a replay with a hole')
  const after = next(bus, (e) => e.name === 'ticket' && e.data.ticketId === 2)
  bus.publish({ ticketId: 2, change: 'message' })
  await after
  t.pass('events flow again after the reconnect')
})

t.test('presence is shared: an agent viewing a ticket through instance A is seen by pages on instance B, and announced there once', ONLY, async (t) => {
  const { a, b } = await twoInstances(t)
  const seenOnB: BusEvent[] = []
  b.services.events.subscribe((e) => { if (e.name === 'presence') seenOnB.push(e) })
  const onB = next(b.services.events, (e) => e.name === 'presence' && e.data.viewers.length === 1)
  a.services.presence.report(5, { id: 9, name: 'Bo' }, 'typing')
  t.match(await onB, { data: { ticketId: 5, viewers: [{ agentId: 9, name: 'Bo', typing: true }] } })
  t.match(b.services.presence.viewers(5), [{ agentId: 9, typing: true }], "B's board knows A's viewer")
  const leftOnA = next(a.services.events, (e) => e.name === 'presence' && e.data.viewers.length === 0)
  const leftOnB = next(b.services.events, (e) => e.name === 'presence' && e.data.viewers.length === 0)
  b.services.presence.report(5, { id: 9, name: 'Bo' }, 'left')
  await Promise.all([leftOnA, leftOnB])
  t.same(a.services.presence.viewers(5), [])
  t.equal(seenOnB.length, 2, 'B announced each change once (not once per instance)')
})
