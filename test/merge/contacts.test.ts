import t from 'tap'
import { FORM, HTML, setup } from '../contacts/helpers.js'
import { countersMatchRecount, messageIds } from './helpers.js'

const ONE = '+31612345678'
const TWO = '+31687654321'
const WHATSAPP = '+31611112222'

// Merging two customers who are the same person (two phones), at the HTTP edge: numbers,
// addresses, tickets, notes and consent combine in one transaction.

/** Every number and the contacts that hold it: a number must belong to exactly one. */
async function numberOwners (db: Awaited<ReturnType<typeof setup>>['db']) {
  const rows = await db.selectFrom('contact_numbers').select(['number', 'contact_id']).orderBy('number').execute()
  return rows
}

t.test('two customers become one: numbers, addresses, tickets, notes and consent combine; the opted-out stays opted out', async (t) => {
  const s = await setup(t)
  const { ada, db, post, get, text, contactOf, flush, sent } = s
  const kept = await text(ONE, 'My order is late')
  const gone = await text(TWO, 'Same person, other phone: where is my order?')
  await post(ada, `/tickets/${gone}/addresses`, { channel: 'whatsapp', address: WHATSAPP })
  await post(ada, `/tickets/${gone}/notes`, { body: 'Wrote from the work phone' })
  const one = await contactOf(ONE)
  const two = await contactOf(TWO)
  await post(ada, `/contacts/${one.id}`, { name: 'Grace Hopper', notes: 'VIP' })
  await post(ada, `/contacts/${two.id}`, { name: '', notes: 'Prefers WhatsApp' })
  await text(TWO, 'STOP')
  await flush()
  sent.length = 0
  t.not((await contactOf(TWO)).opted_out_at, null, 'the second phone texted STOP')
  const before = await messageIds(db)
  const numbersBefore = (await numberOwners(db)).map((r) => r.number)

  const page = await get(ada, `/contacts/${one.id}`)
  t.match(page.body, new RegExp(`<form method="post" action="/contacts/${one.id}/merge"`), 'the profile has the merge form')
  t.match(page.body, new RegExp(`<option value="${two.id}">${TWO.replace('+', '\\+')}</option>`), 'the other customer is offered')

  const res = await post(ada, `/contacts/${one.id}/merge`, { other: String(two.id) })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, `/contacts/${one.id}?merged=1`)

  t.equal(await db.selectFrom('contacts').select('id').where('id', '=', two.id).executeTakeFirst(), undefined, 'the merged contact is gone')
  const owners = await numberOwners(db)
  t.same(owners.map((r) => r.number), numbersBefore, 'every number is still registered, once')
  t.same(owners.map((r) => r.contact_id), owners.map(() => one.id), 'and belongs to the customer that stayed')
  const addresses = await db.selectFrom('contact_addresses').select(['channel', 'address', 'contact_id']).orderBy('position').execute()
  t.same(addresses, [{ channel: 'sms', address: TWO, contact_id: one.id }, { channel: 'whatsapp', address: WHATSAPP, contact_id: one.id }], 'the other phone and their WhatsApp became addresses, in order')

  const contact = await contactOf(ONE)
  t.not(contact.opted_out_at, null, 'opted out, because one of the two texted STOP')
  t.equal(contact.name, 'Grace Hopper')
  t.equal(contact.notes, 'VIP\n\nPrefers WhatsApp', 'both notes kept')

  // The open ticket of each became one.
  const after = await messageIds(db)
  t.equal(after.total, before.total, 'no message lost or duplicated')
  t.same(after.byTicket[kept], [...before.byTicket[kept], ...before.byTicket[gone]].sort(), 'the other customer\'s open ticket joined this one')
  t.equal((await db.selectFrom('tickets').select('merged_into').where('id', '=', gone).executeTakeFirstOrThrow()).merged_into, kept)
  await countersMatchRecount(t, db, 'after the customer merge')
  const ledger = await db.selectFrom('ticket_events').select(['ticket_id', 'kind']).where('kind', 'in', ['opt_out', 'opt_in']).execute()
  t.same(ledger, [{ ticket_id: kept, kind: 'opt_out' }], 'the STOP stays in the ledger, on the combined ticket')

  const profile = await get(ada, `/contacts/${one.id}?merged=1`)
  t.match(profile.body, /Merged: the other customer/)
  t.match(profile.body, new RegExp(`Ada Lovelace merged ${TWO.replace('+', '\\+')} into this customer`), 'recorded, with who')
  t.match(profile.body, /Texted STOP: opted out/, 'the consent history shows the STOP')
  t.match(profile.body, /badge failed">opted out since/)
  const old = await get(ada, `/contacts/${two.id}`)
  t.equal(old.statusCode, 303)
  t.equal(old.headers.location, `/contacts/${one.id}`, 'the old profile leads to the merged one')

  // Nothing goes out to either phone: the combined customer is opted out.
  await post(ada, `/tickets/${kept}/replies`, { body: 'Your order ships today' })
  await flush()
  t.same(sent, [], 'no message sent to a number that texted STOP')
  // A text from the second phone joins the combined ticket.
  t.equal(await text(TWO, 'thanks'), kept)
  await countersMatchRecount(t, db, 'after a text from the other phone')
})

t.test('a customer who never opted out merged into one who did stays opted out; bad merges are refused', async (t) => {
  const s = await setup(t)
  const { ada, db, post, text, contactOf } = s
  await text(ONE, 'hello')
  await text(ONE, 'STOP')
  await text(TWO, 'hi from my other phone')
  const one = await contactOf(ONE)
  const two = await contactOf(TWO)
  const contactsBefore = await db.selectFrom('contacts').selectAll().orderBy('id').execute()

  const self = await post(ada, `/contacts/${one.id}/merge`, { other: String(one.id) })
  t.equal(self.statusCode, 422)
  t.match(self.body, /A customer cannot be merged with themselves/)
  const missing = await post(ada, `/contacts/${one.id}/merge`, { other: '99999' })
  t.equal(missing.statusCode, 404)
  t.match(missing.body, /There is no customer 99999 to merge into this one/)
  const missingKeep = await post(ada, '/contacts/99999/merge', { other: String(one.id) })
  t.equal(missingKeep.statusCode, 404)
  const words = await post(ada, `/contacts/${one.id}/merge`, { other: 'him' })
  t.equal(words.statusCode, 422)
  t.same(await db.selectFrom('contacts').selectAll().orderBy('id').execute(), contactsBefore, 'nothing changed')

  // Merged the other way round, and submitted twice at once: once.
  const [a, b] = await Promise.all([
    post(ada, `/contacts/${two.id}/merge`, { other: String(one.id) }),
    post(ada, `/contacts/${two.id}/merge`, { other: String(one.id) })
  ])
  t.same([a.statusCode, b.statusCode], [303, 303])
  t.equal((await db.selectFrom('contact_merges').select('id').execute()).length, 1, 'merged once')
  const kept = await contactOf(TWO)
  t.equal(kept.opted_out_at, one.opted_out_at, 'opted out since the STOP of the merged customer')
  const numbers = await db.selectFrom('contact_numbers').select(['number', 'contact_id']).orderBy('number').execute()
  t.same(numbers, [{ number: ONE, contact_id: two.id }, { number: TWO, contact_id: two.id }], 'one contact per number')
  await countersMatchRecount(t, db, 'after merging customers with one open ticket each')
  const anonymous = await s.app.inject({ method: 'POST', url: `/contacts/${two.id}/merge`, headers: { ...FORM, ...HTML }, payload: `other=${one.id}` })
  t.not(anonymous.statusCode, 303, 'agents only')
})
