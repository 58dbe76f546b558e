import t, { type Test } from 'tap'
import { FAST_HASH_ENV, signedInAgent, type AgentSession } from '../auth/agent-session.js'
import { snapshot } from '../auth/routes.js'
import { buildTestApp, FakeClock, form } from '../helper.js'

// Canned replies at the HTTP edge: the same forms the pages post, a real database per test.

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const HTML = { accept: 'text/html' }
type Agent = AgentSession & { id: number, name: string }

async function setup (t: Test) {
  const clock = new FakeClock()
  const built = await buildTestApp(t, { clock, env: FAST_HASH_ENV })
  const ada = await signedInAgent(built.app, { email: 'ada@example.com', name: 'Ada Lovelace' })
  const bo = await signedInAgent(built.app, { email: 'bo@example.com', name: 'Bo Jensen' })
  return { ...built, ada, bo }
}

const post = async (agent: Agent, url: string, fields: Record<string, string>) =>
  await agent.inject({ method: 'POST', url, headers: { ...FORM, ...HTML }, payload: form(fields) })
const get = async (agent: Agent, url: string) => await agent.inject({ method: 'GET', url, headers: HTML })
/** The page's text in one line, tags dropped and entities decoded as a reader sees them. */
const text = (html: string) => html.replace(/<[^>]*>/g, ' ').replace(/&quot;/g, '"').replace(/&#x27;/g, "'").replace(/&#x3D;/g, '=').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&').replace(/\s+/g, ' ')
const errorOf = (html: string) => text(/<p class="error" role="alert"[^>]*>([\s\S]*?)<\/p>/.exec(html)?.[1] ?? '').trim()

t.test('agents create, list, edit and delete shared canned replies; each change records who made it', async (t) => {
  const { db, ada, bo, clock } = await setup(t)
  const created = await post(ada, '/canned', { name: 'greeting', body: 'Hi {{customer.name}}, this is {{agent.name}} about ticket {{ticket.ref}}.' })
  t.equal(created.statusCode, 303)
  const row = await db.selectFrom('canned_replies').selectAll().executeTakeFirstOrThrow()
  t.equal(created.headers.location, `/canned#canned-${row.id}`)
  t.match(row, { name: 'greeting', created_by: ada.id, updated_by: ada.id })

  const list = await get(bo, '/canned')
  t.equal(list.statusCode, 200)
  t.match(text(list.body), /\/greeting Hi \{\{customer\.name\}\}, this is \{\{agent\.name\}\} about ticket \{\{ticket\.ref\}\}\./, 'Bo sees the reply Ada wrote')
  t.match(text(list.body), /GSM-7 1 SMS part · \d+ septets as written/, 'with its parts and encoding')
  t.match(text(list.body), /changed by Ada Lovelace/)

  clock.advance(60_000)
  const edited = await post(bo, `/canned/${row.id}`, { name: 'hello', body: 'Hello {{customer.name}}!\r\nHow can we help?' })
  t.equal(edited.statusCode, 303)
  const after = await db.selectFrom('canned_replies').selectAll().executeTakeFirstOrThrow()
  t.match(after, { id: row.id, name: 'hello', body: 'Hello {{customer.name}}!\nHow can we help?', created_by: ada.id, updated_by: bo.id, updated_at: '2026-01-01T09:01:00.000Z' }, 'renamed and rewritten; CRLF stored as LF')
  const page = await get(ada, `/canned/${row.id}`)
  t.equal(page.statusCode, 200)
  t.match(text(page.body), /Bo Jensen changed it \(name \/hello\)/)
  t.match(text(page.body), /Ada Lovelace created it/)

  const deleted = await post(ada, `/canned/${row.id}/delete`, {})
  t.equal(deleted.statusCode, 303)
  t.equal(deleted.headers.location, '/canned')
  t.equal((await db.selectFrom('canned_replies').selectAll().execute()).length, 0)
  t.match(text((await get(ada, '/canned')).body), /No canned replies yet/)
  const changes = await db.selectFrom('canned_reply_changes').select(['action', 'agent_id', 'name']).orderBy('id').execute()
  t.same(changes, [
    { action: 'created', agent_id: ada.id, name: 'greeting' },
    { action: 'updated', agent_id: bo.id, name: 'hello' },
    { action: 'deleted', agent_id: ada.id, name: 'hello' }
  ], 'the history keeps who did what, the deletion too')

  t.equal((await post(ada, `/canned/${row.id}/delete`, {})).statusCode, 404, 'deleting it again: there is nothing to delete')
  t.match(errorOf((await get(ada, '/canned/abc')).body), /There is no canned reply abc/)
  t.equal((await get(ada, '/canned/abc')).statusCode, 404)
  t.equal((await get(ada, `/canned/${row.id}/delete`)).headers.location, '/canned', 'a reload of a POST address lands on the list')
})

t.test('names: lowercase letters, digits, - and _, unique; each refusal says what is wrong and keeps the text', async (t) => {
  const { db, ada, bo } = await setup(t)
  t.equal((await post(ada, '/canned', { name: ' thanks ', body: 'Thank you!' })).statusCode, 303, 'spaces around a name are trimmed')
  t.equal((await post(ada, '/canned', { name: 'other', body: 'Other' })).statusCode, 303)
  const before = await snapshot(db)
  const cases: Array<[string, RegExp]> = [
    ['', /Give the canned reply a name/],
    ['Greeting', /Names are lowercase: use "greeting" instead of "Greeting"/],
    ['good morning', /"good morning" has spaces\. Use - or _ between words/],
    ['hi!', /"hi!" has "!"/],
    ['x'.repeat(33), /33 characters long; the limit is 32/],
    ['thanks', /There is already a canned reply named "thanks"/]
  ]
  for (const [name, message] of cases) {
    const res = await post(bo, '/canned', { name, body: 'Kept text' })
    t.equal(res.statusCode, 422, `name ${JSON.stringify(name)} is refused`)
    t.match(errorOf(res.body), message)
    t.match(res.body, />Kept text<\/textarea>/, 'the text is kept in the form')
  }
  const other = await db.selectFrom('canned_replies').select('id').where('name', '=', 'other').executeTakeFirstOrThrow()
  const rename = await post(bo, `/canned/${other.id}`, { name: 'thanks', body: 'Other' })
  t.equal(rename.statusCode, 422, 'renaming onto a taken name is refused too')
  t.match(errorOf(rename.body), /There is already a canned reply named "thanks"/)
  t.equal((await post(bo, `/canned/${other.id}`, { name: 'other', body: 'Other, again' })).statusCode, 303, 'keeping its own name is fine')
  const after = await snapshot(db)
  t.same(after.canned_replies.length, before.canned_replies.length)

  // Two agents take one name at the same moment: one wins, the other is told, whichever check catches it.
  const race = await Promise.all([post(ada, '/canned', { name: 'same', body: 'From Ada' }), post(bo, '/canned', { name: 'same', body: 'From Bo' })])
  t.same(race.map((r) => r.statusCode).sort(), [303, 422], 'one of two simultaneous saves of a name wins')
  t.match(errorOf(race.find((r) => r.statusCode === 422)?.body ?? ''), /There is already a canned reply named "same"/)
  t.equal((await db.selectFrom('canned_replies').select('id').where('name', '=', 'same').execute()).length, 1)

  const json = await bo.inject({ method: 'POST', url: '/canned', headers: { 'content-type': 'application/json', accept: 'application/json' }, payload: { name: 'Bad Name', body: 'x' } })
  t.equal(json.statusCode, 422)
  t.match(json.json(), { error: 'VALIDATION_FAILED', message: /lowercase/, details: [{ field: 'name' }] }, 'a JSON client gets the error as JSON')
  const made = await bo.inject({ method: 'POST', url: '/canned', headers: { 'content-type': 'application/json', accept: 'application/json' }, payload: { name: 'json-made', body: 'Made “by” JSON' } })
  t.equal(made.statusCode, 201)
  t.match(made.json(), { name: 'json-made', sms: { encoding: 'UCS-2', parts: 1, fixable: true, fixedEncoding: 'GSM-7' } })
})

t.test('the text: not empty, at most 1,600 characters, only known variables, each refused when saved', async (t) => {
  const { db, ada } = await setup(t)
  const cases: Array<[string, RegExp]> = [
    ['   ', /The text is empty/],
    ['x'.repeat(1601), /1601 characters long; the limit is 1600/],
    ['Hi {{customer.email}}, about {{ticket.ref}}', /Unknown variable \{\{customer\.email\}\}\. The known variables are \{\{customer\.name\}\}, \{\{ticket\.ref\}\}, \{\{agent\.name\}\}\. Nothing was saved\./],
    ['{{ Customer.Name }} and {{agent}}', /Unknown variables \{\{Customer\.Name\}\}, \{\{agent\}\}\./],
    ['Hi {{customer.name}', /A variable is not closed/]
  ]
  for (const [body, message] of cases) {
    const res = await post(ada, '/canned', { name: 'reply', body })
    t.equal(res.statusCode, 422, `${JSON.stringify(body.slice(0, 40))} is refused`)
    t.match(errorOf(res.body), message)
  }
  t.equal((await db.selectFrom('canned_replies').selectAll().execute()).length, 0, 'nothing was stored')

  t.equal((await post(ada, '/canned', { name: 'reply', body: 'Hi {{ customer.name }}' })).statusCode, 303, 'spaces inside the braces are fine')
  const row = await db.selectFrom('canned_replies').selectAll().executeTakeFirstOrThrow()
  const edit = await post(ada, `/canned/${row.id}`, { name: 'reply', body: 'Hi {{customer.phone}}' })
  t.equal(edit.statusCode, 422, 'an edit is checked the same way')
  t.match(errorOf(edit.body), /Unknown variable \{\{customer\.phone\}\}/)
  t.match(edit.body, />Hi \{\{customer\.phone\}\}<\/textarea>/, 'and keeps what the agent wrote')
  t.equal((await db.selectFrom('canned_replies').select('body').executeTakeFirstOrThrow()).body, 'Hi {{ customer.name }}', 'unchanged')

  const json = await ada.inject({ method: 'POST', url: '/canned', headers: { 'content-type': 'application/json', accept: 'application/json' }, payload: { name: 'api', body: 'Hi {{first_name}}' } })
  t.equal(json.statusCode, 422)
  t.match(json.json(), { message: /Unknown variable \{\{first_name\}\}.*\{\{customer\.name\}\}, \{\{ticket\.ref\}\}, \{\{agent\.name\}\}/, details: [{ field: 'body', message: 'unknown variable {{first_name}}' }] })
})

t.test('the list shows parts and encoding; the GSM-7 fix replaces look-alikes in one click', async (t) => {
  const { db, ada } = await setup(t)
  const fancy = '‘Thanks’ — we’ll call you… “soon”\u00a0– promise'
  await post(ada, '/canned', { name: 'fancy', body: fancy })
  await post(ada, '/canned', { name: 'long', body: 'y'.repeat(200) })
  await post(ada, '/canned', { name: 'emoji', body: 'Thanks 🙂' })
  const list = text((await get(ada, '/canned')).body)
  t.match(list, /\/fancy .*UCS-2 1 SMS part · 43 UTF-16 units as written · UCS-2 because of “‘” “’” “—” “…” ““” “”” “ ” “–”/)
  t.match(list, /\/long .*GSM-7 2 SMS parts · 200 septets/)
  t.match(list, /\/emoji .*UCS-2 1 SMS part · 9 UTF-16 units as written · UCS-2 because of “🙂”/)
  const html = (await get(ada, '/canned')).body
  const fancyId = (await db.selectFrom('canned_replies').select('id').where('name', '=', 'fancy').executeTakeFirstOrThrow()).id
  const emojiId = (await db.selectFrom('canned_replies').select('id').where('name', '=', 'emoji').executeTakeFirstOrThrow()).id
  t.match(html, new RegExp(`action="/canned/${fancyId}/gsm-fix"`), 'the fix is offered where look-alikes are')
  t.notMatch(html, new RegExp(`action="/canned/${emojiId}/gsm-fix"`), 'not for an emoji, which has no GSM-7 twin')
  t.match(text(html), /Replace look-alike characters in \/fancy \(fits GSM-7\)/)

  const fixed = await post(ada, `/canned/${fancyId}/gsm-fix`, {})
  t.equal(fixed.statusCode, 303)
  t.equal(fixed.headers.location, `/canned#canned-${fancyId}`)
  const row = await db.selectFrom('canned_replies').select(['body', 'updated_by']).where('id', '=', fancyId).executeTakeFirstOrThrow()
  t.equal(row.body, '\'Thanks\' - we\'ll call you... "soon" - promise')
  t.match(text((await get(ada, '/canned')).body), /\/fancy .*GSM-7 1 SMS part/, 'now GSM-7')
  t.match(await db.selectFrom('canned_reply_changes').select(['action', 'agent_id']).where('canned_reply_id', '=', fancyId).orderBy('id', 'desc').executeTakeFirstOrThrow(), { action: 'gsm_fix', agent_id: ada.id })
  t.notMatch((await get(ada, '/canned')).body, new RegExp(`action="/canned/${fancyId}/gsm-fix"`), 'nothing left to fix')

  // At the limit, "…" → "..." would pass it: refused, and the text stays as it was.
  await post(ada, '/canned', { name: 'dots', body: 'x'.repeat(1599) + '…' })
  const dots = await db.selectFrom('canned_replies').select('id').where('name', '=', 'dots').executeTakeFirstOrThrow()
  const tooLong = await post(ada, `/canned/${dots.id}/gsm-fix`, {})
  t.equal(tooLong.statusCode, 422)
  t.match(errorOf(tooLong.body), /1602 characters long; the limit is 1600/)
  t.equal((await db.selectFrom('canned_replies').select('body').where('id', '=', dots.id).executeTakeFirstOrThrow()).body, 'x'.repeat(1599) + '…')

  const again = await ada.inject({ method: 'POST', url: `/canned/${fancyId}/gsm-fix`, headers: { accept: 'application/json' } })
  t.equal(again.statusCode, 200)
  t.match(again.json(), { sms: { encoding: 'GSM-7' } }, 'a second fix changes nothing')
})

t.test('only signed-in agents, and only with the form\'s CSRF token', async (t) => {
  const { app, db, ada } = await setup(t)
  await post(ada, '/canned', { name: 'kept', body: 'Kept' })
  const id = (await db.selectFrom('canned_replies').select('id').executeTakeFirstOrThrow()).id
  const before = await snapshot(db)

  const page = await app.inject({ method: 'GET', url: '/canned', headers: HTML })
  t.equal(page.statusCode, 303)
  t.equal(page.headers.location, '/login?next=%2Fcanned', 'a browser is sent to sign in, and back')
  t.equal((await app.inject({ method: 'GET', url: '/canned', headers: { accept: 'application/json' } })).statusCode, 401, 'a fetch gets 401')
  for (const url of ['/canned', `/canned/${id}`, `/canned/${id}/delete`, `/canned/${id}/gsm-fix`]) {
    const anon = await app.inject({ method: 'POST', url, headers: { ...FORM, ...HTML }, payload: form({ name: 'evil', body: 'x' }) })
    t.equal(anon.statusCode, 401, `anonymous POST ${url} is 401`)
    const json = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: { name: 'evil', body: 'x' } })
    t.equal(json.statusCode, 401)
    // Signed in, without the token: the session cookie alone.
    const forged = await app.inject({ method: 'POST', url, headers: { ...FORM, ...HTML, cookie: ada.cookie }, payload: form({ name: 'evil', body: 'x' }) })
    t.equal(forged.statusCode, 403, `POST ${url} without the CSRF token is 403`)
    t.match(forged.body, /This form has expired or did not come from Textdesk/)
    const wrong = await app.inject({ method: 'POST', url, headers: { ...FORM, ...HTML, cookie: ada.cookie }, payload: form({ name: 'evil', body: 'x', _csrf: 'not-the-token' }) })
    t.equal(wrong.statusCode, 403, `POST ${url} with a wrong token is 403`)
  }
  t.same(await snapshot(db), before, 'nothing changed')
  t.match((await get(ada, '/inbox?view=open')).body, /<a href="\/canned">Canned replies<\/a>/, 'the header links to the page')
})

t.test('the ticket page offers the canned replies filled in for this ticket and agent, escaped', async (t) => {
  const { db, ada, app, services } = await setup(t)
  const inbound = await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'c1', from: '+31612345678', to: null, text: 'Hello?', channel: 'sms' })
  await post(ada, '/canned', { name: 'greeting', body: 'Hi {{customer.name}}, {{agent.name}} here about #{{ticket.ref}}.' })
  const html = (await get(ada, `/tickets/${inbound.ticketId}`)).body
  t.match(html, new RegExp(`<option value="greeting" data-text="Hi \\+31612345678, Ada Lovelace here about #${inbound.ticketId}\\.">/greeting</option>`), 'no name known: the number')

  await db.updateTable('contacts').set({ name: 'Zoë "<b>" & Co' }).execute()
  const named = (await get(ada, `/tickets/${inbound.ticketId}`)).body
  t.match(named, /data-text="Hi Zoë &quot;&lt;b&gt;&quot; &amp; Co, Ada Lovelace/, 'the name, escaped in the attribute')

  const noScript = await get(ada, `/tickets/${inbound.ticketId}?canned=greeting`)
  t.equal(noScript.statusCode, 200)
  t.match(noScript.body, /<textarea id="reply-body"[^>]*>Hi Zoë &quot;&lt;b&gt;&quot; &amp; Co, Ada Lovelace here about #\d+\.<\/textarea>/, 'without the script, Insert fills the composer from the server')
  const missing = await get(ada, `/tickets/${inbound.ticketId}?canned=nope`)
  t.equal(missing.statusCode, 404)
  t.match(errorOf(missing.body), /There is no canned reply "nope"/)

  await app.inject({ method: 'GET', url: '/canned' })
  const empty = await buildTestApp(t, { env: FAST_HASH_ENV })
  const bo = await signedInAgent(empty.app, { email: 'bo@example.com', name: 'Bo' })
  const other = await empty.services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'c2', from: '+31612345679', to: null, text: 'Hi', channel: 'sms' })
  t.match((await get(bo, `/tickets/${other.ticketId}`)).body, /No canned replies yet/, 'with none, the page says where to write one')
})
