import { sql } from 'kysely'
import t from 'tap'
import type { Db } from '../../src/db/database.js'
import { migrateTo, migrateToLatest } from '../../src/db/migrate.js'
import { OPT_OUT_CONFIRMATION } from '../../src/tickets/keywords.js'
import { FAST_HASH_ENV, signedInAgent } from '../auth/agent-session.js'
import { buildTestApp, FOREIGN_KEY_VIOLATION, form, freshDatabase, sqliteOnly, UNIQUE_VIOLATION } from '../helper.js'
import { messagebirdApp } from '../webhooks/messagebird-sent.js'

const ADA = '+31612345678'
const BOB = '+31611112222'
const BOB_WHATSAPP = '+31633334444'
const HTML = { accept: 'text/html' }
const FORM = { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }
const BEFORE = '20261122T1100-lean-message-indexes'

async function numbers (db: Db) {
  return {
    contacts: await db.selectFrom('contacts').select(['id', 'phone', 'opted_out_at']).orderBy('id').execute(),
    registry: await db.selectFrom('contact_numbers').select(['number', 'contact_id']).orderBy('number').execute(),
    addresses: await db.selectFrom('contact_addresses').select(['contact_id', 'channel', 'address']).orderBy('id').execute()
  }
}

t.test('adding another customer\'s number is refused with a 409 naming their ticket; their texts, STOP and messages stay theirs', async (t) => {
  const { app, db, services, sent, drain } = await messagebirdApp(t, { env: { ...FAST_HASH_ENV, SECURE_COOKIES: 'false' } })
  const text = async (from: string, body: string, id: string) => await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ originator: from.slice(1), payload: body, id }) })
  const ada = (await text(ADA, 'Hello from Ada', 'a-1')).json().ticket_id as number
  const bob = (await text(BOB, 'Hello from Bob', 'b-1')).json().ticket_id as number
  await services.contacts.add(bob, 'whatsapp', BOB_WHATSAPP)
  await drain()
  t.same(sent.map((s) => s.recipients), ['31612345678', '31611112222'], 'both confirmed')
  const before = await numbers(db)

  const agent = await signedInAgent(app)
  const add = async (channel: string, address: string) => await agent.inject({ method: 'POST', url: `/tickets/${ada}/addresses`, headers: FORM, payload: form({ channel, address }) })
  for (const [channel, address, what] of [['sms', BOB, 'Bob\'s main number'], ['whatsapp', BOB, 'Bob\'s main number on WhatsApp'], ['sms', BOB_WHATSAPP, 'Bob\'s extra address on another channel'], ['whatsapp', BOB_WHATSAPP, 'Bob\'s extra address']]) {
    const res = await add(channel, address)
    t.equal(res.statusCode, 409, what)
    t.match(res.body, `role="alert">${address} already belongs to the customer of ticket #${bob}.`, `${what}: the message names Bob's ticket`)
  }
  t.same(await numbers(db), before, 'nothing was stored')

  // Bob's texts, from either number, stay on Bob's ticket; his STOP opts out Bob, not Ada.
  t.equal((await text(BOB, 'Still me', 'b-2')).json().ticket_id, bob)
  t.equal((await text(BOB_WHATSAPP, 'STOP', 'b-3')).json().ticket_id, bob)
  const after = await numbers(db)
  t.equal(after.contacts.find((c) => c.phone === BOB)?.opted_out_at !== null, true, 'Bob opted out')
  t.equal(after.contacts.find((c) => c.phone === ADA)?.opted_out_at, null, 'Ada did not')
  await drain()
  t.equal(sent.length, 3)
  t.match(sent[2], { recipients: '31633334444', body: OPT_OUT_CONFIRMATION }, 'Bob\'s STOP was confirmed where he sent it')

  // A reply to Ada with failover goes over Ada's numbers only.
  await services.tickets.reply(ada, 'Your parcel ships today', null, { failover: true })
  await drain()
  t.same(sent.slice(3).map((s) => s.recipients), ['31612345678'])
})

t.test('one customer may hold one number on SMS and WhatsApp; the number is theirs until nothing of theirs uses it', async (t) => {
  const { app, db, services } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const ada = (await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'a-1', from: ADA, to: null, text: 'Hi', channel: 'sms' })).ticketId
  const agent = await signedInAgent(app)
  const add = async (channel: string, address: string) => await agent.inject({ method: 'POST', url: `/tickets/${ada}/addresses`, headers: FORM, payload: form({ channel, address }) })
  t.equal((await add('whatsapp', ADA)).statusCode, 303, 'their main number on WhatsApp')
  t.equal((await add('sms', BOB)).statusCode, 303)
  t.equal((await add('whatsapp', BOB)).statusCode, 303, 'the same extra number on the other channel')
  t.equal((await add('whatsapp', BOB)).statusCode, 409, 'but not twice on one channel')
  t.same((await numbers(db)).registry, [{ number: BOB, contact_id: 1 }, { number: ADA, contact_id: 1 }], 'one registry row per number')

  const page = await agent.inject({ method: 'GET', url: `/tickets/${ada}`, headers: HTML })
  const ids = [...page.body.matchAll(/addresses\/(\d+)\/delete/g)].map((m) => m[1])
  const remove = async (id: string) => await agent.inject({ method: 'POST', url: `/tickets/${ada}/addresses/${id}/delete`, headers: FORM, payload: form({}) })
  t.equal((await remove(ids[0])).statusCode, 303, 'WhatsApp copy of the main number removed')
  t.equal((await remove(ids[1])).statusCode, 303, 'SMS copy of the extra number removed')
  t.same((await numbers(db)).registry.map((r) => r.number), [BOB, ADA], 'both numbers are still in use')
  const fromBob = await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'b-1', from: BOB, to: null, text: 'From my other phone', channel: 'sms' })
  t.equal(fromBob.ticketId, ada, 'a text from the extra number lands on Ada\'s ticket')
  t.equal((await remove(ids[2])).statusCode, 303)
  t.same((await numbers(db)).registry.map((r) => r.number), [ADA], 'the extra number is released')
  const stranger = await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'b-2', from: BOB, to: null, text: 'Who am I now?', channel: 'sms' })
  t.not(stranger.ticketId, ada, 'and now belongs to whoever texts from it')
})

t.test('the database refuses a second owner for a number, whatever the code does', async (t) => {
  const { db, services } = await buildTestApp(t)
  const now = new Date().toISOString()
  await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'a-1', from: ADA, to: null, text: 'Hi', channel: 'sms' })
  const bob = await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'b-1', from: BOB, to: null, text: 'Hi', channel: 'sms' })
  await services.contacts.add(bob.ticketId, 'whatsapp', BOB_WHATSAPP)
  const before = await numbers(db)

  await t.rejects(db.insertInto('contact_addresses').values({ contact_id: 1, channel: 'sms', address: BOB, position: 1, created_at: now }).execute(),
    FOREIGN_KEY_VIOLATION, 'an extra address that is another contact\'s phone')
  await t.rejects(db.insertInto('contact_addresses').values({ contact_id: 1, channel: 'sms', address: BOB_WHATSAPP, position: 1, created_at: now }).execute(),
    FOREIGN_KEY_VIOLATION, 'an extra address that is another contact\'s extra address on another channel')
  await t.rejects(db.insertInto('contact_numbers').values({ number: BOB_WHATSAPP, contact_id: 1, created_at: now }).execute(),
    UNIQUE_VIOLATION, 'a second registry row for a number')
  await t.rejects(db.transaction().execute(async (trx) => {
    await trx.insertInto('contacts').values({ phone: BOB_WHATSAPP, created_at: now, updated_at: now }).execute()
  }), FOREIGN_KEY_VIOLATION, 'a contact whose phone is another contact\'s extra address (checked at commit)')
  await t.rejects(db.updateTable('contact_numbers').set({ contact_id: 1 }).where('number', '=', BOB).execute(),
    FOREIGN_KEY_VIOLATION, 'moving a number away from the contact whose phone it is')
  t.same(await numbers(db), before)
})

t.test('migrating a database where two customers share a number: each keeps their phone, the first to add an address keeps it, nothing is dropped', sqliteOnly('the SQLite form of the migration, on a SQLite file'), async (t) => {
  const { path } = await freshDatabase(t)
  const { createDatabase } = await import('../../src/db/database.js')
  const open = () => createDatabase({ database: { kind: 'sqlite', path, synchronous: 'NORMAL' } })
  let db = open()
  await migrateTo(db, BEFORE)
  const at = '2026-01-01T09:00:00.000Z'
  await sql`insert into contacts (phone, created_at, updated_at) values (${ADA}, ${at}, ${at}), (${BOB}, ${at}, ${at}), ('+31655556666', ${at}, ${at})`.execute(db)
  for (const contactId of [1, 2, 3]) {
    await sql`insert into tickets (contact_id, status, created_at, updated_at, last_message_at, last_message_preview, last_message_direction, message_count) values (${contactId}, 'open', ${at}, ${at}, ${at}, 'hi', 'inbound', 1)`.execute(db)
  }
  // Bob has Ada's phone as an extra address; Bob and the third customer both have BOB_WHATSAPP
  // (Bob first, on WhatsApp; the third on SMS); Ada has her own phone on WhatsApp too.
  await sql`insert into contact_addresses (contact_id, channel, address, position, created_at) values
    (2, 'sms', ${ADA}, 1, ${at}), (2, 'whatsapp', ${BOB_WHATSAPP}, 2, ${at}), (3, 'sms', ${BOB_WHATSAPP}, 1, ${at}), (1, 'whatsapp', ${ADA}, 1, ${at})`.execute(db)

  await migrateToLatest(db)
  t.same(await numbers(db), {
    contacts: [{ id: 1, phone: ADA, opted_out_at: null }, { id: 2, phone: BOB, opted_out_at: null }, { id: 3, phone: '+31655556666', opted_out_at: null }],
    registry: [{ number: '+31611112222', contact_id: 2 }, { number: ADA, contact_id: 1 }, { number: BOB_WHATSAPP, contact_id: 2 }, { number: '+31655556666', contact_id: 3 }],
    addresses: [{ contact_id: 2, channel: 'whatsapp', address: BOB_WHATSAPP }, { contact_id: 1, channel: 'whatsapp', address: ADA }]
  })
  const setAside = await db.selectFrom('contact_address_conflicts').select(['id', 'contact_id', 'channel', 'address', 'owner_contact_id']).orderBy('id').execute()
  t.same(setAside, [
    { id: 1, contact_id: 2, channel: 'sms', address: ADA, owner_contact_id: 1 },
    { id: 3, contact_id: 3, channel: 'sms', address: BOB_WHATSAPP, owner_contact_id: 2 }
  ], 'the losing addresses are kept aside, with who has the number now')
  t.equal((await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(db)).rows[0].foreign_keys, 1, 'foreign keys are enforced again afterwards')
  t.same((await sql`pragma foreign_key_check`.execute(db)).rows, [])
  await db.destroy()

  // The app on the migrated file: texts go to the owner, and the third customer's page says what was removed.
  const { app, services } = await buildTestApp(t, { databasePath: path, env: FAST_HASH_ENV })
  const fromAda = await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'x-1', from: ADA, to: null, text: 'Ada here', channel: 'sms' })
  t.equal(fromAda.ticketId, 1)
  const fromShared = await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'x-2', from: BOB_WHATSAPP, to: null, text: 'Bob on WhatsApp', channel: 'whatsapp' })
  t.equal(fromShared.ticketId, 2)
  const agent = await signedInAgent(app)
  const page = await agent.inject({ method: 'GET', url: '/tickets/3', headers: HTML })
  t.match(page.body, /Removed because each number belongs to one customer only/)
  t.match(page.body, `SMS ${BOB_WHATSAPP} <span class="muted">(belongs to the customer of ticket #2)</span>`)

  // And back: the set-aside addresses return.
  db = open()
  t.teardown(async () => await db.destroy())
  await migrateTo(db, BEFORE)
  t.same((await db.selectFrom('contact_addresses').select(['id', 'contact_id', 'channel', 'address']).orderBy('id').execute()).map((a) => `${a.id} ${a.contact_id} ${a.channel} ${a.address}`),
    [`1 2 sms ${ADA}`, `2 2 whatsapp ${BOB_WHATSAPP}`, `3 3 sms ${BOB_WHATSAPP}`, `4 1 whatsapp ${ADA}`])
})
