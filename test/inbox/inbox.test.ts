import t from 'tap'
import { FAST_HASH_ENV, signedInAgent } from '../auth/agent-session.js'
import { buildTestApp, FakeClock, form } from '../helper.js'

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
type App = Awaited<ReturnType<typeof buildTestApp>>['app']

async function text (app: App, from: string, body: string, id: string): Promise<number> {
  const res = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: from, payload: body, id }) })
  return res.json().ticket_id as number
}

t.test('/inbox lists open tickets, most recent activity first, with number, reference, preview, count and age', async (t) => {
  const clock = new FakeClock()
  const { app } = await buildTestApp(t, { clock, env: FAST_HASH_ENV })
  const agent = await signedInAgent(app)
  await text(app, '31612345678', 'first customer', 'a')
  clock.advance(60_000)
  await text(app, '31687654321', 'second customer', 'b')
  clock.advance(60_000)
  await text(app, '31612345678', 'first customer again', 'c')
  const res = await agent.inject({ method: 'GET', url: '/inbox?view=open', headers: { accept: 'text/html' } })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/html/)
  const rows = [...res.body.matchAll(/data-ticket-id="(\d+)"/g)].map((m) => Number(m[1]))
  t.same(rows, [1, 2], 'ticket 1 has the newest message')
  t.match(res.body, /\+31612345678/)
  t.match(res.body, /first customer again/)
  t.match(res.body, /href="\/tickets\/1\?view=open">\+31612345678<\/a> <span class="muted">#1</)
  t.match(res.body, /<section id="ticket-list"/, 'the list is the refresh target')
  const fragment = await agent.inject({ method: 'GET', url: '/inbox/list?view=open' })
  t.equal(fragment.statusCode, 200)
  t.notMatch(fragment.body, /<html/, 'the refresh fragment has no layout')
  t.match(fragment.body, /first customer again/)
})

t.test('the inbox is paginated by keyset and never shows closed tickets', async (t) => {
  const clock = new FakeClock()
  const { app, services } = await buildTestApp(t, { clock, env: { ...FAST_HASH_ENV, INBOX_PAGE_SIZE: '2' } })
  const agent = await signedInAgent(app)
  for (let i = 0; i < 5; i++) {
    await text(app, `3161234${String(5670 + i)}`, `customer ${i}`, `p${i}`)
    clock.advance(1000)
  }
  await services.tickets.close(5, null)
  const page1 = await agent.inject({ method: 'GET', url: '/inbox?view=open' })
  const ids1 = [...page1.body.matchAll(/data-ticket-id="(\d+)"/g)].map((m) => Number(m[1]))
  t.same(ids1, [4, 3])
  const next = /href="\/inbox\?view=open&amp;cursor=([^"]+)" rel="next"/.exec(page1.body)?.[1]
  t.ok(next, 'a link to older tickets')
  const page2 = await agent.inject({ method: 'GET', url: `/inbox?view=open&cursor=${next}` })
  t.same([...page2.body.matchAll(/data-ticket-id="(\d+)"/g)].map((m) => Number(m[1])), [2, 1])
  t.notMatch(page2.body, /rel="next"/, 'last page')
  const bad = await agent.inject({ method: 'GET', url: '/inbox?view=open&cursor=garbage', headers: { accept: 'text/html' } })
  t.equal(bad.statusCode, 422)
  t.match(bad.body, /page link is malformed/)
})

t.test('/admin (the original guide\'s page) redirects to /inbox', async (t) => {
  const { app } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agent = await signedInAgent(app)
  const res = await agent.inject({ method: 'GET', url: '/admin' })
  t.equal(res.statusCode, 302)
  t.equal(res.headers.location, '/inbox')
})

t.test('a ticket page shows the whole conversation with outbound statuses', async (t) => {
  const { app, services } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agent = await signedInAgent(app)
  const id = await text(app, '31612345678', 'Where is my order?', 'x1')
  await services.worker.drain()
  await services.simulator?.idle()
  const res = await agent.inject({ method: 'GET', url: `/tickets/${id}` })
  t.equal(res.statusCode, 200)
  t.match(res.body, /Where is my order\?/)
  t.match(res.body, /Your ticket ID is 1\./)
  t.match(res.body, /class="status delivered"/)
  t.ok(res.body.indexOf('Where is my order?') < res.body.indexOf('Your ticket ID is 1.'), 'the customer\'s text comes before the confirmation it caused')
  t.match(res.body, /name="body"/, 'reply box')
})

t.test('reply: Post/Redirect/Get, queued on the ticket, shown with its status', async (t) => {
  const { app, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agent = await signedInAgent(app)
  const id = await text(app, '31612345678', 'hello', 'r1')
  const res = await agent.inject({ method: 'POST', url: `/tickets/${id}/replies`, headers: FORM, payload: form({ body: '  We are on it!  ' }) })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, `/tickets/${id}`)
  const reply = await db.selectFrom('messages').selectAll().where('kind', '=', 'reply').executeTakeFirstOrThrow()
  t.equal(reply.body, 'We are on it!')
  t.equal(reply.status, 'queued')
  t.equal(reply.to_address, '+31612345678')
  t.equal(reply.agent_id, agent.id, 'the reply records who sent it')
  const page = await agent.inject({ method: 'GET', url: `/tickets/${id}` })
  t.match(page.body, /We are on it!/)
})

t.test('bad replies: empty, too long, closed ticket, unknown ticket — clear errors, nothing stored', async (t) => {
  const { app, db, services } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agent = await signedInAgent(app)
  const id = await text(app, '31612345678', 'hello', 'b1')
  const before = (await db.selectFrom('messages').selectAll().execute()).length
  const empty = await agent.inject({ method: 'POST', url: `/tickets/${id}/replies`, headers: { ...FORM, accept: 'text/html' }, payload: form({ body: '   ' }) })
  t.equal(empty.statusCode, 422)
  t.match(empty.body, /The reply is empty/)
  const long = await agent.inject({ method: 'POST', url: `/tickets/${id}/replies`, headers: { ...FORM, accept: 'text/html' }, payload: form({ body: 'x'.repeat(1601) }) })
  t.equal(long.statusCode, 422)
  t.match(long.body, /limit is 1600/)
  t.match(long.body, /x{1601}<\/textarea>/, 'the draft is kept')
  const missing = await agent.inject({ method: 'POST', url: '/tickets/999/replies', headers: { ...FORM, accept: 'text/html' }, payload: form({ body: 'hi' }) })
  t.equal(missing.statusCode, 404)
  t.match(missing.body, /Ticket 999 was not found/)
  const notANumber = await agent.inject({ method: 'GET', url: '/tickets/abc', headers: { accept: 'text/html' } })
  t.equal(notANumber.statusCode, 404)
  t.match(notANumber.body, /There is no ticket abc\./, 'a sentence, not validator wording')
  t.notMatch(notANumber.body, /params|must be/)
  await services.tickets.close(id, null)
  const closed = await agent.inject({ method: 'POST', url: `/tickets/${id}/replies`, headers: { ...FORM, accept: 'text/html' }, payload: form({ body: 'hi' }) })
  t.equal(closed.statusCode, 409)
  t.match(closed.body, /is closed/)
  t.equal((await db.selectFrom('messages').selectAll().execute()).length, before)
})

t.test('closing a ticket: PRG back to the ticket, which says it is closed; gone from the open list; next SMS opens a new ticket', async (t) => {
  const { app, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agent = await signedInAgent(app)
  const id = await text(app, '31612345678', 'hello', 'cl1')
  const res = await agent.inject({ method: 'POST', url: `/tickets/${id}/close`, headers: FORM, payload: '' })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, `/tickets/${id}`, 'no notice riding on a query string')
  const page = await agent.inject({ method: 'GET', url: `/tickets/${id}` })
  t.match(page.body, /This ticket is closed/)
  t.ok(page.body.indexOf('This ticket is closed') < page.body.indexOf('id="addresses"'), 'the closed notice sits above the address panel')
  const inbox = await agent.inject({ method: 'GET', url: '/inbox?view=open' })
  t.notMatch(inbox.body, /data-ticket-id/)
  const again = await text(app, '31612345678', 'me again', 'cl2')
  t.not(again, id)
  t.equal((await db.selectFrom('messages').where('kind', '=', 'confirmation').selectAll().execute()).length, 2)
})

t.test('SMS text is escaped everywhere it is shown', async (t) => {
  const { app } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agent = await signedInAgent(app)
  const id = await text(app, '31612345678', '<script>alert(1)</script><img src=x onerror=alert(2)>', 'xss')
  for (const url of ['/inbox?view=open', '/inbox/list', `/tickets/${id}`, `/tickets/${id}/conversation`, '/simulator?number=%2B31612345678']) {
    const res = await agent.inject({ method: 'GET', url })
    t.notMatch(res.body, /<script>alert/, `${url}: no live script tag`)
    t.notMatch(res.body, /<img src=x/, `${url}: no live img tag`)
    t.match(res.body, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/, `${url}: shown as text`)
  }
})

t.test('unknown pages get a 404 that reveals nothing', async (t) => {
  const { app } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agent = await signedInAgent(app)
  const res = await agent.inject({ method: 'GET', url: '/nope/../../etc/passwd' })
  t.equal(res.statusCode, 404)
  t.notMatch(res.body, /passwd|stack|node_modules/)
})
