import t from 'tap'
import { FORM, formToken, HTML, setup } from './helpers.js'

const PHONE = '+31612345678'

t.test('to a new number: typed as a person writes it, a ticket opened and assigned to the agent, the message queued and sent, no confirmation', async (t) => {
  const { ada, db, get, post, sent, flush, services } = await setup(t)
  const form = await get(ada, '/conversations/new')
  t.equal(form.statusCode, 200)
  t.match(form.body, /<form method="post" action="\/conversations" class="new-conversation">/)
  t.match(form.body, /<textarea id="conversation-body" name="body" rows="5" data-sms-counter="conversation-counter" data-max-length="1600"/, 'the composer counter hooks')
  const res = await post(ada, '/conversations', { number: '0031 6 1234 5678', body: 'Hello from Textdesk: your parcel is ready.', token: formToken(form.body) })
  t.equal(res.statusCode, 303)
  const ticket = await db.selectFrom('tickets').innerJoin('contacts', 'contacts.id', 'tickets.contact_id').selectAll('tickets').select('contacts.phone').executeTakeFirstOrThrow()
  t.equal(res.headers.location, `/tickets/${ticket.id}`)
  t.equal(ticket.phone, PHONE, 'normalised to E.164')
  t.equal(ticket.status, 'pending', 'waiting on the customer')
  t.equal(ticket.assignee_id, ada.id, 'assigned to whoever started it')
  t.equal(ticket.last_sender, 'agent')
  const messages = await db.selectFrom('messages').selectAll().execute()
  t.same(messages.map((m) => [m.kind, m.status, m.to_address, m.agent_id]), [['reply', 'queued', PHONE, ada.id]], 'one message, queued; no confirmation')
  t.equal((await db.selectFrom('outbox').selectAll().execute()).length, 1, 'through the outbox')
  await flush()
  t.same(sent.map((s) => [s.to, s.body]), [[PHONE, 'Hello from Textdesk: your parcel is ready.']], 'the worker sent it, once, and nothing else')
  t.equal((await db.selectFrom('messages').select('status').executeTakeFirstOrThrow()).status, 'delivered')
  const page = await get(ada, `/tickets/${ticket.id}`)
  t.match(page.body, /Hello from Textdesk: your parcel is ready\./, 'in the thread')
  t.match(page.body, /Ada Lovelace took this/)
  t.equal((await services.tickets.counts(ada.id)).pending, 1, 'the view counts follow')
})

t.test('to an existing contact with an open ticket: joins it, from the profile link (?contact=)', async (t) => {
  const { ada, db, get, post, text, contactOf, flush, sent } = await setup(t)
  const ticketId = await text(PHONE, 'Is my order on its way?')
  await flush()
  const { id } = await contactOf(PHONE)
  await post(ada, `/contacts/${id}`, { name: 'Grace Hopper', notes: '' })
  const form = await get(ada, `/conversations/new?contact=${id}`)
  t.match(form.body, new RegExp(`<option value="${id}" selected>Grace Hopper \\(\\+31612345678\\)</option>`), 'the customer is picked')
  const res = await post(ada, '/conversations', { contact: String(id), number: '', body: 'A follow-up from us', token: formToken(form.body) })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, `/tickets/${ticketId}`, 'their open ticket')
  t.equal((await db.selectFrom('tickets').selectAll().execute()).length, 1, 'no new ticket')
  await flush()
  t.same(sent.map((s) => s.body).slice(-1), ['A follow-up from us'])
  // Typing the number of an existing customer joins their ticket too.
  const again = await get(ada, '/conversations/new')
  const typed = await post(ada, '/conversations', { number: '+31 6 12345678', body: 'And one more', token: formToken(again.body) })
  t.equal(typed.headers.location, `/tickets/${ticketId}`)
  const unknownContact = await get(ada, '/conversations/new?contact=999')
  t.equal(unknownContact.statusCode, 404)
})

t.test('consent first: an opted-out number is refused with 422 and nothing is stored', async (t) => {
  const { ada, db, get, post, text, contactOf, flush, sent } = await setup(t)
  const ticketId = await text(PHONE, 'hello')
  await text(PHONE, 'STOP')
  await flush()
  await ada.inject({ method: 'POST', url: `/tickets/${ticketId}/close`, headers: FORM, payload: '' })
  const before = {
    messages: (await db.selectFrom('messages').selectAll().execute()).length,
    tickets: (await db.selectFrom('tickets').selectAll().execute()).length,
    sent: sent.length
  }
  const form = await get(ada, '/conversations/new')
  t.match(form.body, /<option value="\d+">\+31612345678 · opted out<\/option>/, 'the picker says so')
  const res = await post(ada, '/conversations', { number: '+31612345678', body: 'Special offer!', token: formToken(form.body) })
  t.equal(res.statusCode, 422)
  t.match(res.body, /This number replied STOP on 2026-01-01 09:00 UTC; it can&#x27;t be messaged until it texts START\./)
  t.match(res.body, />Special offer!<\/textarea>/, 'the text kept')
  const { id } = await contactOf(PHONE)
  const picked = await post(ada, '/conversations', { contact: String(id), body: 'Special offer!', token: formToken(form.body) })
  t.equal(picked.statusCode, 422, 'picked from the list: the same')
  await flush()
  t.equal((await db.selectFrom('messages').selectAll().execute()).length, before.messages, 'no message stored, not even a blocked one')
  t.equal((await db.selectFrom('tickets').selectAll().execute()).length, before.tickets, 'no ticket opened')
  t.equal((await db.selectFrom('outbox').selectAll().execute()).length, 0)
  t.equal((await db.selectFrom('conversation_tokens').selectAll().execute()).length, 0, 'the token was not spent')
  t.equal(sent.length, before.sent, 'nothing sent')
  // After START the same form goes through.
  await text(PHONE, 'START')
  const ok = await post(ada, '/conversations', { contact: String(id), body: 'Special offer!', token: formToken(form.body) })
  t.equal(ok.statusCode, 303)
})

t.test('bad input: number, text, token; each a 422 naming the problem, nothing stored', async (t) => {
  const { ada, db, get, post } = await setup(t)
  const token = formToken((await get(ada, '/conversations/new')).body)
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ number: '', body: 'hi', token }, /Enter the customer&#x27;s phone number/],
    [{ number: 'call me maybe', body: 'hi', token }, /&quot;call me maybe&quot; is not a valid phone number; use international format with country code/],
    [{ number: '+999 123', body: 'hi', token }, /is not a valid phone number/],
    [{ number: '+31612345678', body: '   ', token }, /The message is empty/],
    [{ number: '+31612345678', body: 'x'.repeat(1601), token }, /The message is 1601 characters long; the limit is 1600/],
    [{ number: '+31612345678', body: 'x'.repeat(500), token }, /This reply is 4 SMS parts \(GSM-7\)/],
    [{ number: '+31612345678', body: 'hi', token: '' }, /lost its one-time token/],
    [{ contact: '12abc', body: 'hi', token }, /There is no customer 12abc to message/],
    [{ contact: '999', body: 'hi', token }, /There is no customer 999 to message/]
  ]
  for (const [fields, message] of cases) {
    const res = await post(ada, '/conversations', fields)
    t.equal(res.statusCode, 422, JSON.stringify(fields).slice(0, 70))
    t.match(res.body, message)
    if (fields.number !== undefined) t.ok(res.body.includes(`value="${fields.number}"`), 'the number as typed')
  }
  const parts = await post(ada, '/conversations', { number: '+31612345678', body: 'x'.repeat(500), token })
  t.match(parts.body, /<button type="submit" name="confirm_parts" value="1" class="warn">Send all parts<\/button>/)
  t.equal((await db.selectFrom('messages').selectAll().execute()).length, 0)
  t.equal((await db.selectFrom('contacts').selectAll().execute()).length, 0)
  const confirmed = await post(ada, '/conversations', { number: '+31612345678', body: 'x'.repeat(500), token, confirm_parts: '1' })
  t.equal(confirmed.statusCode, 303, 'confirmed: sent')
  const json = await ada.inject({ method: 'POST', url: '/conversations', headers: { ...FORM, accept: 'application/json' }, payload: 'number=nope&body=hi&token=' + 'a'.repeat(24) })
  t.equal(json.statusCode, 422)
  t.equal(json.json().details[0].field, 'number')
})

t.test('a double submit sends once: the second answers with the first one\'s ticket', async (t) => {
  const { ada, db, get, post, flush, sent } = await setup(t)
  const token = formToken((await get(ada, '/conversations/new')).body)
  const fields = { number: '+31612345678', body: 'Only once, please', token }
  // Both at once, as a double click sends them.
  const [a, b] = await Promise.all([post(ada, '/conversations', fields), post(ada, '/conversations', fields)])
  t.equal(a.statusCode, 303)
  t.equal(b.statusCode, 303)
  t.equal(a.headers.location, b.headers.location, 'both land on the same ticket')
  const third = await post(ada, '/conversations', fields)
  t.equal(third.headers.location, a.headers.location, 'a resubmitted page too')
  await flush()
  t.equal((await db.selectFrom('messages').selectAll().execute()).length, 1)
  t.same(sent.map((s) => s.body), ['Only once, please'])
  // A fresh form is a new message.
  const next = formToken((await get(ada, '/conversations/new')).body)
  t.not(next, token)
  await post(ada, '/conversations', { ...fields, token: next })
  await flush()
  t.equal(sent.length, 2)
})

t.test('anonymous: sign-in redirect for the page, 401 for the action; no CSRF token: 403', async (t) => {
  const { app, ada, db } = await setup(t)
  const page = await app.inject({ method: 'GET', url: '/conversations/new', headers: HTML })
  t.equal(page.statusCode, 303)
  t.match(page.headers.location, /^\/login\?next=/)
  const action = await app.inject({ method: 'POST', url: '/conversations', headers: FORM, payload: 'number=%2B31612345678&body=hi&token=' + 'a'.repeat(24) })
  t.equal(action.statusCode, 401)
  const noCsrf = await app.inject({ method: 'POST', url: '/conversations', headers: { ...FORM, ...HTML, cookie: ada.cookie }, payload: 'number=%2B31612345678&body=hi&token=' + 'a'.repeat(24) })
  t.equal(noCsrf.statusCode, 403)
  t.equal((await db.selectFrom('messages').selectAll().execute()).length, 0)
})

t.test('with DEFAULT_COUNTRY, a national number is read as that country\'s; without it, it is refused', async (t) => {
  const nl = await setup(t, { DEFAULT_COUNTRY: 'NL' })
  const res = await nl.post(nl.ada, '/conversations', { number: '06-1234 5678', body: 'Hello', token: formToken((await nl.get(nl.ada, '/conversations/new')).body) })
  t.equal(res.statusCode, 303)
  t.equal((await nl.db.selectFrom('contacts').select('phone').executeTakeFirstOrThrow()).phone, PHONE)
  const none = await setup(t)
  const refused = await none.post(none.ada, '/conversations', { number: '06-1234 5678', body: 'Hello', token: formToken((await none.get(none.ada, '/conversations/new')).body) })
  t.equal(refused.statusCode, 422)
  t.match(refused.body, /is not a valid phone number; use international format with country code/)
})
