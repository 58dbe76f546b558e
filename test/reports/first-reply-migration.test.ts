import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { migrateTo, migrateToLatest } from '../../src/db/migrate.js'
import { createEmptyPostgresDatabase, openTestDatabase, testEngine } from '../helper.js'

// The reports' migration fills in the first reply of the tickets already stored, from their
// messages: the reply that followed the customer's first text, who wrote it, and since when the
// customer had waited. A ticket an agent started (their message came first) and a ticket nobody
// answered keep none.

t.test('existing tickets get their first reply from their messages', async (t) => {
  let url: string
  if (testEngine === 'postgres') {
    url = await createEmptyPostgresDatabase(t)
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'textdesk-test-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    url = `sqlite:${join(dir, 'old.sqlite')}`
  }
  const db = openTestDatabase(url)
  t.teardown(async () => await db.destroy())
  await migrateTo(db, '20261216T0900-counter-shards')
  const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 9, minute)).toISOString()
  await db.transaction().execute(async (trx) => {
    await trx.insertInto('agents').values({ id: 7, email: 'ada@example.com', name: 'Ada', role: 'agent', password_hash: 'x', disabled_at: null, created_at: at(0), updated_at: at(0) }).execute()
    for (const [id, phone] of [[1, '+31611111111'], [2, '+31622222222'], [3, '+31633333333']] as const) {
      await trx.insertInto('contacts').values({ id, phone, name: null, opted_out_at: null, created_at: at(0), updated_at: at(0) }).execute()
      await trx.insertInto('contact_numbers').values({ number: phone, contact_id: id, created_at: at(0) }).execute()
      await trx.insertInto('tickets').values({ id, contact_id: id, status: 'closed', assignee_id: null, created_at: at(0), updated_at: at(0), closed_at: at(50), closed_by: null, last_message_at: at(0), last_message_preview: '', last_message_direction: 'inbound', message_count: 0, status_at: null, last_sender: null, last_sender_agent_id: null, last_customer_message_at: null, awaiting_reply_since: null }).execute()
    }
    const message = (id: string, ticketId: number, minute: number, kind: 'customer' | 'reply' | 'confirmation') => trx.insertInto('messages').values({
      id,
      ticket_id: ticketId,
      direction: kind === 'customer' ? 'inbound' : 'outbound',
      kind,
      channel: 'sms',
      from_address: null,
      to_address: '',
      body: id,
      provider: null,
      provider_message_id: null,
      status: kind === 'customer' ? 'received' : 'delivered',
      status_at: at(minute),
      status_reason: null,
      error_code: null,
      price_amount: null,
      price_currency: null,
      segments: null,
      attempts: 0,
      agent_id: kind === 'reply' ? 7 : null,
      dispatch_id: null,
      created_at: at(minute),
      updated_at: at(minute)
    }).execute()
    // 1: the customer at :02, the confirmation, Ada's reply at :12 and another at :20.
    await message('m1', 1, 2, 'customer')
    await message('m2', 1, 2, 'confirmation')
    await message('m3', 1, 12, 'reply')
    await message('m4', 1, 20, 'reply')
    // 2: Ada wrote first (:01), the customer answered at :05, nobody replied since.
    await message('m5', 2, 1, 'reply')
    await message('m6', 2, 5, 'customer')
    // 3: nobody answered.
    await message('m7', 3, 3, 'customer')
  })
  await migrateToLatest(db)
  const rows = await db.selectFrom('tickets').select(['id', 'first_reply_at', 'first_reply_agent_id', 'first_reply_waited_from']).orderBy('id').execute()
  t.same(rows, [
    { id: 1, first_reply_at: at(12), first_reply_agent_id: 7, first_reply_waited_from: at(2) },
    { id: 2, first_reply_at: null, first_reply_agent_id: null, first_reply_waited_from: null },
    { id: 3, first_reply_at: null, first_reply_agent_id: null, first_reply_waited_from: null }
  ])
})
