import t, { type Test } from 'tap'
import { signedInAgent, signIn } from '../auth/agent-session.js'
import { apiClient } from '../api/api-helpers.js'
import { setup, type Agent } from '../contacts/helpers.js'

// Data and privacy at the HTTP edge: export (page and API), erase (admins, confirmed twice, with
// its audit entry), what an erased number still means for consent, and retention by the clock.

const PHONE = '+31612345678'
const OTHER = '+31687654321'

async function withAdmin (t: Test, env: Record<string, string> = {}) {
  const s = await setup(t, env)
  const grace = await signedInAgent(s.app, { email: 'grace@example.com', name: 'Grace Admin', role: 'admin' })
  return { ...s, grace }
}

const searchHits = async (agent: Agent, q: string): Promise<string[]> => {
  const res = await agent.inject({ method: 'GET', url: `/inbox/list?q=${encodeURIComponent(q)}` })
  return [...new Set([...res.body.matchAll(/data-ticket-id="(\d+)"/g)].map((m) => m[1]))]
}

t.test('export: everything about one customer as a JSON attachment from the profile, any agent', async (t) => {
  const { ada, text, contactOf, post, get, flush, app } = await withAdmin(t)
  const ticketId = await text(PHONE, 'My parcel never arrived')
  await post(ada, `/contacts/${(await contactOf(PHONE)).id}`, { name: 'Mary Jackson', notes: 'Prefers mornings' })
  await post(ada, `/tickets/${ticketId}/replies`, { body: 'Sorry, we will resend it' })
  await post(ada, `/tickets/${ticketId}/notes`, { body: 'Courier lost it' })
  await flush()
  const contact = await contactOf(PHONE)

  const page = await get(ada, `/contacts/${contact.id}`)
  t.match(page.body, new RegExp(`href="/contacts/${contact.id}/export" download`), 'the profile links to the export')
  t.notMatch(page.body, /\/erase"/, 'an agent is not offered the erasure')

  const res = await get(ada, `/contacts/${contact.id}/export`)
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  t.equal(res.headers['content-disposition'], `attachment; filename="textdesk-customer-${contact.id}-2026-01-01.json"`, 'no personal data in the file name')
  const data = res.json()
  t.equal(data.format, 'textdesk.contact-export.v1')
  t.match(data.contact, { id: contact.id, phone: PHONE, name: 'Mary Jackson', notes: 'Prefers mornings', erased: false })
  t.same(data.numbers.map((n: { number: string }) => n.number), [PHONE])
  t.equal(data.tickets.length, 1)
  const [ticket] = data.tickets
  t.ok(ticket.messages.some((m: { body: string, direction: string }) => m.body === 'My parcel never arrived' && m.direction === 'inbound'))
  t.ok(ticket.messages.some((m: { body: string, direction: string }) => m.body === 'Sorry, we will resend it' && m.direction === 'outbound'))
  t.same(ticket.notes.map((n: { body: string }) => n.body), ['Courier lost it'])
  t.same(data.profile_changes.map((c: { field: string }) => c.field).sort(), ['name', 'notes'])

  t.equal((await get(ada, '/contacts/999/export')).statusCode, 404, 'an unknown customer')
  t.equal((await get(ada, '/contacts/abc/export')).statusCode, 404, 'not a customer number')
  t.equal((await app.inject({ method: 'GET', url: `/contacts/${contact.id}/export` })).statusCode, 401, 'signed out')
})

t.test('erase: admins only, confirmed twice, nothing changes without the second confirmation', async (t) => {
  const { ada, grace, text, contactOf, post, get, app } = await withAdmin(t)
  await text(PHONE, 'My parcel never arrived')
  const contact = await contactOf(PHONE)

  t.equal((await get(ada, `/contacts/${contact.id}/erase`)).statusCode, 403, 'an agent cannot open the confirmation')
  const byAgent = await post(ada, `/contacts/${contact.id}/erase`, { confirm: 'ERASE' })
  t.equal(byAgent.statusCode, 403)
  t.match(byAgent.body, /Only an admin can erase a customer/)
  t.equal((await get(grace, '/admin/audit')).statusCode, 200)
  t.equal((await get(ada, '/admin/audit')).statusCode, 403, 'the audit log is for admins')

  t.equal((await get(grace, '/contacts/999/erase')).statusCode, 404)
  t.equal((await post(grace, '/contacts/999/erase', { confirm: 'ERASE' })).statusCode, 404, 'an unknown customer')

  const profile = await get(grace, `/contacts/${contact.id}`)
  t.match(profile.body, new RegExp(`href="/contacts/${contact.id}/erase"`), 'an admin is offered the erasure')
  const confirmPage = await get(grace, `/contacts/${contact.id}/erase`)
  t.equal(confirmPage.statusCode, 200, 'first confirmation: a page saying what will happen')
  t.match(confirmPage.body, /type <strong>ERASE<\/strong> or the customer's number/)

  for (const confirm of ['', 'erase please', '+31600000000']) {
    const res = await post(grace, `/contacts/${contact.id}/erase`, { confirm })
    t.equal(res.statusCode, 422, `"${confirm}" is not the second confirmation`)
    t.match(res.body, /To erase, type ERASE or the customer(&#x27;|')s number \(\+31612345678\) exactly\. Nothing was erased\./)
  }
  const missing = await grace.inject({ method: 'POST', url: `/contacts/${contact.id}/erase`, headers: { 'content-type': 'application/json' }, payload: {} })
  t.equal(missing.statusCode, 422, 'no confirmation at all')
  t.same(await contactOf(PHONE), contact, 'nothing changed')
  t.equal((await app.services.db.selectFrom('audit_log').selectAll().execute()).length, 0, 'nothing recorded')
  t.same(await searchHits(ada, 'parcel'), [String((await app.services.db.selectFrom('tickets').select('id').executeTakeFirstOrThrow()).id)], 'still found')

  const done = await post(grace, `/contacts/${contact.id}/erase`, { confirm: '+31 6 1234 5678' })
  t.equal(done.statusCode, 303, 'the number, as a person types it, confirms too')
  t.equal(done.headers.location, `/contacts/${contact.id}?erased=1`)
  const again = await post(grace, `/contacts/${contact.id}/erase`, { confirm: 'ERASE' })
  t.equal(again.statusCode, 409, 'erased once')
})

t.test('erase: personal data replaced, counts and statuses kept, search forgets, audit records', async (t) => {
  const { ada, grace, text, contactOf, post, get, flush, app } = await withAdmin(t)
  const { db } = app.services
  const ticketId = await text(PHONE, 'Zebrafish delivery please')
  await post(ada, `/contacts/${(await contactOf(PHONE)).id}`, { name: 'Mary Jackson', notes: 'Lives at Main Street 1' })
  await post(ada, `/tickets/${ticketId}/replies`, { body: 'Your zebrafish ships Monday' })
  await post(ada, `/tickets/${ticketId}/notes`, { body: 'Aquarium customer' })
  await post(ada, `/tickets/${ticketId}/addresses`, { channel: 'whatsapp', address: OTHER })
  await flush()
  const otherTicket = await text('+31611111111', 'Zebrafish for me too')
  const contact = await contactOf(PHONE)
  const before = await db.selectFrom('messages').select(['id', 'status', 'price_amount', 'direction', 'kind']).where('ticket_id', '=', ticketId).orderBy('id').execute()
  const ticketBefore = await db.selectFrom('tickets').select(['message_count', 'status']).where('id', '=', ticketId).executeTakeFirstOrThrow()
  t.same((await searchHits(ada, 'zebrafish')).sort(), [String(ticketId), String(otherTicket)].sort())

  t.equal((await post(grace, `/contacts/${contact.id}/erase`, { confirm: 'ERASE' })).statusCode, 303)

  const erased = await db.selectFrom('contacts').selectAll().where('id', '=', contact.id).executeTakeFirstOrThrow()
  t.equal(erased.name, '[erased]')
  t.equal(erased.notes, null)
  t.match(erased.phone, new RegExp(`^erased\\(${contact.id}:[0-9a-f]{32}\\)$`), 'the number is a keyed hash')
  t.notOk(erased.phone.includes('12345678'))
  t.ok(erased.erased_at)
  t.same(await db.selectFrom('contact_addresses').selectAll().where('contact_id', '=', contact.id).execute(), [], 'extra addresses gone')
  t.same((await db.selectFrom('contact_numbers').select('number').where('contact_id', '=', contact.id).execute()).map((r) => r.number), [erased.phone])
  const after = await db.selectFrom('messages').select(['id', 'status', 'price_amount', 'direction', 'kind', 'body', 'from_address', 'to_address']).where('ticket_id', '=', ticketId).orderBy('id').execute()
  t.same(after.map(({ body: _b, from_address: _f, to_address: _t, ...m }) => m), before, 'every message row, status and price stays')
  t.ok(after.every((m) => m.body === '[erased]'), 'every text replaced')
  t.notOk(JSON.stringify(after).includes(PHONE), 'no number left on the messages')
  t.same(await db.selectFrom('tickets').select(['message_count', 'status']).where('id', '=', ticketId).executeTakeFirstOrThrow(), ticketBefore, 'counts stay')
  t.same((await db.selectFrom('notes').select('body').where('ticket_id', '=', ticketId).execute()).map((n) => n.body), ['[erased]'])
  t.same(await searchHits(ada, 'zebrafish'), [String(otherTicket)], 'full-text search no longer finds the erased texts')
  t.same(await searchHits(ada, 'aquarium'), [], 'nor the notes')
  t.same(await searchHits(ada, '5678'), [], 'nor the number by its last digits')

  const profile = await get(grace, `/contacts/${contact.id}`)
  t.match(profile.body, /personal data was erased on/)
  t.notMatch(profile.body, /Mary Jackson|Main Street|\+31612345678/)
  const audit = await get(grace, '/admin/audit')
  t.match(audit.body, new RegExp(`Grace Admin erased customer ${contact.id} \\(1 tickets, \\d+ messages\\)`))

  const exported = (await get(ada, `/contacts/${contact.id}/export`)).json()
  t.match(exported.contact, { erased: true, name: '[erased]', phone: erased.phone, notes: null })
  t.ok(exported.tickets[0].messages.every((m: { body: string }) => m.body === '[erased]'), 'the export of an erased customer shows erased')
  t.notOk(JSON.stringify(exported).includes('Zebrafish') || JSON.stringify(exported).includes('Mary'), 'nothing of theirs left in it')
})

t.test('an erased number that had opted out stays opted out: STOP, a text, the API, a queued reply', async (t) => {
  const { ada, grace, text, contactOf, post, flush, sent, app, services } = await withAdmin(t)
  const ticketId = await text(PHONE, 'Hello')
  await text(PHONE, 'STOP')
  await flush()
  const old = await contactOf(PHONE)
  t.ok(old.opted_out_at)
  t.equal((await post(grace, `/contacts/${old.id}/erase`, { confirm: 'ERASE' })).statusCode, 303)
  sent.length = 0

  await text(PHONE, 'STOP')
  await flush()
  const fresh = await contactOf(PHONE)
  t.not(fresh.id, old.id, 'a new contact: the erased one keeps nothing of the number')
  t.equal(fresh.opted_out_at, old.opted_out_at, 'found the opt-out through the hash')
  t.same(sent, [], 'STOP is not confirmed twice')
  await text(PHONE, 'Is anyone there?')
  await flush()
  t.same(sent, [], 'no confirmation to an opted-out number')

  const api = await apiClient(app, services)
  const refused = await api.post('/api/v1/messages', { to: PHONE.slice(1), text: 'Your order shipped' })
  t.equal(refused.statusCode, 409, 'the API refuses the number')

  // A reply on the erased customer's ticket has no number left to go to: stored as blocked.
  await post(ada, `/tickets/${ticketId}/replies`, { body: 'Are you still there?' })
  await flush()
  t.same(sent, [], 'nothing sent')
  const reply = await app.services.db.selectFrom('messages').select('status').where('ticket_id', '=', ticketId).where('kind', '=', 'reply').executeTakeFirstOrThrow()
  t.equal(reply.status, 'blocked')
})

t.test('the API and "New message" refuse an erased number that had opted out, before it texts again', async (t) => {
  const { ada, grace, text, contactOf, post, flush, sent, app, services } = await withAdmin(t)
  await text(PHONE, 'STOP')
  await flush()
  await post(grace, `/contacts/${(await contactOf(PHONE)).id}/erase`, { confirm: 'ERASE' })
  sent.length = 0
  const api = await apiClient(app, services)
  const refused = await api.post('/api/v1/messages', { to: PHONE.slice(1), text: 'Your order shipped' })
  t.equal(refused.statusCode, 409)
  t.equal(refused.json().error, 'RECIPIENT_OPTED_OUT')
  const page = await ada.inject({ method: 'GET', url: '/conversations/new', headers: { accept: 'text/html' } })
  const token = /name="token" value="([^"]+)"/.exec(page.body)?.[1] ?? ''
  const started = await post(ada, '/conversations', { number: PHONE, body: 'Hello from support', token })
  t.equal(started.statusCode, 422)
  t.match(started.body, /can(&#x27;|')t be messaged until it texts START/)
  await flush()
  t.same(sent, [], 'nothing sent')
})

t.test('an erased number that had not opted out is a new customer who may be messaged', async (t) => {
  const { grace, text, contactOf, post, flush, sent } = await withAdmin(t)
  await text(PHONE, 'Hello')
  const old = await contactOf(PHONE)
  await post(grace, `/contacts/${old.id}/erase`, { confirm: 'ERASE' })
  sent.length = 0
  await text(PHONE, 'Hello again')
  await flush()
  t.equal((await contactOf(PHONE)).opted_out_at, null)
  t.equal(sent.length, 1, 'the new ticket is confirmed')
})

t.test('a reply queued before the erasure is not sent after it', async (t) => {
  const { ada, grace, text, contactOf, post, flush, sent, app } = await withAdmin(t)
  const ticketId = await text(PHONE, 'Hello')
  await flush()
  sent.length = 0
  t.equal((await post(ada, `/tickets/${ticketId}/replies`, { body: 'We are on it' })).statusCode, 303)
  await post(grace, `/contacts/${(await contactOf(PHONE)).id}/erase`, { confirm: 'ERASE' })
  await flush()
  t.same(sent, [], 'the worker blocks it')
  const reply = await app.services.db.selectFrom('messages').select(['status', 'body']).where('ticket_id', '=', ticketId).where('kind', '=', 'reply').executeTakeFirstOrThrow()
  t.same(reply, { status: 'blocked', body: '[erased]' })
})

t.test('API export: only customers the key has messaged; bad numbers are 422', async (t) => {
  const { text, app, services } = await withAdmin(t)
  const bakery = await apiClient(app, services, 'bakery')
  const florist = await apiClient(app, services, 'florist')
  t.equal((await bakery.post('/api/v1/messages', { to: PHONE.slice(1), text: 'Your cupcakes are ready' })).statusCode, 202)
  await text(PHONE, 'Thanks!')

  const res = await bakery.get(`/api/v1/contacts/export?number=${encodeURIComponent(PHONE)}`)
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-disposition'], /^attachment; filename="textdesk-customer-\d+-2026-01-01\.json"$/)
  const data = res.json()
  t.equal(data.contact.phone, PHONE)
  t.ok(data.tickets[0].messages.some((m: { body: string }) => m.body === 'Thanks!'))

  const other = await florist.get(`/api/v1/contacts/export?number=${encodeURIComponent(PHONE)}`)
  t.equal(other.statusCode, 404, 'another key that never messaged them')
  const nobody = await bakery.get('/api/v1/contacts/export?number=%2B31612340000')
  t.equal(nobody.statusCode, 404)
  t.same({ ...other.json(), message: '' }, { ...nobody.json(), message: '' }, 'the same answer as for a number nobody has')
  t.equal((await bakery.get('/api/v1/contacts/export?number=hello')).statusCode, 422)
  t.equal((await bakery.get('/api/v1/contacts/export')).statusCode, 422)
  t.equal((await app.inject({ method: 'GET', url: `/api/v1/contacts/export?number=${PHONE}` })).statusCode, 401)
  const doc = (await app.inject({ method: 'GET', url: '/api/openapi.json' })).json()
  t.match(doc.paths['/api/v1/contacts/export'].get.description, /Scope: an API key exports only customers it has sent at least one message to/)
})

t.test('retention: RETENTION_DAYS erases message texts of tickets closed longer ago, as the system', async (t) => {
  const { ada, text, post, flush, clock, app, get } = await withAdmin(t, { RETENTION_DAYS: '30' })
  const { db, privacy } = app.services
  const oldTicket = await text(PHONE, 'Quokka question')
  await flush()
  t.equal((await post(ada, `/tickets/${oldTicket}/status`, { status: 'closed' })).statusCode, 303)
  clock.advance(20 * 86_400_000)
  const newTicket = await text(OTHER, 'Quokka answer')
  await post(ada, `/tickets/${newTicket}/status`, { status: 'closed' })
  const openTicket = await text('+31611111111', 'Quokka open')

  t.equal(await privacy.applyRetention(), 0, 'nothing closed 30 days ago yet')
  clock.advance(11 * 86_400_000)
  t.equal(await privacy.applyRetention(), 1)
  // Sessions expire by the same clock: sign in again.
  const adaNow = { ...ada, ...await signIn(app, 'ada@example.com') }
  const graceNow = await signIn(app, 'grace@example.com')
  const texts = async (id: number) => (await db.selectFrom('messages').select('body').where('ticket_id', '=', id).execute()).map((m) => m.body)
  t.ok((await texts(oldTicket)).every((b) => b === '[erased]'), 'the old ticket\'s texts are erased')
  t.ok((await texts(newTicket)).includes('Quokka answer'), 'a ticket closed 11 days ago keeps them')
  t.ok((await texts(openTicket)).includes('Quokka open'))
  t.same((await searchHits(adaNow, 'quokka')).sort(), [String(newTicket), String(openTicket)].sort(), 'search forgets the erased texts')
  t.equal(await privacy.applyRetention(), 0, 'done once')
  const audit = await get({ ...adaNow, ...graceNow }, '/admin/audit')
  t.match(audit.body, new RegExp(`The system erased the message texts of ticket #${oldTicket}`))
})

t.test('RETENTION_DAYS is validated', async (t) => {
  const { loadConfig } = await import('../../src/config.js')
  t.throws(() => loadConfig({ RETENTION_DAYS: 'soon' }), /RETENTION_DAYS must be a whole number/)
  t.throws(() => loadConfig({ RETENTION_DAYS: '-1' }), /RETENTION_DAYS must be between 0/)
  t.equal(loadConfig({}).privacy.retentionDays, 0, 'off by default')
})

t.test('an erased customer cannot be merged, either way round: refused with the reason, nothing changes', async (t) => {
  const { grace, text, contactOf, post, app } = await withAdmin(t)
  const byId = async (id: number) => await app.services.db.selectFrom('contacts').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
  await text(PHONE, 'My parcel never arrived')
  await text('+31687654321', 'Hello from my other phone')
  const erased = await contactOf(PHONE)
  const other = await contactOf('+31687654321')
  t.equal((await post(grace, `/contacts/${erased.id}/erase`, { confirm: 'ERASE' })).statusCode, 303)
  const erasedAfter = await byId(erased.id)
  for (const [keep, gone] of [[other.id, erased.id], [erased.id, other.id]]) {
    const res = await post(grace, `/contacts/${keep}/merge`, { other: String(gone) })
    t.equal(res.statusCode, 422, `merging ${gone} into ${keep}`)
    t.match(res.body, new RegExp(`Customer ${erased.id} was erased: an erased customer cannot be merged\\.`))
  }
  t.same(await byId(other.id), other, 'the other customer is unchanged')
  t.same(await byId(erased.id), erasedAfter, 'the erased customer is unchanged')
})
