import t from 'tap'
import type { InjectOptions } from 'fastify'
import { buildTestApp, form, refuseInserts, UNIQUE_VIOLATION } from '../helper.js'

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

async function counts (db: Awaited<ReturnType<typeof buildTestApp>>['db']) {
  const n = async (table: 'tickets' | 'messages' | 'outbox' | 'contacts'): Promise<number> =>
    Number((await db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n)
  return { tickets: await n('tickets'), messages: await n('messages'), outbox: await n('outbox'), contacts: await n('contacts') }
}

t.test('form POST (Flow Builder "Forward to URL"): new ticket, stored message, confirmation queued in the same commit', async (t) => {
  const { app, db } = await buildTestApp(t)
  const res = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: '31612345678', payload: 'Where is my order?', receiver: '3197010260000', id: 'mb-1' }) })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { ok: true, ticket_id: 1, duplicate: false })
  const ticket = await db.selectFrom('tickets').innerJoin('contacts', 'contacts.id', 'tickets.contact_id').selectAll().executeTakeFirstOrThrow()
  t.equal(ticket.phone, '+31612345678', 'sender normalised to E.164')
  t.equal(ticket.status, 'open')
  const messages = await db.selectFrom('messages').selectAll().orderBy('direction').execute()
  t.equal(messages.length, 2)
  const inbound = messages.find((m) => m.direction === 'inbound')
  const confirmation = messages.find((m) => m.direction === 'outbound')
  t.equal(inbound?.body, 'Where is my order?')
  t.equal(inbound?.provider_message_id, 'mb-1')
  t.equal(inbound?.to_address, '+3197010260000')
  t.equal(confirmation?.body, 'Thanks for contacting customer support! Your ticket ID is 1.')
  t.equal(confirmation?.status, 'queued')
  t.equal(confirmation?.to_address, '+31612345678')
  const outbox = await db.selectFrom('outbox').selectAll().execute()
  t.equal(outbox.length, 1)
  t.equal(outbox[0].message_id, confirmation?.id, 'the send is an outbox row, written with the state that caused it')
})

t.test('JSON POST with `body`, and GET with query parameters, are read the same way', async (t) => {
  const { app, db } = await buildTestApp(t)
  const json = await app.inject({ method: 'POST', url: '/webhooks/messagebird', payload: { originator: '31612345678', body: 'JSON hello', id: 'j-1' } })
  t.equal(json.statusCode, 200)
  const get = await app.inject({ method: 'GET', url: '/webhooks/messagebird?' + form({ originator: '31612345678', payload: 'GET hello ça 😀', id: 'g-1' }) })
  t.equal(get.statusCode, 200)
  t.equal(get.json().ticket_id, json.json().ticket_id, 'second message lands on the same open ticket')
  const aliases = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ sender: '+31612345678', message: 'alias fields', recipient: '3197010260000', message_id: 'a-1' }) })
  t.equal(aliases.statusCode, 200)
  const bodies = (await db.selectFrom('messages').select('body').where('direction', '=', 'inbound').orderBy('created_at').orderBy('id').execute()).map((m) => m.body)
  t.same(bodies.sort(), ['GET hello ça 😀', 'JSON hello', 'alias fields'].sort())
  t.same(await counts(db), { tickets: 1, messages: 4, outbox: 1, contacts: 1 }, 'one ticket, one confirmation')
})

t.test('a retried webhook (same provider id) is stored once and confirmed once', async (t) => {
  const { app, db } = await buildTestApp(t)
  const payload = form({ originator: '31612345678', payload: 'Hello', id: 'dup-1' })
  const first = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload })
  const second = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload })
  t.equal(first.statusCode, 200)
  t.equal(second.statusCode, 200, 'the retry is acknowledged so the provider stops retrying')
  t.equal(second.json().duplicate, true)
  t.same(await counts(db), { tickets: 1, messages: 2, outbox: 1, contacts: 1 })
})

t.test('two concurrent first messages from one number open one ticket with one confirmation', async (t) => {
  const { app, db } = await buildTestApp(t)
  const results = await Promise.all(Array.from({ length: 8 }, async (_, i) => await app.inject({
    method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: '31612345678', payload: `burst ${i}`, id: `burst-${i}` })
  })))
  t.ok(results.every((r) => r.statusCode === 200))
  t.equal(new Set(results.map((r) => r.json().ticket_id)).size, 1)
  const c = await counts(db)
  t.equal(c.tickets, 1)
  t.equal(c.messages, 9, '8 inbound + 1 confirmation')
  t.equal(c.outbox, 1)
})

t.test('the database itself refuses a second open ticket for a contact', async (t) => {
  const { app, db } = await buildTestApp(t)
  await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: '31612345678', payload: 'x', id: 'u-1' }) })
  const now = new Date().toISOString()
  await t.rejects(db.insertInto('tickets').values({ contact_id: 1, status: 'open', created_at: now, updated_at: now, last_message_at: now, last_message_preview: '', last_message_direction: 'inbound', message_count: 0 }).execute(), UNIQUE_VIOLATION)
})

t.test('after a ticket is closed, the next SMS opens a new ticket with its own confirmation', async (t) => {
  const { app, db, services } = await buildTestApp(t)
  await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: '31612345678', payload: 'first', id: 'c-1' }) })
  await services.tickets.close(1, null)
  const res = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: '31612345678', payload: 'again', id: 'c-2' }) })
  t.equal(res.json().ticket_id, 2)
  const confirmations = await db.selectFrom('messages').select(['ticket_id', 'body']).where('kind', '=', 'confirmation').orderBy('ticket_id').execute()
  t.same(confirmations, [
    { ticket_id: 1, body: 'Thanks for contacting customer support! Your ticket ID is 1.' },
    { ticket_id: 2, body: 'Thanks for contacting customer support! Your ticket ID is 2.' }
  ])
})

t.test('the confirmation template is configurable', async (t) => {
  const { app, db } = await buildTestApp(t, { env: { CONFIRMATION_TEMPLATE: 'Got it! Ticket {ref}; we reply within 1 hour.' } })
  await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: '31612345678', payload: 'x', id: 'tpl-1' }) })
  const row = await db.selectFrom('messages').select('body').where('kind', '=', 'confirmation').executeTakeFirstOrThrow()
  t.equal(row.body, 'Got it! Ticket 1; we reply within 1 hour.')
})

t.test('bad input gets a clear error and stores nothing', async (t) => {
  const { app, db } = await buildTestApp(t, { env: { BODY_LIMIT_BYTES: '2048' } })
  const cases: Array<{ name: string, req: InjectOptions, status: number, message: RegExp }> = [
    { name: 'missing sender', req: { method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ payload: 'hi' }) }, status: 400, message: /originator/ },
    { name: 'missing text', req: { method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: '31612345678' }) }, status: 400, message: /payload or body/ },
    { name: 'malformed number', req: { method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: '12ab', payload: 'hi' }) }, status: 400, message: /not a valid phone number/ },
    { name: 'number no country issues', req: { method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: '999123456789', payload: 'hi' }) }, status: 400, message: /not a valid phone number/ },
    { name: 'unknown content type', req: { method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'text/plain' }, payload: 'originator=1' }, status: 415, message: /Unsupported content type/ },
    { name: 'invalid JSON', req: { method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/json' }, payload: '{"originator":' }, status: 400, message: /not valid JSON/ },
    { name: 'JSON array', req: { method: 'POST', url: '/webhooks/messagebird', payload: [1, 2] }, status: 400, message: /Expected form fields/ },
    { name: 'oversized body', req: { method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: '31612345678', payload: 'x'.repeat(4096) }) }, status: 413, message: /too large/ }
  ]
  for (const c of cases) {
    const res = await app.inject(c.req)
    t.equal(res.statusCode, c.status, `${c.name}: status`)
    t.match(res.json().message, c.message, `${c.name}: message`)
  }
  t.same(await counts(db), { tickets: 0, messages: 0, outbox: 0, contacts: 0 })
})

t.test('the webhook answers only after commit: a failing database means no 200', async (t) => {
  const { app, db } = await buildTestApp(t)
  await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: '31612345678', payload: 'ok', id: 'f-1' }) })
  // Make the message insert fail inside the transaction; the whole ingest must roll back.
  await refuseInserts(db, 'messages', 'disk on fire')
  const res = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: '31687654321', payload: 'lost?', id: 'f-2' }) })
  t.equal(res.statusCode, 500, 'not acknowledged, so MessageBird retries')
  t.notMatch(res.body, /disk on fire/, 'internal details are not exposed')
  t.same(await counts(db), { tickets: 1, messages: 2, outbox: 1, contacts: 1 }, 'nothing partial was stored')
})

t.test('a sender whose range our numbering metadata does not list is still taken (the provider just received it)', async (t) => {
  const { app, db } = await buildTestApp(t)
  // +44 7700 900xxx is a range libphonenumber marks as not assigned; MessageBird saw a real text from it.
  const res = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: '447700900123', payload: 'hello from the UK', id: 'uk-1' }) })
  t.equal(res.statusCode, 200)
  const contact = await db.selectFrom('contacts').select('phone').executeTakeFirstOrThrow()
  t.equal(contact.phone, '+447700900123')
})

t.test('Conversations API: a WhatsApp photo, file, voice note or location without text is stored as the customer\'s message, never dropped', async (t) => {
  const { app, db } = await buildTestApp(t)
  const received = async (id: string, type: string, content: Record<string, unknown>) => await app.inject({
    method: 'POST',
    url: '/webhooks/messagebird/conversations',
    payload: { type: 'message.created', message: { id, status: 'received', direction: 'received', platform: 'whatsapp', from: '+31612345678', type, content } }
  })
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['image', { image: { url: 'https://media.example.com/p.jpg', caption: ' The broken lid ' } }, '[image] The broken lid'],
    ['file', { file: { url: 'https://media.example.com/invoice.pdf' } }, '[file]'],
    ['audio', { audio: { url: 'https://media.example.com/v.ogg' } }, '[audio]'],
    ['location', { location: { latitude: 52.3676, longitude: 4.9041 } }, '[location 52.3676, 4.9041]']
  ]
  let ticketId: number | undefined
  for (const [type, content, body] of cases) {
    const res = await received(`wa-${type}`, type, content)
    t.equal(res.statusCode, 200, type)
    const json = res.json() as { ticket_id?: number }
    t.type(json.ticket_id, 'number', `${type}: stored on a ticket`)
    ticketId ??= json.ticket_id
    t.equal(json.ticket_id, ticketId, `${type}: on the customer's one open ticket`)
    const stored = await db.selectFrom('messages').select(['body', 'channel']).where('provider_message_id', '=', `wa-${type}`).executeTakeFirstOrThrow()
    t.same(stored, { body, channel: 'whatsapp' }, `${type}: says what the customer sent`)
  }
  const empty = await received('wa-empty', 'text', {})
  t.equal(empty.statusCode, 200, 'a received message with nothing in it is acknowledged')
  t.equal(await db.selectFrom('messages').select('id').where('provider_message_id', '=', 'wa-empty').executeTakeFirst(), undefined, 'and stores nothing')
})
