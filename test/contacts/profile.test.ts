import t from 'tap'
import { eventsDelivered, isMarker } from '../helper.js'
import { FORM, HTML, setup } from './helpers.js'

const PHONE = '+31612345678'

t.test('the profile: name and notes saved with who and when; the name replaces the number in the list and the ticket', async (t) => {
  const { ada, text, contactOf, post, get, clock, services } = await setup(t)
  const ticketId = await text(PHONE, 'Where is my parcel?')
  // Only what follows: the webhook's own event may still be on its way (through NOTIFY on PostgreSQL).
  await eventsDelivered(services.events)
  const published: unknown[] = []
  services.events.subscribe((e) => { if (e.name === 'ticket' && !isMarker(e)) published.push(e.data) })
  const contact = await contactOf(PHONE)

  const ticketPage = await get(ada, `/tickets/${ticketId}`)
  t.match(ticketPage.body, new RegExp(`<a href="/contacts/${contact.id}">Customer profile</a>`), 'the ticket links to the profile')
  const list = await get(ada, '/inbox?view=open')
  t.match(list.body, new RegExp(`<a class="profile-link" href="/contacts/${contact.id}"`), 'the list links to the profile')
  t.match(list.body, /href="\/conversations\/new">New message<\/a>/, 'the inbox has "New message"')

  let page = await get(ada, `/contacts/${contact.id}`)
  t.equal(page.statusCode, 200)
  t.match(page.body, /<h1>\+31612345678/, 'no name yet: the number')
  t.match(page.body, /SMS \+31612345678 <span class="muted">\(their main number\)/)
  t.match(page.body, /They have never texted STOP/)
  t.match(page.body, new RegExp(`<a href="/tickets/${ticketId}">#${ticketId}</a>`))
  t.match(page.body, new RegExp(`href="/conversations/new\\?contact=${contact.id}"`), 'New message for this customer')

  clock.advance(60_000)
  const saved = await post(ada, `/contacts/${contact.id}`, { name: '  Grace Hopper  ', notes: 'Prefers texts after 17:00.\r\nVIP.' })
  t.equal(saved.statusCode, 303)
  t.equal(saved.headers.location, `/contacts/${contact.id}?saved=1`)
  const row = await contactOf(PHONE)
  t.equal(row.name, 'Grace Hopper', 'trimmed')
  t.equal(row.notes, 'Prefers texts after 17:00.\nVIP.')
  t.equal(row.notes_updated_by, ada.id)
  t.equal(row.notes_updated_at, '2026-01-01T09:01:01.000Z')
  await eventsDelivered(services.events)
  t.same(published.filter((e) => (e as { change: string }).change !== 'read'), [{ ticketId, change: 'contact' }], 'open lists refetch: the name is what they show')

  page = await get(ada, `/contacts/${contact.id}?saved=1`)
  t.match(page.body, /<h1>Grace Hopper <span class="muted">\+31612345678<\/span><\/h1>/)
  t.match(page.body, /Saved\./)
  t.match(page.body, /Last edited by Ada Lovelace, <time datetime="2026-01-01T09:01:01.000Z">/)
  t.match(page.body, /Ada Lovelace set the name to “Grace Hopper”/)
  t.match(page.body, /Ada Lovelace edited the notes/)

  const inbox = await get(ada, '/inbox?view=open')
  t.match(inbox.body, new RegExp(`<a href="/tickets/${ticketId}\\?view=open">Grace Hopper</a>`), 'the list shows the name')
  const ticket = await get(ada, `/tickets/${ticketId}`)
  t.match(ticket.body, /<h1>Grace Hopper <span class="muted">#/, 'the ticket header shows the name')
  t.match(ticket.body, /\+31612345678 · <a href="\/contacts\//, 'with the number beside it')
  t.match(ticket.body, /<div class="bubble">Where is my parcel\?<\/div>\s*<div class="msg-meta">\s*Grace Hopper\s*·/, 'the customer\'s messages carry their name')
  const fragment = await ada.inject({ method: 'GET', url: `/tickets/${ticketId}/timeline` })
  t.match(fragment.body, /<div class="msg-meta">\s*Grace Hopper\s*·/, 'in the refetched timeline too')

  // Saving again unchanged records nothing new; clearing the name brings the number back.
  await post(ada, `/contacts/${contact.id}`, { name: 'Grace Hopper', notes: 'Prefers texts after 17:00.\nVIP.' })
  await post(ada, `/contacts/${contact.id}`, { name: '', notes: 'Prefers texts after 17:00.\nVIP.' })
  page = await get(ada, `/contacts/${contact.id}`)
  t.match(page.body, /Ada Lovelace removed the name/)
  t.equal([...page.body.matchAll(/<li><time[^>]*>[^<]*<\/time> · Ada Lovelace/g)].length, 3, 'three changes: name, notes, name removed')
  t.match((await get(ada, '/inbox?view=open')).body, new RegExp(`<a href="/tickets/${ticketId}\\?view=open">\\+31612345678</a>`))
})

t.test('bad input: each refused with 422, the message in words and the form as typed; nothing saved', async (t) => {
  const { ada, text, contactOf, post } = await setup(t)
  await text(PHONE, 'hello')
  const { id } = await contactOf(PHONE)
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ name: 'x'.repeat(101), notes: 'kept' }, /The name is 101 characters long; the limit is 100/],
    [{ name: 'Grace\nHopper', notes: 'kept' }, /The name contains a control character \(U\+000A\)/],
    [{ name: 'Grace\u0007', notes: 'kept' }, /control character \(U\+0007\)/],
    [{ name: 'Grace', notes: 'n'.repeat(4001) }, /The notes are 4001 characters long; the limit is 4000/],
    [{ name: 'Grace', notes: 'bell \u0007' }, /The notes contain a control character \(U\+0007\)/]
  ]
  for (const [fields, message] of cases) {
    const res = await post(ada, `/contacts/${id}`, fields)
    t.equal(res.statusCode, 422, JSON.stringify(fields).slice(0, 60))
    t.match(res.body, message)
    t.match(res.body, /<p class="error" role="alert" id="profile-error">/)
    t.ok(res.body.includes(`name="name" value="${fields.name}"`), 'the name as typed')
    t.ok(res.body.includes(`>${fields.notes}</textarea>`), 'the notes as typed')
  }
  const row = await contactOf(PHONE)
  t.equal(row.name, null)
  t.equal(row.notes, null)
  // A JSON client gets the refusal as JSON.
  const json = await ada.inject({ method: 'POST', url: `/contacts/${id}`, headers: { ...FORM, accept: 'application/json' }, payload: 'name=' + 'y'.repeat(101) })
  t.equal(json.statusCode, 422)
  t.equal(json.json().details[0].field, 'name')
})

t.test('consent history: STOP and START from the webhooks, newest first, with dates', async (t) => {
  const { ada, text, contactOf, get } = await setup(t)
  const ticketId = await text(PHONE, 'hello')
  await text(PHONE, 'STOP')
  const { id } = await contactOf(PHONE)
  let page = await get(ada, `/contacts/${id}`)
  t.match(page.body, /<span class="badge failed">opted out since <time datetime="2026-01-01T09:00:02.000Z">/)
  t.match(page.body, /Opted out: this customer texted STOP on <time datetime="2026-01-01T09:00:02.000Z">2026-01-01 09:00 UTC<\/time>/)
  await text(PHONE, 'START')
  await text(PHONE, 'STOP')
  page = await get(ada, `/contacts/${id}`)
  const history = [...page.body.matchAll(/<li data-kind="(opt_\w+)"><time datetime="([^"]+)">/g)].map((m) => `${m[1]} ${m[2]}`)
  t.same(history, ['opt_out 2026-01-01T09:00:04.000Z', 'opt_in 2026-01-01T09:00:03.000Z', 'opt_out 2026-01-01T09:00:02.000Z'], 'newest first')
  t.match(page.body, new RegExp(`Texted START: opted back in <span class="muted">\\(on <a href="/tickets/${ticketId}">#${ticketId}</a>\\)`))
})

t.test('all their tickets, and their failover addresses', async (t) => {
  const { ada, text, contactOf, post, get } = await setup(t)
  const first = await text(PHONE, 'first question')
  await post(ada, `/tickets/${first}/status`, { status: 'closed' })
  const second = await text(PHONE, 'second question')
  t.not(first, second)
  await post(ada, `/tickets/${second}/addresses`, { channel: 'whatsapp', address: '+31687654321' })
  await text('+31611111111', 'someone else')
  const { id } = await contactOf(PHONE)
  const page = await get(ada, `/contacts/${id}`)
  const rows = [...page.body.matchAll(/<tr data-ticket-id="(\d+)">/g)].map((m) => Number(m[1]))
  t.same(rows, [second, first], 'their tickets only, latest activity first')
  t.match(page.body, /<span class="badge closed">Closed<\/span>/)
  t.match(page.body, /second question/)
  t.match(page.body, /WhatsApp \+31687654321/)
})

t.test('unknown customers: the 404 page; anonymous: sign-in redirect or 401; no CSRF token: 403', async (t) => {
  const { app, ada, text, contactOf, get } = await setup(t)
  await text(PHONE, 'hello')
  const { id } = await contactOf(PHONE)
  for (const url of ['/contacts/999', '/contacts/abc', '/contacts/0']) {
    const res = await get(ada, url)
    t.equal(res.statusCode, 404, url)
    t.match(res.body, /<title>Not found · Textdesk<\/title>/)
    t.match(res.body, /There is no customer/)
  }
  const post404 = await ada.inject({ method: 'POST', url: '/contacts/999', headers: { ...FORM, ...HTML }, payload: 'name=X' })
  t.equal(post404.statusCode, 404)
  const anonymous = await app.inject({ method: 'GET', url: `/contacts/${id}`, headers: HTML })
  t.equal(anonymous.statusCode, 303)
  t.equal(anonymous.headers.location, `/login?next=${encodeURIComponent(`/contacts/${id}`)}`)
  const anonymousPost = await app.inject({ method: 'POST', url: `/contacts/${id}`, headers: FORM, payload: 'name=Mallory' })
  t.equal(anonymousPost.statusCode, 401)
  const noToken = await app.inject({ method: 'POST', url: `/contacts/${id}`, headers: { ...FORM, ...HTML, cookie: ada.cookie }, payload: 'name=Mallory' })
  t.equal(noToken.statusCode, 403)
  t.equal((await contactOf(PHONE)).name, null, 'nothing changed')
})
