import t, { type Test } from 'tap'
import { createAgent, FAST_HASH_ENV, signIn } from '../auth/agent-session.js'
import { buildTestApp, FakeClock, form } from '../helper.js'

// Customers pointing at a ticket: a text starting with `#<ref>`, through the real webhook route.
// Their own open ticket takes it; their own ticket closed within REF_REOPEN_DAYS is reopened when
// they have no other open ticket; otherwise it joins their open ticket with a link to the one
// named. Anyone else's or a missing ticket is plain text, exactly as before.

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const HTML = { accept: 'text/html' }
const DAY = 86_400_000
const ANN = '31612345678'
const BEA = '31687654321'

async function setup (t: Test, env: Record<string, string> = {}) {
  const clock = new FakeClock()
  const built = await buildTestApp(t, { clock, env: { ...FAST_HASH_ENV, ...env } })
  await createAgent(built.services, { email: 'ada@example.com', name: 'Ada Lovelace' })
  // Signed in afresh for each action: the test moves the clock by weeks, past a session's lifetime.
  const ada = { inject: async (opts: Parameters<Awaited<ReturnType<typeof signIn>>['inject']>[0]) => await (await signIn(built.app, 'ada@example.com')).inject(opts) }
  let n = 0
  const text = async (from: string, body: string) => {
    clock.advance(1000)
    const res = await built.app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: from, payload: body, id: `in-${++n}` }) })
    t.equal(res.statusCode, 200, `the webhook takes ${JSON.stringify(body)}`)
    return res.json() as { ticket_id: number, duplicate: boolean }
  }
  const setStatus = async (ticketId: number, status: string) => {
    const res = await ada.inject({ method: 'POST', url: `/tickets/${ticketId}/status`, headers: { ...FORM, ...HTML }, payload: form({ status }) })
    t.equal(res.statusCode, 303)
  }
  const lastInbound = async () => await built.db.selectFrom('messages').select(['id', 'ticket_id', 'body', 'ref_ticket_id', 'original_body'])
    .where('direction', '=', 'inbound').orderBy('created_at', 'desc').orderBy('id', 'desc').executeTakeFirstOrThrow()
  const confirmations = async () => (await built.db.selectFrom('messages').select(['ticket_id', 'body']).where('kind', '=', 'confirmation').orderBy('ticket_id').execute())
  const ticket = async (id: number) => await built.db.selectFrom('tickets').select(['id', 'status', 'message_count']).where('id', '=', id).executeTakeFirstOrThrow()
  const page = async (id: number) => (await ada.inject({ method: 'GET', url: `/tickets/${id}`, headers: HTML })).body
  return { ...built, clock, ada, text, setStatus, lastInbound, confirmations, ticket, page }
}

const item = (html: string, id: string) => new RegExp(`<li class="msg [^"]*" data-item-id="${id}"[\\s\\S]*?</li>`).exec(html)?.[0] ?? ''

t.test('#ref of the open (or pending) ticket joins it; the prefix becomes a tag, the text is stored without it', async (t) => {
  const s = await setup(t)
  const { ticket_id: id } = await s.text(ANN, 'My router is broken')
  t.equal((await s.text(ANN, '#1 still broken')).ticket_id, id)
  const joined = await s.lastInbound()
  t.same({ body: joined.body, ref: joined.ref_ticket_id, original: joined.original_body }, { body: 'still broken', ref: id, original: '#1 still broken' })
  let html = await s.page(id)
  t.match(item(html, joined.id), /<div class="bubble"><span class="badge ref-tag" title="The customer started the text with #1">#1<\/span> still broken<\/div>/, 'a tag, then the text')
  t.notMatch(item(html, joined.id), /refers to/, 'it is on the ticket it names: no link')
  t.match(html, /<td class="preview">still broken<\/td>/, 'the list previews the text without the prefix')

  await s.setStatus(id, 'pending')
  t.equal((await s.text(ANN, '#1: hello?')).ticket_id, id)
  t.equal((await s.ticket(id)).status, 'open', 'a pending ticket named by the customer is open again')
  t.equal((await s.lastInbound()).body, 'hello?')
  t.equal((await s.confirmations()).length, 1, 'one confirmation, for the first text')
  html = await s.page(id)
  t.match(html, /The customer answered: open again/)
})

t.test('#ref of their ticket closed within REF_REOPEN_DAYS reopens it, with no confirmation; beyond it, a new ticket as today', async (t) => {
  const s = await setup(t)
  const { ticket_id: id } = await s.text(ANN, 'Invoice is wrong')
  await s.setStatus(id, 'closed')
  s.clock.advance(29 * DAY)
  t.equal((await s.text(ANN, '#1 the invoice is wrong again')).ticket_id, id, 'the same ticket')
  t.equal((await s.ticket(id)).status, 'open', 'reopened')
  t.same(await s.confirmations(), [{ ticket_id: id, body: 'Thanks for contacting customer support! Your ticket ID is 1.' }], 'no new confirmation')
  t.match(await s.page(id), /<li class="event" data-item-id="event-\d+">The customer&#x27;s text named this ticket: reopened · /, 'the timeline says why it reopened')
  t.equal((await s.lastInbound()).body, 'the invoice is wrong again')

  await s.setStatus(id, 'closed')
  s.clock.advance(30 * DAY + 1000)
  const later = await s.text(ANN, '#1 and once more')
  t.not(later.ticket_id, id, 'beyond the window: a new ticket, as any text after a close')
  t.equal((await s.ticket(id)).status, 'closed')
  t.same((await s.confirmations()).map((c) => c.ticket_id), [id, later.ticket_id], 'with its confirmation, as today')
  const stored = await s.lastInbound()
  t.same({ ticket: stored.ticket_id, body: stored.body, ref: stored.ref_ticket_id }, { ticket: later.ticket_id, body: 'and once more', ref: id }, 'still tagged with the ticket it named')
  t.match(item(await s.page(later.ticket_id), stored.id), new RegExp(`· <span class="refers">refers to <a href="/tickets/${id}">#${id}</a></span>`), 'and links to it')
})

t.test('REF_REOPEN_DAYS=0: a reference never reopens; REF_REOPEN_DAYS is validated', async (t) => {
  const s = await setup(t, { REF_REOPEN_DAYS: '0' })
  const { ticket_id: id } = await s.text(ANN, 'Hello')
  await s.setStatus(id, 'closed')
  const next = await s.text(ANN, '#1 hello again')
  t.not(next.ticket_id, id)
  t.equal((await s.confirmations()).length, 2)
  const { testConfig } = await import('../helper.js')
  t.throws(() => testConfig({ REF_REOPEN_DAYS: '-1' }), /REF_REOPEN_DAYS/)
  t.equal(testConfig().teamInbox.refReopenDays, 30, 'the default is 30 days')
})

t.test('#ref of a closed ticket while another is open: the text joins the open one and links to the one named', async (t) => {
  const s = await setup(t)
  const { ticket_id: old } = await s.text(ANN, 'First problem')
  await s.setStatus(old, 'closed')
  s.clock.advance(DAY)
  const { ticket_id: current } = await s.text(ANN, 'Second problem')
  t.not(current, old)
  t.equal((await s.text(ANN, '#1 about the first one')).ticket_id, current, 'joins the open ticket')
  t.equal((await s.ticket(old)).status, 'closed', 'the one named stays closed (one open ticket per customer)')
  const stored = await s.lastInbound()
  t.same({ body: stored.body, ref: stored.ref_ticket_id }, { body: 'about the first one', ref: old })
  const html = item(await s.page(current), stored.id)
  t.match(html, /<span class="badge ref-tag" title="The customer started the text with #1">#1<\/span> about the first one/)
  t.match(html, /refers to <a href="\/tickets\/1">#1<\/a>/)
  t.equal((await s.confirmations()).length, 2, 'no confirmation for the joined text')
})

t.test('someone else\'s ticket, a ticket that does not exist, and things that are no reference: the text is kept verbatim and behaves as any text', async (t) => {
  const s = await setup(t)
  const { ticket_id: annsTicket } = await s.text(ANN, 'Private matter')
  await s.setStatus(annsTicket, 'closed')
  const before = await s.ticket(annsTicket)
  // Bea names Ann's (closed) ticket: nothing of Ann's changes, Bea's text opens her own ticket, the
  // confirmation is the usual one.
  const bea = await s.text(BEA, '#1 what is this')
  t.not(bea.ticket_id, annsTicket)
  t.same(await s.ticket(annsTicket), before, 'Ann\'s ticket is untouched')
  let stored = await s.lastInbound()
  t.same({ body: stored.body, ref: stored.ref_ticket_id, original: stored.original_body }, { body: '#1 what is this', ref: null, original: null }, 'verbatim, no reference stored')
  t.same((await s.confirmations()).at(-1), { ticket_id: bea.ticket_id, body: `Thanks for contacting customer support! Your ticket ID is ${bea.ticket_id}.` }, 'the same confirmation as for any first text')
  const beaPage = await s.page(bea.ticket_id)
  t.notMatch(item(beaPage, stored.id), /ref-tag|refers to/, 'no tag, no link')
  t.notMatch(beaPage, /Private matter/)

  // Bea names Ann's ticket on her open ticket: joins hers, verbatim.
  t.equal((await s.text(BEA, '#1 again')).ticket_id, bea.ticket_id)
  t.equal((await s.lastInbound()).body, '#1 again')

  for (const body of ['#999 hello', '#', '# 2', '#abc', '#0', '#042 zero first', '#2abc', '#99999999999999999999 huge', '#1234567890 ten digits', '#999999999 nine digits', '  ', 'about #2 in the middle']) {
    const res = await s.text(BEA, body)
    t.equal(res.ticket_id, bea.ticket_id, `${JSON.stringify(body)} joins Bea's open ticket as any text`)
    stored = await s.lastInbound()
    t.same({ body: stored.body, ref: stored.ref_ticket_id }, { body, ref: null }, `${JSON.stringify(body)} is kept verbatim`)
  }
})

t.test('concurrent #ref texts naming a recently closed ticket reopen it once: one open ticket, no confirmation', async (t) => {
  const s = await setup(t)
  const { ticket_id: id } = await s.text(ANN, 'Broken again')
  await s.setStatus(id, 'closed')
  s.clock.advance(DAY)
  const results = await Promise.all(Array.from({ length: 6 }, async (_, i) => await s.text(ANN, i % 2 === 0 ? `#1 burst ${i}` : `plain ${i}`)))
  const open = await s.db.selectFrom('tickets').select(['id', 'status']).where('status', '<>', 'closed').execute()
  t.equal(open.length, 1, 'one open ticket for the customer')
  t.ok(results.every((r) => r.ticket_id === open[0].id), 'every text on it')
  const confirmations = await s.confirmations()
  t.equal(confirmations.length, open[0].id === id ? 1 : 2, 'a confirmation only when a new ticket was opened')
  const events = await s.db.selectFrom('ticket_events').select(['ticket_id']).where('kind', '=', 'status').where('to_status', '=', 'open').execute()
  t.ok(events.length <= 1, 'reopened at most once')
})
