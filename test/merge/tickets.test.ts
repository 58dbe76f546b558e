import t, { type Test } from 'tap'
import { eventsDelivered, isMarker } from '../helper.js'
import { FORM, HTML, setup } from '../contacts/helpers.js'
import { findConversation } from '../../src/tickets/conversations.js'
import { countersMatchRecount, messageIds } from './helpers.js'

const PHONE = '+31612345678'
const OTHER = '+31687654321'

// Merging a ticket into another ticket of the same customer, at the HTTP edge: the real app, a
// database of its own, customers texting through the webhook, an agent signed in as a browser is.

/** A customer with two tickets: the first closed (with a note), the second open. */
async function twoTickets (t: Test, s: Awaited<ReturnType<typeof setup>>) {
  const { ada, text, post } = s
  const first = await text(PHONE, 'My parcel never came')
  t.equal((await post(ada, `/tickets/${first}/notes`, { body: 'Checked the courier: lost.' })).statusCode, 303)
  t.equal((await post(ada, `/tickets/${first}/status`, { status: 'closed' })).statusCode, 303)
  const second = await text(PHONE, 'Still nothing, any news?')
  t.not(second, first, 'a text after the close opens a second ticket')
  return { first, second }
}

t.test('merging a ticket moves its messages, notes and timeline; the old number leads to the target everywhere', async (t) => {
  const s = await setup(t)
  const { ada, db, post, get, text, services, clock } = s
  const { first, second } = await twoTickets(t, s)
  await s.flush()
  await countersMatchRecount(t, db, 'before')
  const before = await messageIds(db)
  const notesBefore = await db.selectFrom('notes').select(['id', 'ticket_id']).execute()
  await eventsDelivered(services.events)
  const published: unknown[] = []
  services.events.subscribe((e) => { if (e.name === 'ticket' && !isMarker(e)) published.push(e.data) })

  const page = await get(ada, `/tickets/${second}`)
  t.match(page.body, new RegExp(`<form method="post" action="/tickets/${second}/merge"`), 'the ticket page has the merge form')
  t.match(page.body, new RegExp(`<option value="${first}">#${first} \\(closed`), 'the customer\'s other ticket is offered')

  clock.advance(60_000)
  // The open ticket into the closed one: the closed one takes over its status and its messages.
  const res = await post(ada, `/tickets/${second}/merge`, { into: String(first) })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, `/tickets/${first}?merged=${second}`)

  const after = await messageIds(db)
  t.equal(after.total, before.total, 'no message lost or duplicated')
  t.same(after.byTicket[first], [...before.byTicket[first], ...before.byTicket[second]].sort(), 'every message is on the target')
  t.equal(after.byTicket[second], undefined, 'none left on the merged ticket')
  t.same((await db.selectFrom('notes').select('ticket_id').execute()).map((n) => n.ticket_id), notesBefore.map(() => first), 'the note moved')

  const [merged, target] = await Promise.all([second, first].map(async (id) => await db.selectFrom('tickets').selectAll().where('id', '=', id).executeTakeFirstOrThrow()))
  t.equal(merged.merged_into, first)
  t.equal(merged.status, 'closed')
  t.equal(target.status, 'open', 'the closed target took over the open ticket\'s work')
  t.equal(target.message_count, after.byTicket[first].length, 'the target counts every message')
  t.equal(target.last_message_preview, 'Still nothing, any news?', 'the newest message is the preview')
  await countersMatchRecount(t, db, 'after the merge')

  const open = await get(ada, '/inbox/list?view=open')
  t.match(open.body, new RegExp(`data-ticket-id="${first}"`))
  t.notMatch(open.body, new RegExp(`data-ticket-id="${second}"`), 'the merged ticket is in no open view')
  const closed = await get(ada, '/inbox/list?view=closed')
  t.notMatch(closed.body, new RegExp(`data-ticket-id="${second}"`), 'nor in the closed view')

  const old = await get(ada, `/tickets/${second}`)
  t.equal(old.statusCode, 303, 'the old address redirects')
  t.equal(old.headers.location, `/tickets/${first}?merged=${second}`)
  const shown = await get(ada, `/tickets/${first}?merged=${second}`)
  t.match(shown.body, new RegExp(`Ticket #${second} was merged into #${first}`))
  t.match(shown.body, new RegExp(`Ada Lovelace merged #${second} into this ticket`), 'recorded in the target\'s timeline')
  t.match(shown.body, /Checked the courier: lost\./, 'the note is on the target')
  t.match(shown.body, /Still nothing, any news\?/)
  const events = await db.selectFrom('ticket_events').select(['ticket_id', 'kind', 'agent_id', 'other_ticket_id', 'created_at']).where('kind', 'in', ['merged_into', 'merged_from']).orderBy('id').execute()
  t.same(events, [
    { ticket_id: second, kind: 'merged_into', agent_id: ada.id, other_ticket_id: first, created_at: clock.now().toISOString() },
    { ticket_id: first, kind: 'merged_from', agent_id: ada.id, other_ticket_id: second, created_at: clock.now().toISOString() }
  ], 'who and when, on both tickets')
  await eventsDelivered(services.events)
  t.same(published.filter((e) => (e as { change: string }).change !== 'read'), [{ ticketId: second, change: 'status' }, { ticketId: first, change: 'status' }], 'a live event for both tickets after commit')

  const profile = await get(ada, `/contacts/${merged.contact_id}`)
  t.match(profile.body, new RegExp(`Merged into <a href="/tickets/${first}">#${first}</a>`), 'the profile shows the old ticket as merged')

  // The customer names the old number: the text joins the ticket it went into.
  const joined = await text(PHONE, `#${second} any update?`)
  t.equal(joined, first, '#old finds the new ticket')
  const ref = await db.selectFrom('messages').select(['ref_ticket_id', 'body']).where('body', '=', 'any update?').executeTakeFirstOrThrow()
  t.equal(ref.ref_ticket_id, first)
  // Search by the old reference finds the ticket it went into.
  const found = await get(ada, `/inbox?q=%23${second}`)
  t.match(found.body, new RegExp(`href="/tickets/${first}`), 'searching #old finds the new ticket')
  await countersMatchRecount(t, db, 'after a text to #old')
})

t.test('bad merges are refused with a clear reason and change nothing', async (t) => {
  const s = await setup(t)
  const { ada, db, post, text } = s
  const { first, second } = await twoTickets(t, s)
  const strangers = await text(OTHER, 'Hello, I am someone else')
  await s.flush()
  const before = await messageIds(db)
  const ticketsBefore = await db.selectFrom('tickets').selectAll().orderBy('id').execute()

  const self = await post(ada, `/tickets/${second}/merge`, { into: String(second) })
  t.equal(self.statusCode, 422)
  t.match(self.body, /A ticket cannot be merged into itself/)
  t.match(self.body, /id="merge-error"/, 'the ticket page again, with the reason at the form')

  const foreign = await post(ada, `/tickets/${second}/merge`, { into: String(strangers) })
  t.equal(foreign.statusCode, 422)
  t.match(foreign.body, new RegExp(`Ticket #${strangers} belongs to another customer`))

  const missing = await post(ada, '/tickets/99999/merge', { into: String(first) })
  t.equal(missing.statusCode, 404)
  t.match(missing.body, /There is no ticket #99999/)
  const missingTarget = await post(ada, `/tickets/${second}/merge`, { into: '99999' })
  t.equal(missingTarget.statusCode, 404)
  t.match(missingTarget.body, /There is no ticket #99999 to merge into/)
  const words = await post(ada, `/tickets/${second}/merge`, { into: 'the other one' })
  t.equal(words.statusCode, 422)
  t.match(words.body, /Choose the ticket to merge this one into/)
  const json = await ada.inject({ method: 'POST', url: `/tickets/${second}/merge`, headers: FORM, payload: `into=${second}` })
  t.equal(json.statusCode, 422)
  t.equal(json.json().error, 'VALIDATION_FAILED')

  t.same(await messageIds(db), before, 'no message moved')
  t.same(await db.selectFrom('tickets').selectAll().orderBy('id').execute(), ticketsBefore, 'no ticket changed')
  await countersMatchRecount(t, db, 'after refusals')

  // A merged ticket is neither a target nor a source again, and its stale page cannot change it.
  t.equal((await post(ada, `/tickets/${second}/merge`, { into: String(first) })).statusCode, 303)
  const third = await text(PHONE, '#999 unrelated')
  t.equal(third, first, 'the customer\'s open ticket is the target now')
  const intoMerged = await post(ada, `/tickets/${first}/merge`, { into: String(second) })
  t.equal(intoMerged.statusCode, 422)
  t.match(intoMerged.body, new RegExp(`Ticket #${second} was itself merged into #${first}`))
  const reply = await post(ada, `/tickets/${second}/replies`, { body: 'Hello?' })
  t.equal(reply.statusCode, 409, 'a reply from a stale page of the merged ticket is refused')
  await t.rejects(s.services.tickets.reply(second, 'Hello?', ada.id), new RegExp(`Ticket #${second} was merged into #${first}; nothing was changed here`))
  t.equal((await db.selectFrom('messages').select('id').where('body', '=', 'Hello?').execute()).length, 0, 'and not stored')
  const note = await post(ada, `/tickets/${second}/notes`, { body: 'late note' })
  t.equal(note.statusCode, 409)
  const reopen = await post(ada, `/tickets/${second}/status`, { status: 'open' })
  t.equal(reopen.statusCode, 409, 'a merged ticket cannot be reopened')
  const assign = await post(ada, `/tickets/${second}/assign`, { assignee: 'me' })
  t.equal(assign.statusCode, 409)
  await countersMatchRecount(t, db, 'after attempts on the merged ticket')
})

t.test('a double submit merges once; two merges of the same pair in opposite directions: one wins', async (t) => {
  const s = await setup(t)
  const { ada, db, post } = s
  const { first, second } = await twoTickets(t, s)
  await s.flush()
  const before = await messageIds(db)

  const [a, b] = await Promise.all([
    post(ada, `/tickets/${second}/merge`, { into: String(first) }),
    post(ada, `/tickets/${second}/merge`, { into: String(first) })
  ])
  t.same([a.statusCode, b.statusCode], [303, 303], 'both land on the target')
  const after = await messageIds(db)
  t.equal(after.total, before.total)
  t.equal(after.byTicket[first].length, before.byTicket[first].length + before.byTicket[second].length, 'moved once')
  const target = await db.selectFrom('tickets').select('message_count').where('id', '=', first).executeTakeFirstOrThrow()
  t.equal(target.message_count, after.byTicket[first].length, 'counted once')
  const events = await db.selectFrom('ticket_events').select('kind').where('kind', 'in', ['merged_into', 'merged_from']).execute()
  t.equal(events.length, 2, 'one merge recorded')
  await countersMatchRecount(t, db, 'after a double submit')

  // Opposite directions at once: the loser is refused, never a ticket merged into its own merged ticket.
  const s2 = await setup(t)
  const pair = await twoTickets(t, s2)
  const [x, y] = await Promise.all([
    s2.post(s2.ada, `/tickets/${pair.first}/merge`, { into: String(pair.second) }),
    s2.post(s2.ada, `/tickets/${pair.second}/merge`, { into: String(pair.first) })
  ])
  t.same([x.statusCode, y.statusCode].sort(), [303, 422], 'one merged, the other refused')
  const merged = await s2.db.selectFrom('tickets').select(['id', 'merged_into']).where('merged_into', 'is not', null).execute()
  t.equal(merged.length, 1, 'exactly one ticket merged')
  await countersMatchRecount(t, s2.db, 'after opposite merges')
})

t.test('merging needs a signed-in agent and the form\'s CSRF token', async (t) => {
  const s = await setup(t)
  const { first, second } = await twoTickets(t, s)
  const anonymous = await s.app.inject({ method: 'POST', url: `/tickets/${second}/merge`, headers: { ...FORM, ...HTML }, payload: `into=${first}` })
  t.not(anonymous.statusCode, 303)
  const noToken = await s.ada.inject({ method: 'POST', url: `/tickets/${second}/merge`, headers: { ...FORM, ...HTML, 'x-csrf-token': '' }, payload: `into=${first}` })
  t.equal(noToken.statusCode, 403)
  t.equal((await s.db.selectFrom('tickets').select('merged_into').where('id', '=', second).executeTakeFirstOrThrow()).merged_into, null, 'nothing merged')
})

t.test('a text whose transaction read the ticket just before a merge committed is stored on the ticket it was merged into', async (t) => {
  const s = await setup(t)
  const { ada, db, post, text, services } = s
  const { first, second } = await twoTickets(t, s)
  // The webhook's read of the customer's open ticket (the second) happens before the merge
  // commits; on PostgreSQL its text then waits for the merge's lock and finds the ticket merged.
  const stale = await findConversation(db, PHONE)
  t.equal(stale?.openTicketId, second)
  const lookUp = services.tickets.lookUpSender
  let reads = 0
  services.tickets.lookUpSender = async (trx, number) => reads++ === 0 ? stale : await lookUp(trx, number)
  t.teardown(() => { services.tickets.lookUpSender = lookUp })
  t.equal((await post(ada, `/tickets/${second}/merge`, { into: String(first) })).statusCode, 303)

  const landed = await text(PHONE, 'Hello? Anyone?')
  t.equal(landed, first, 'the webhook answers with the ticket it was merged into')
  t.equal(reads, 2, 'the unit ran again after finding its ticket merged')
  const onMerged = await db.selectFrom('messages').select('body').where('ticket_id', '=', second).execute()
  t.same(onMerged, [], 'nothing is left on the merged ticket, which no view shows')
  const last = await db.selectFrom('tickets').select(['last_message_preview', 'message_count']).where('id', '=', first).executeTakeFirstOrThrow()
  t.equal(last.last_message_preview, 'Hello? Anyone?')
  t.equal(last.message_count, (await db.selectFrom('messages').select('id').where('ticket_id', '=', first).execute()).length, 'counted once, on the target')
  await countersMatchRecount(t, db, 'after the text')
})
