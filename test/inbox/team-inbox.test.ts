import t, { type Test } from 'tap'
import { FAST_HASH_ENV, signedInAgent, type AgentSession } from '../auth/agent-session.js'
import { apiClient } from '../api/api-helpers.js'
import { buildTestApp, eventsDelivered, FakeClock, form, isMarker } from '../helper.js'
import type { TicketEventData } from '../../src/events/bus.js'

// The team inbox at the HTTP edge: two signed-in agents (Ada and Bo), customers texting through
// the webhook, every action through the same forms the pages post.

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const HTML = { accept: 'text/html' }
type Built = Awaited<ReturnType<typeof buildTestApp>>
type Agent = AgentSession & { id: number, name: string }

async function setup (t: Test, env: Record<string, string> = {}) {
  const clock = new FakeClock()
  const built = await buildTestApp(t, { clock, env: { ...FAST_HASH_ENV, ...env } })
  const ada = await signedInAgent(built.app, { email: 'ada@example.com', name: 'Ada Lovelace' })
  const bo = await signedInAgent(built.app, { email: 'bo@example.com', name: 'Bo Jensen' })
  const published: TicketEventData[] = []
  built.services.events.subscribe((e) => { if (e.name === 'ticket' && !isMarker(e)) published.push(e.data) })
  let n = 0
  const text = async (from: string, body: string): Promise<number> => {
    const res = await built.app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: from, payload: body, id: `in-${++n}` }) })
    if (res.statusCode !== 200) throw new Error(`webhook answered ${res.statusCode}`)
    return res.json().ticket_id as number
  }
  // What was published so far, once it has arrived (through NOTIFY on PostgreSQL).
  const delivered = async (): Promise<TicketEventData[]> => { await eventsDelivered(built.services.events); return published }
  return { ...built, clock, ada, bo, text, published, delivered }
}

const post = async (agent: Agent, url: string, fields: Record<string, string>) =>
  await agent.inject({ method: 'POST', url, headers: { ...FORM, ...HTML }, payload: form(fields) })
const get = async (agent: Agent, url: string) => await agent.inject({ method: 'GET', url, headers: HTML })
const rowIds = (html: string) => [...html.matchAll(/class="ticket-row[^"]*" data-ticket-id="(\d+)"/g)].map((m) => Number(m[1]))
const timelineTexts = (html: string) => [...html.matchAll(/<li class="event" data-item-id="event-\d+">([^<]*) ·/g)].map((m) => m[1])

/** Every view's list, paged to the end, must hold exactly as many tickets as its count says. */
async function countsMatchLists (t: Test, built: Built, agent: Agent): Promise<void> {
  const counts = (await agent.inject({ method: 'GET', url: '/inbox/counts' })).json() as Record<string, number>
  for (const view of ['mine', 'unassigned', 'open', 'pending', 'closed']) {
    let ids: number[] = []
    let url: string | null = `/inbox/list?view=${view}`
    while (url !== null) {
      const res = await agent.inject({ method: 'GET', url })
      ids = ids.concat(rowIds(res.body))
      const next = /href="\/inbox\?view=\w+&amp;cursor=([^"]+)" rel="next"/.exec(res.body)?.[1]
      url = next === undefined ? null : `/inbox/list?view=${view}&cursor=${next}`
    }
    t.equal(counts[view], ids.length, `${agent.name}: ${view} count matches its list`)
  }
  // And the counters match a full count of the table.
  const { db } = built
  const exact = async (status: string, assignee?: number | null) => {
    let q = db.selectFrom('tickets').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '=', status as 'open')
    if (assignee !== undefined) q = q.where('assignee_id', assignee === null ? 'is' : '=', assignee)
    return Number((await q.executeTakeFirstOrThrow()).n)
  }
  t.same(
    { mine: counts.mine, unassigned: counts.unassigned, open: counts.open, pending: counts.pending, closed: counts.closed },
    { mine: await exact('open', agent.id), unassigned: await exact('open', null), open: await exact('open'), pending: await exact('pending'), closed: await exact('closed') },
    'the counters equal a COUNT over the tickets table')
}

t.test('views, counts and the default view; counts always match the lists', async (t) => {
  const s = await setup(t, { INBOX_PAGE_SIZE: '2' })
  const { ada, bo, text } = s
  const [t1, t2, t3, t4] = [await text('31600000001', 'one'), await text('31600000002', 'two'), await text('31600000003', 'three'), await text('31600000004', 'four')]
  const landing = await get(ada, '/inbox')
  t.equal(landing.statusCode, 303)
  t.equal(landing.headers.location, '/inbox?view=unassigned', 'nothing of mine yet, unassigned work exists')
  t.equal((await post(ada, `/tickets/${t1}/assign`, { assignee: 'me' })).statusCode, 303)
  t.equal((await post(ada, `/tickets/${t2}/assign`, { assignee: String(bo.id) })).statusCode, 303)
  t.equal((await post(bo, `/tickets/${t3}/status`, { status: 'pending' })).statusCode, 303)
  t.equal((await post(bo, `/tickets/${t4}/status`, { status: 'closed' })).statusCode, 303)
  t.equal((await get(ada, '/inbox')).headers.location, '/inbox?view=mine')
  t.same((await ada.inject({ method: 'GET', url: '/inbox/counts' })).json(), { mine: 1, unassigned: 0, open: 2, pending: 1, closed: 1, unread: 1 })
  t.same((await bo.inject({ method: 'GET', url: '/inbox/counts' })).json(), { mine: 1, unassigned: 0, open: 2, pending: 1, closed: 1, unread: 1 })
  t.equal((await get(bo, '/inbox')).headers.location, '/inbox?view=mine')

  const mine = await get(ada, '/inbox?view=mine')
  t.same(rowIds(mine.body), [t1])
  t.match(mine.body, /<span class="count" data-count-for="open">2<\/span>/)
  t.match(mine.body, /<nav class="views"[\s\S]*class="view-counts"/)
  t.match(mine.body, /<div class="workspace">\s*<div class="pane-list">/)
  t.match(mine.body, /Pick a ticket/)
  t.same(rowIds((await get(ada, '/inbox?view=open')).body), [t2, t1], 'newest activity first')
  t.same(rowIds((await get(ada, '/inbox?view=pending')).body), [t3])
  t.same(rowIds((await get(ada, '/inbox?view=closed')).body), [t4])
  const noView = await get(ada, '/inbox?view=everything')
  t.equal(noView.statusCode, 404)
  t.match(noView.body, /There is no inbox view &quot;everything&quot;/)

  for (let i = 0; i < 5; i++) await text(`3161000000${i}`, `more ${i}`)
  await post(bo, `/tickets/${t1}/assign`, { assignee: 'none' })
  await post(ada, `/tickets/${t4}/status`, { status: 'open' })
  await countsMatchLists(t, s, ada)
  await countsMatchLists(t, s, bo)
})

t.test('list columns: customer, sender of the last message, assignee, status, waiting time, unread', async (t) => {
  const { ada, bo, text, clock, services } = await setup(t)
  const id = await text('31600000001', 'Where is my parcel?')
  await services.db.updateTable('contacts').set({ name: 'Grace Hopper' }).execute()
  clock.advance(120_000)
  let list = await ada.inject({ method: 'GET', url: '/inbox/list?view=open' })
  t.equal(list.headers['cache-control'], 'no-store')
  t.match(list.body, /<section id="ticket-list"/)
  t.match(list.body, /class="ticket-row unread" data-ticket-id="1"/)
  t.match(list.body, />Grace Hopper<\/a>/, 'the customer\'s name once known')
  t.match(list.body, /<td class="preview">Where is my parcel\?<\/td>/, 'the customer\'s own words carry no sender label')
  t.match(list.body, /<td class="waiting"><time datetime="2026-01-01T09:00:00.000Z">2m<\/time>/)
  t.notMatch(list.body, /<th>Messages<\/th>/, 'no message count (it counted the automatic confirmation)')
  await post(bo, `/tickets/${id}/replies`, { body: 'On its way' })
  list = await ada.inject({ method: 'GET', url: '/inbox/list?view=open' })
  t.match(list.body, /<span class="sender">Bo:<\/span> On its way/, 'a colleague\'s reply names them')
  t.match(list.body, /<td class="waiting"><\/td>/, 'answered: no waiting time')
  list = await bo.inject({ method: 'GET', url: '/inbox/list?view=open' })
  t.match(list.body, /<span class="sender">You:<\/span> On its way/)
  await post(ada, `/tickets/${id}/assign`, { assignee: String(bo.id) })
  list = await ada.inject({ method: 'GET', url: '/inbox/list?view=open' })
  t.match(list.body, /<td class="assignee">Bo Jensen/)
  t.match(list.body, /<span class="badge open">Open<\/span>/)
})

t.test('assignment: me, another agent, nobody; each change in the timeline; bad input refused with the page', async (t) => {
  const { ada, bo, text, delivered } = await setup(t)
  const id = await text('31600000001', 'hello')
  t.equal((await post(ada, `/tickets/${id}/assign`, { assignee: 'me', return_to: '/inbox?view=unassigned' })).headers.location, '/inbox?view=unassigned')
  await post(ada, `/tickets/${id}/assign`, { assignee: String(bo.id) })
  await post(bo, `/tickets/${id}/assign`, { assignee: 'none' })
  const again = await post(bo, `/tickets/${id}/assign`, { assignee: 'none', return_to: 'https://evil.example/' })
  t.equal(again.headers.location, `/tickets/${id}`, 'an unsafe return_to falls back to the ticket')
  const page = await get(ada, `/tickets/${id}`)
  t.same(timelineTexts(page.body), ['Ada Lovelace took this', 'Ada Lovelace assigned this to Bo Jensen', 'Bo Jensen unassigned this'])
  t.same((await delivered()).filter((e) => e.change === 'assigned').map((e) => e.ticketId), [id, id, id], 'one event per change, none for a no-op')
  const unknown = await post(ada, `/tickets/${id}/assign`, { assignee: '999' })
  t.equal(unknown.statusCode, 422)
  t.match(unknown.body, /There is no active agent with id 999/)
  t.match(unknown.body, /id="timeline"/, 'the ticket page, re-rendered')
  const garbage = await post(ada, `/tickets/${id}/assign`, { assignee: 'everyone' })
  t.equal(garbage.statusCode, 422)
  t.match(garbage.body, /is not someone to assign to/)
  t.equal((await post(ada, '/tickets/999/assign', { assignee: 'me' })).statusCode, 404)
})

t.test('statuses: pending until the customer answers, close, reopen, undo of a close restores status and assignee', async (t) => {
  const { ada, bo, text, clock, db, delivered } = await setup(t, { CLOSE_UNDO_SECONDS: '30' })
  const id = await text('31600000001', 'hello')
  await post(ada, `/tickets/${id}/assign`, { assignee: 'me' })
  await post(ada, `/tickets/${id}/status`, { status: 'pending' })
  t.equal(await text('31600000001', 'still there?'), id, 'the pending ticket gets the text')
  let row = await db.selectFrom('tickets').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
  t.equal(row.status, 'open', 'a customer message makes a pending ticket open')
  await post(ada, `/tickets/${id}/status`, { status: 'pending' })
  await post(bo, `/tickets/${id}/status`, { status: 'closed' })
  let page = await get(ada, `/tickets/${id}`)
  t.match(page.body, /Undo close/)
  clock.advance(10_000)
  t.equal((await post(ada, `/tickets/${id}/status`, { status: 'open', undo: '1' })).statusCode, 303)
  row = await db.selectFrom('tickets').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
  t.same([row.status, row.assignee_id, row.closed_at], ['pending', ada.id, null], 'undo restores pending and Ada')
  await post(bo, `/tickets/${id}/status`, { status: 'closed' })
  clock.advance(31_000)
  page = await get(ada, `/tickets/${id}`)
  t.notMatch(page.body, /Undo close/, 'the undo window has passed')
  await post(ada, `/tickets/${id}/status`, { status: 'open', undo: '1' })
  row = await db.selectFrom('tickets').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
  t.equal(row.status, 'open', 'after the window: a plain reopen')
  page = await get(ada, `/tickets/${id}`)
  t.same(timelineTexts(page.body), [
    'Ada Lovelace took this',
    'Ada Lovelace set this to pending (waiting on the customer)',
    'The customer answered: open again',
    'Ada Lovelace set this to pending (waiting on the customer)',
    'Bo Jensen closed this',
    'Ada Lovelace set this to pending (waiting on the customer)',
    'Bo Jensen closed this',
    'Ada Lovelace reopened this'
  ])
  t.ok((await delivered()).filter((e) => e.change === 'status').length >= 7, 'status changes are published')
  const bad = await post(ada, `/tickets/${id}/status`, { status: 'solved' })
  t.equal(bad.statusCode, 422)
  t.match(bad.body, /&quot;solved&quot; is not a ticket status/)
})

t.test('reopen refused while the customer has a newer open ticket; earlier tickets are linked', async (t) => {
  const { ada, text } = await setup(t)
  const first = await text('31600000001', 'hello')
  await post(ada, `/tickets/${first}/status`, { status: 'closed' })
  const second = await text('31600000001', 'me again')
  t.not(second, first)
  const page = await get(ada, `/tickets/${second}`)
  t.match(page.body, new RegExp(`Earlier tickets of this customer:\\s*<a href="/tickets/${first}">#${first}</a>`))
  const reopen = await post(ada, `/tickets/${first}/status`, { status: 'open' })
  t.equal(reopen.statusCode, 409)
  t.match(reopen.body, new RegExp(`newer ticket #${second} that is not closed`))
})

t.test('REOPEN_WINDOW_HOURS: a text within the window reopens the closed ticket without a new confirmation; later, a new ticket', async (t) => {
  const { ada, text, clock, db } = await setup(t, { REOPEN_WINDOW_HOURS: '2' })
  const id = await text('31600000001', 'hello')
  await post(ada, `/tickets/${id}/assign`, { assignee: 'me' })
  await post(ada, `/tickets/${id}/status`, { status: 'closed' })
  clock.advance(3600_000)
  t.equal(await text('31600000001', 'one more thing'), id, 'reopened')
  const row = await db.selectFrom('tickets').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
  t.same([row.status, row.assignee_id], ['open', ada.id])
  const confirmations = async () => (await db.selectFrom('messages').select('id').where('kind', '=', 'confirmation').execute()).length
  t.equal(await confirmations(), 1, 'no second confirmation')
  t.same((await ada.inject({ method: 'GET', url: '/inbox/counts' })).json(), { mine: 1, unassigned: 0, open: 1, pending: 0, closed: 0, unread: 1 })
  const page = await get(ada, `/tickets/${id}`)
  t.match(page.body, /The customer texted within the reopen window: reopened/)
  await post(ada, `/tickets/${id}/status`, { status: 'closed' })
  clock.advance(3 * 3600_000)
  t.not(await text('31600000001', 'new problem'), id, 'outside the window: a new ticket')
  t.equal(await confirmations(), 2)
})

t.test('a ticket holding only API notifications is pending and previews "API:"; the customer\'s answer opens it', async (t) => {
  const { app, services, ada, text } = await setup(t)
  const api = await apiClient(app, services)
  const res = await api.post('/api/v1/messages', { to: '31612345679', text: 'Your order shipped' })
  t.equal(res.statusCode, 202)
  const id = res.json().ticket_id as number
  t.same((await ada.inject({ method: 'GET', url: '/inbox/counts' })).json(), { mine: 0, unassigned: 0, open: 0, pending: 1, closed: 0, unread: 0 }, 'not open work')
  const list = await ada.inject({ method: 'GET', url: '/inbox/list?view=pending' })
  t.match(list.body, /<span class="sender">API:<\/span> Your order shipped/)
  t.notMatch(list.body, /You:/)
  t.equal(await text('31612345679', 'Thanks! When does it arrive?'), id)
  t.same((await ada.inject({ method: 'GET', url: '/inbox/counts' })).json(), { mine: 0, unassigned: 1, open: 1, pending: 0, closed: 0, unread: 1 })
})

t.test('unread per agent: opening reads it for that agent only; a new customer text or "mark as unread" makes it unread', async (t) => {
  const { ada, bo, text, clock, delivered } = await setup(t)
  const id = await text('31600000001', 'hello')
  const unreadRows = async (agent: Agent) => [...(await agent.inject({ method: 'GET', url: '/inbox/list?view=open' })).body.matchAll(/class="ticket-row unread" data-ticket-id="(\d+)"/g)].map((m) => Number(m[1]))
  t.same(await unreadRows(ada), [id])
  clock.advance(1000)
  await get(ada, `/tickets/${id}`)
  t.same(await unreadRows(ada), [], 'read for Ada')
  t.same(await unreadRows(bo), [id], 'still unread for Bo')
  t.equal((await ada.inject({ method: 'GET', url: '/inbox/counts' })).json().unread, 0)
  t.match((await get(bo, '/inbox?view=open')).body, /<title>\(1\) Open · Textdesk<\/title>/, 'the unread count in the title')
  t.match((await get(ada, '/inbox?view=open')).body, /<title>Open · Textdesk<\/title>/)
  clock.advance(1000)
  await text('31600000001', 'hello?')
  t.same(await unreadRows(ada), [id], 'a newer customer message')
  clock.advance(1000)
  await get(ada, `/tickets/${id}`)
  const marked = await post(ada, `/tickets/${id}/unread`, { return_to: '/inbox?view=open' })
  t.equal(marked.statusCode, 303)
  t.equal(marked.headers.location, '/inbox?view=open')
  t.same(await unreadRows(ada), [id])
  const reads = (await delivered()).filter((e) => e.change === 'read')
  t.ok(reads.length >= 3, 'read changes are published')
})

t.test('reply collision: a colleague\'s newer reply answers 409 with their words, the draft kept and "Send anyway"', async (t) => {
  const { ada, bo, text, clock, db } = await setup(t)
  const id = await text('31600000001', 'Is my order late?')
  const adaPage = await get(ada, `/tickets/${id}`)
  const seen = /name="seen" value="([^"]*)"/.exec(adaPage.body)?.[1] ?? ''
  t.not(seen, '', 'the form carries the newest item the agent has on screen')
  clock.advance(2000)
  t.equal((await post(bo, `/tickets/${id}/replies`, { body: 'Yes, two days late. Sorry!', seen })).statusCode, 303)
  clock.advance(40_000)
  const collided = await post(ada, `/tickets/${id}/replies`, { body: 'Let me check', seen })
  t.equal(collided.statusCode, 409)
  t.match(collided.body, /Bo Jensen replied 40 s ago: “Yes, two days late\. Sorry!”/)
  t.match(collided.body, /<textarea id="reply-body"[^>]*>Let me check<\/textarea>/, 'draft kept')
  t.match(collided.body, /name="confirm_collision" value="1"/)
  t.equal((await db.selectFrom('messages').select('id').where('kind', '=', 'reply').execute()).length, 1, 'nothing sent')
  const anyway = await post(ada, `/tickets/${id}/replies`, { body: 'Let me check', seen, confirm_collision: '1' })
  t.equal(anyway.statusCode, 303)
  t.equal((await db.selectFrom('messages').select('id').where('kind', '=', 'reply').execute()).length, 2)
  const own = await get(ada, `/tickets/${id}`)
  const fresh = /name="seen" value="([^"]*)"/.exec(own.body)?.[1] ?? ''
  t.equal((await post(ada, `/tickets/${id}/replies`, { body: 'Done', seen: fresh })).statusCode, 303, 'nothing newer than what is on screen: no collision')
  t.equal((await post(ada, `/tickets/${id}/replies`, { body: 'And my own reply is no collision', seen: fresh })).statusCode, 303)
})

t.test('composer limits: over 3 parts needs confirm_parts, over the limit is refused, CRLF counts as one character', async (t) => {
  const { ada, text, db } = await setup(t)
  const id = await text('31600000001', 'hi')
  const replies = async () => (await db.selectFrom('messages').select('body').where('kind', '=', 'reply').execute()).map((r) => r.body)
  const fourParts = 'a'.repeat(153 * 3 + 1)
  const asked = await post(ada, `/tickets/${id}/replies`, { body: fourParts })
  t.equal(asked.statusCode, 422)
  t.match(asked.body, /This reply is 4 SMS parts \(GSM-7\)/)
  t.match(asked.body, /name="confirm_parts" value="1"/)
  t.match(asked.body, new RegExp(`>${fourParts}</textarea>`), 'draft kept')
  t.same(await replies(), [])
  t.equal((await post(ada, `/tickets/${id}/replies`, { body: fourParts, confirm_parts: '1' })).statusCode, 303)
  t.same(await replies(), [fourParts])
  const tooLong = await post(ada, `/tickets/${id}/replies`, { body: 'b'.repeat(1601), confirm_parts: '1' })
  t.equal(tooLong.statusCode, 422)
  t.match(tooLong.body, /limit is 1600/)
  const crlf = 'x'.repeat(80) + '\r\n' + 'y'.repeat(79)
  t.equal((await post(ada, `/tickets/${id}/replies`, { body: crlf })).statusCode, 303, '160 characters after CRLF → LF: one part, no confirmation')
  t.equal((await replies())[1], 'x'.repeat(80) + '\n' + 'y'.repeat(79))
  const page = await get(ada, `/tickets/${id}`)
  t.match(page.body, /<textarea id="reply-body" name="body" rows="4" data-sms-counter="reply-counter" data-max-length="1600" data-max-parts-without-confirm="3">/)
  t.notMatch(page.body, /maxlength="1600"/, 'the browser never cuts pasted text')
})

t.test('notes: stored privately, shown in the timeline, validated; the page keeps the draft on refusal', async (t) => {
  const { ada, text, db, delivered } = await setup(t)
  const id = await text('31600000001', 'hi')
  t.equal((await post(ada, `/tickets/${id}/notes`, { body: 'VIP customer\r\nbe nice' })).statusCode, 303)
  const note = await db.selectFrom('notes').selectAll().executeTakeFirstOrThrow()
  t.same([note.ticket_id, note.agent_id, note.body], [id, ada.id, 'VIP customer\nbe nice'])
  const page = await get(ada, `/tickets/${id}`)
  t.match(page.body, new RegExp(`<li class="note" data-item-id="note-${note.id}">\\s*<div class="bubble">VIP customer\\nbe nice</div>`))
  const empty = await post(ada, `/tickets/${id}/notes`, { body: '  ' })
  t.equal(empty.statusCode, 422)
  t.match(empty.body, /The note is empty/)
  const long = await post(ada, `/tickets/${id}/notes`, { body: 'n'.repeat(4001) })
  t.equal(long.statusCode, 422)
  t.match(long.body, /limit is 4000/)
  t.match(long.body, /n{4001}<\/textarea>/)
  t.same((await delivered()).filter((e) => e.change === 'note').map((e) => e.ticketId), [id])
  t.equal((await post(ada, '/tickets/77/notes', { body: 'x' })).statusCode, 404)
})

t.test('page hooks: body data, timeline fragment, presence region, reply and note forms', async (t) => {
  const { ada, bo, text, services } = await setup(t)
  const id = await text('31600000001', 'hi')
  services.presence.report(id, { id: bo.id, name: bo.name }, 'viewing')
  const page = await get(ada, `/tickets/${id}?view=unassigned`)
  t.match(page.body, new RegExp(`<body class="page-ticket" data-agent-id="${ada.id}" data-agent-name="Ada Lovelace" data-last-event-id="[0-9.]+" data-view="unassigned" data-ticket-id="${id}">`))
  t.match(page.body, /<p id="presence" aria-live="polite">Bo Jensen is viewing<\/p>/)
  t.match(page.body, /<span id="live-status" role="status">/)
  t.match(page.body, /<a class="back-to-list" href="\/inbox\?view=unassigned">/)
  t.match(page.body, /<form method="post" action="\/tickets\/1\/notes" class="note">[\s\S]*<textarea id="note-body"/)
  t.match(page.body, /<li class="msg inbound" data-item-id="[0-9a-f-]{36}"[^>]*>/)
  t.match(page.body, /<li class="msg outbound" data-item-id="[0-9a-f-]{36}"[^>]*>/)
  t.notMatch(page.body, /id="timeline" aria-live|id="ticket-list" aria-live/)
  const inbox = await get(ada, '/inbox?view=open')
  t.match(inbox.body, /<body class="page-inbox" data-agent-id="\d+" data-agent-name="Ada Lovelace" data-last-event-id="[0-9.]+" data-view="open">/)
  const fragment = await ada.inject({ method: 'GET', url: `/tickets/${id}/timeline` })
  t.equal(fragment.headers['cache-control'], 'no-store')
  t.match(fragment.body, /^<ol id="timeline">/)
  t.notMatch(fragment.body, /<html/)
  const head = await ada.inject({ method: 'GET', url: `/tickets/${id}/head?view=open` })
  t.equal(head.headers['cache-control'], 'no-store')
  t.match(head.body, /^\s*<header class="ticket-head" id="ticket-head">/, 'the header fragment the script refetches with the timeline')
  t.match(head.body, /<span class="badge open">Open<\/span>[\s\S]*name="return_to" value="\/tickets\/\d+\?view(=|&#x3D;)open"[\s\S]*<button type="submit" name="status" value="pending"/)
  t.notMatch(head.body, /<html/)
  const anonHead = await ada.inject({ method: 'GET', url: `/tickets/${id}/head`, headers: { cookie: '' } })
  t.not(anonHead.statusCode, 200, 'not without a session')
  const back = await get(ada, `/tickets/${id}/replies`)
  t.equal(back.statusCode, 303, 'a refused form\'s address, reloaded, lands on the ticket')
  t.equal(back.headers.location, `/tickets/${id}`)
  const anon = await ada.inject({ method: 'GET', url: '/inbox/counts', headers: { cookie: '' } })
  t.equal(anon.statusCode, 401)
})

t.test('availability: an agent pauses and resumes', async (t) => {
  const { ada, services } = await setup(t)
  t.equal(await services.tickets.isAvailable(ada.id), true, 'available by default')
  t.equal((await post(ada, '/agents/me/availability', { available: '0', return_to: '/inbox?view=open' })).headers.location, '/inbox?view=open')
  t.equal(await services.tickets.isAvailable(ada.id), false)
  t.match((await get(ada, '/inbox?view=open')).body, /You are not taking new tickets/)
  t.equal((await post(ada, '/agents/me/availability', { available: 'maybe' })).statusCode, 422)
  await post(ada, '/agents/me/availability', { available: '1' })
  t.equal(await services.tickets.isAvailable(ada.id), true)
})

t.test('signing out lands on the sign-in page saying so; the simulator link shows when the simulator channel is on', async (t) => {
  const { app, ada } = await setup(t)
  t.match((await get(ada, '/inbox?view=open')).body, /<a href="\/simulator">Simulator<\/a>/)
  const out = await post(ada, '/logout', {})
  t.equal(out.statusCode, 303)
  t.equal(out.headers.location, '/login?signed-out=1')
  const login = await app.inject({ method: 'GET', url: out.headers.location as string, headers: HTML })
  t.match(login.body, /You are signed out\./)
})

t.test('AUTO_ASSIGN=round-robin: new tickets go to available agents in turn, under the open-ticket cap; nobody available → Unassigned', async (t) => {
  const { ada, bo, text, db, clock, services } = await setup(t, { AUTO_ASSIGN: 'round-robin', AUTO_ASSIGN_MAX_OPEN: '2' })
  const assignee = async (id: number) => (await db.selectFrom('tickets').select('assignee_id').where('id', '=', id).executeTakeFirstOrThrow()).assignee_id
  const got: Array<number | null> = []
  for (let i = 0; i < 5; i++) {
    clock.advance(1000)
    got.push(await assignee(await text(`3161234500${i}`, 'hello')))
  }
  t.same(got, [ada.id, bo.id, ada.id, bo.id, null], 'alternating (longest since last assignment first, then by id), then both are at the cap')
  t.equal(await assignee(await text('31612345000', 'again')), ada.id, 'a text on an existing ticket assigns nothing')
  await post(ada, '/agents/me/availability', { available: '0' })
  await post(ada, '/tickets/1/status', { status: 'closed' })
  await post(bo, '/tickets/2/status', { status: 'closed' })
  clock.advance(1000)
  t.equal(await assignee(await text('31612345100', 'new')), bo.id, 'Ada is not available; Bo is under the cap again')
  const page = await get(bo, `/tickets/${6}`)
  t.match(page.body, /Assigned automatically to Bo Jensen/)
  // The order lives in the database: a new app on the same file continues it.
  t.ok((await db.selectFrom('agents').select('last_assigned_at').where('id', '=', bo.id).executeTakeFirstOrThrow()).last_assigned_at)
  t.equal((await services.tickets.counts(bo.id)).mine, 2)
})

t.test('PENDING_AUTO_CLOSE_HOURS: pending tickets close after waiting that long on the customer; an answer first keeps them', async (t) => {
  const { ada, text, clock, db, services } = await setup(t, { PENDING_AUTO_CLOSE_HOURS: '24', SESSION_TTL_HOURS: '720' })
  const waiting = await text('31612345001', 'a')
  const answered = await text('31612345002', 'b')
  await post(ada, `/tickets/${waiting}/status`, { status: 'pending' })
  await post(ada, `/tickets/${answered}/status`, { status: 'pending' })
  clock.advance(23 * 3600_000)
  t.equal(await services.tickets.autoClosePending(), 0, 'not yet')
  await text('31612345002', 'still need help')
  clock.advance(3600_000)
  t.equal(await services.tickets.autoClosePending(), 1)
  const status = async (id: number) => (await db.selectFrom('tickets').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status
  t.same([await status(waiting), await status(answered)], ['closed', 'open'])
  const closedPage = await get(ada, `/tickets/${waiting}`)
  t.equal(closedPage.statusCode, 200, closedPage.body)
  t.match(closedPage.body, /Closed automatically after 24 h waiting on the customer/)
  t.same((await ada.inject({ method: 'GET', url: '/inbox/counts' })).json().closed, 1)
  t.equal(await services.tickets.autoClosePending(), 0, 'nothing twice')
})

t.test('unread counts up to 100; the title says (99+) from there', async (t) => {
  const { ada, text } = await setup(t)
  for (let i = 0; i < 101; i++) await text(`316123${String(40000 + i)}`, 'hello')
  t.equal((await ada.inject({ method: 'GET', url: '/inbox/counts' })).json().unread, 100)
  t.match((await get(ada, '/inbox?view=open')).body, /<title>\(99\+\) Open · Textdesk<\/title>/)
})

t.test('ticket events are published after each change commits: created, message, status, assigned, note, read (to that agent only)', async (t) => {
  const { app, ada, text, services } = await setup(t)
  const seen: Array<{ change: string, ticketId: number, audience: number | null }> = []
  services.events.subscribe((e) => { if (e.name === 'ticket' && !isMarker(e)) seen.push({ ...e.data, audience: e.audience }) })
  const id = await text('31612345001', 'hello')
  await text('31612345001', 'again')
  await post(ada, `/tickets/${id}/status`, { status: 'pending' })
  await text('31612345001', 'answer')
  await post(ada, `/tickets/${id}/assign`, { assignee: 'me' })
  await post(ada, `/tickets/${id}/notes`, { body: 'n' })
  await post(ada, `/tickets/${id}/replies`, { body: 'r' })
  await get(ada, `/tickets/${id}`)
  const api = await apiClient(app, services)
  await api.post('/api/v1/messages', { to: '31612345002', text: 'Shipped' })
  await eventsDelivered(services.events)
  t.same(seen.map((e) => [e.ticketId, e.change, e.audience]), [
    [id, 'created', null], [id, 'message', null], [id, 'status', null], [id, 'status', null],
    [id, 'assigned', null], [id, 'note', null], [id, 'message', null], [id, 'read', ada.id], [2, 'created', null]
  ])
  const failed = await post(ada, `/tickets/${id}/notes`, { body: '' })
  t.equal(failed.statusCode, 422)
  await eventsDelivered(services.events)
  t.equal(seen.length, 9, 'nothing published for a refused change')
})
