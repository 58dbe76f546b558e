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

t.test('a page rendered by instance A opens its stream on instance B (round-robin, no sticky sessions): B replays what it received since, no reload', ONLY, async (t) => {
  const clock = new FakeClock()
  const a = await buildTestApp(t, { clock })
  const b = await buildTestApp(t, { databaseUrl: a.databaseUrl, clock })
  const early = [next(a.services.events, (e) => e.name === 'ticket' && e.data.ticketId === 50), next(b.services.events, (e) => e.name === 'ticket' && e.data.ticketId === 50)]
  a.services.events.publish({ ticketId: 50, change: 'message' })
  // Both rings stamp 50 with the time it arrived: both, before the clock moves on.
  await Promise.all(early)
  clock.advance(60_000)
  const rendered = a.services.events.lastId()
  t.match(rendered, /^\d+\.\d+$/, 'a ring id and when')
  // Published after the render, through A, before the page connects to B.
  const onB = next(b.services.events, (e) => e.name === 'ticket' && e.data.ticketId === 51)
  a.services.events.publish({ ticketId: 51, change: 'status' })
  await onB
  const live: BusEvent[] = []
  const { replay, unsubscribe } = b.services.events.subscribeAfter(rendered, (e) => live.push(e))
  t.teardown(unsubscribe)
  t.equal(replay.ok, true, 'no reload')
  const replayed = replay.ok ? replay.events.map((e) => e.data.ticketId) : []
  t.same(replayed, [51], 'what B received since the render (less the margin), not what came a minute before')
  // Awaited on both: A's ring must hold 52 before A is asked to replay it below.
  const later = [next(b.services.events, (e) => e.name === 'ticket' && e.data.ticketId === 52), next(a.services.events, (e) => e.name === 'ticket' && e.data.ticketId === 52)]
  void b.services.events.publish({ ticketId: 52, change: 'note' })
  await Promise.all(later)
  t.same(live.filter((e) => e.name === 'ticket').map((e) => e.name === 'ticket' ? e.data.ticketId : null), [52], 'then live')

  // And back: an id B gave, presented to A, which received the same notifications in the same order.
  const fromB = (live[0] as { id: string }).id
  const back = a.services.events.subscribeAfter(fromB, () => {})
  t.teardown(back.unsubscribe)
  t.same(back.replay.ok ? back.replay.events.map((e) => e.data.ticketId) : 'reload', [51, 52], 'A replays from the margin before it: 52 again, harmless; nothing missed')
})

t.test('a resume point from another instance gets reload when this one was not listening then, or its ring dropped part of the span', ONLY, async (t) => {
  const clockA = new FakeClock('2026-01-01T09:00:00.000Z')
  const a = await buildTestApp(t, { clock: clockA })
  const rendered = a.services.events.lastId()
  // B started listening 10 s after A rendered: what happened between, B cannot know.
  const b = await buildTestApp(t, { databaseUrl: a.databaseUrl, clock: new FakeClock('2026-01-01T09:00:10.000Z') })
  t.same(b.services.events.subscribeAfter(rendered, () => {}).replay, { ok: false }, 'older than B\'s listening')
  // C keeps 10 events: 11 arrive after A's next render, so C has dropped one of them.
  const clockC = new FakeClock('2026-01-01T08:59:00.000Z')
  const c = await buildTestApp(t, { databaseUrl: a.databaseUrl, clock: clockC, env: { EVENT_REPLAY_MAX: '10' } })
  clockA.advance(60_000)
  clockC.advance(120_000)
  const later = a.services.events.lastId()
  const last = next(c.services.events, (e) => e.name === 'ticket' && e.data.ticketId === 11)
  for (let i = 1; i <= 11; i++) a.services.events.publish({ ticketId: i, change: 'message' })
  await last
  t.same(c.services.events.subscribeAfter(later, () => {}).replay, { ok: false }, 'C\'s ring of 10 dropped the first of 11')
  for (const bad of ['abc', '1.2.3', '.5', '5.', '0.1', '1'.repeat(19) + '.1']) {
    t.same(c.services.events.subscribeAfter(bad, () => {}).replay, { ok: false }, `${JSON.stringify(bad)}: reload`)
  }
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
