import t, { type Test } from 'tap'
import type { BusEvent, PresenceEventData } from '../../src/events/bus.js'
import { InProcessEventBus } from '../../src/events/in-process.js'
import { InProcessPresenceBoard, TYPING_TTL_MS, VIEWING_TTL_MS } from '../../src/events/in-process-presence.js'
import { FakeClock, freshDatabase } from '../helper.js'

const ada = { id: 1, name: 'Ada' }
const bo = { id: 2, name: 'Bo' }

async function setup (t: Test) {
  const { db } = await freshDatabase(t)
  t.teardown(async () => await db.destroy())
  const clock = new FakeClock()
  const events = new InProcessEventBus({ db, clock, replayMax: 100, replayMinutes: 10 })
  const board = new InProcessPresenceBoard({ clock, events })
  const sent: PresenceEventData[] = []
  events.subscribe((e: BusEvent) => { if (e.name === 'presence') sent.push(e.data) })
  return { clock, events, board, sent }
}

const said = (sent: PresenceEventData[]): string[] => sent.map((d) => `${d.ticketId}: ${d.viewers.map((v) => v.name + (v.typing ? ' typing' : '')).join(', ') || 'nobody'}`)

t.test('viewing, typing and left are broadcast as ephemeral events, only when the viewers change', async (t) => {
  const { board, events, sent } = await setup(t)
  const lastId = events.lastId()
  board.report(5, bo, 'viewing')
  board.report(5, bo, 'viewing')
  board.report(5, ada, 'viewing')
  board.report(5, bo, 'typing')
  board.report(5, bo, 'typing')
  board.report(5, bo, 'left')
  board.report(5, bo, 'left')
  t.same(said(sent), ['5: Bo', '5: Ada, Bo', '5: Ada, Bo typing', '5: Ada'], 'a repeated report says nothing new')
  t.same(board.viewers(5), [{ agentId: 1, name: 'Ada', typing: false }])
  t.equal(events.lastId(), lastId, 'presence takes no event id and is not replayed')
})

t.test('viewing expires 45 s after the last report; the sweep broadcasts it so other agents\' pages learn it', async (t) => {
  const { board, clock, sent } = await setup(t)
  board.report(5, bo, 'viewing')
  board.report(5, ada, 'viewing')
  clock.advance(20_000)
  board.report(5, ada, 'viewing')
  clock.advance(VIEWING_TTL_MS - 20_000 - 1)
  board.sweep()
  t.same(board.viewers(5).map((v) => v.name), ['Ada', 'Bo'], 'just under 45 s: still there')
  t.equal(sent.length, 2)
  clock.advance(1)
  t.same(board.viewers(5).map((v) => v.name), ['Ada'], 'at 45 s Bo is gone from what the page renders')
  board.sweep()
  t.same(said(sent).slice(2), ['5: Ada'], 'and the sweep tells everyone')
  board.sweep()
  t.equal(sent.length, 3, 'once')
  clock.advance(20_000)
  board.sweep()
  t.same(said(sent).slice(3), ['5: nobody'], 'Ada expires too: an empty list goes out')
  board.sweep()
  t.equal(sent.length, 4)
})

t.test('typing ends 6 s after the last typing report, while viewing goes on', async (t) => {
  const { board, clock, sent } = await setup(t)
  board.report(7, bo, 'typing')
  clock.advance(3_000)
  board.report(7, bo, 'typing')
  clock.advance(TYPING_TTL_MS - 1)
  board.sweep()
  t.same(board.viewers(7), [{ agentId: 2, name: 'Bo', typing: true }])
  clock.advance(1)
  t.same(board.viewers(7), [{ agentId: 2, name: 'Bo', typing: false }])
  board.sweep()
  t.same(said(sent), ['7: Bo typing', '7: Bo'])
  board.report(7, bo, 'viewing')
  t.equal(sent.length, 2, 'a viewing report after typing ended changes nothing')
})

t.test('a report after an unswept expiry is still announced as a change', async (t) => {
  const { board, clock, sent } = await setup(t)
  board.report(3, bo, 'viewing')
  clock.advance(VIEWING_TTL_MS)
  t.same(board.viewers(3), [], 'rendering the page does not announce anything itself')
  board.report(3, bo, 'viewing')
  t.same(said(sent), ['3: Bo'], 'Bo came back before any sweep: the board said "Bo" last, and says it still')
  board.report(3, ada, 'viewing')
  t.same(said(sent), ['3: Bo', '3: Ada, Bo'])
})

t.test('tickets are separate, and a ticket nobody views leaves nothing behind', async (t) => {
  const { board, clock, sent } = await setup(t)
  board.report(1, ada, 'viewing')
  board.report(2, bo, 'viewing')
  board.report(1, ada, 'left')
  t.same(said(sent), ['1: Ada', '2: Bo', '1: nobody'])
  clock.advance(VIEWING_TTL_MS)
  board.sweep()
  t.same(said(sent).slice(3), ['2: nobody'])
  t.same(board.viewers(1), [])
  t.same(board.viewers(2), [])
  board.report(9, ada, 'left')
  t.equal(sent.length, 4, 'leaving a ticket one never viewed says nothing')
})
