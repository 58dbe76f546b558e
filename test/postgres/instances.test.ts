import { once } from 'node:events'
import { sql } from 'kysely'
import t, { type Test } from 'tap'
import { createEmptyPostgresDatabase, form, openTestDatabase, postgresOnly } from '../helper.js'
import { startInstance, type Instance } from './instance.js'

// Two real instances (separate processes, each with its own pool, worker and LISTEN connection)
// on one PostgreSQL database, driven over HTTP as a load balancer without sticky sessions would.

const ONLY = postgresOnly('several instances on one database')

async function twoInstances (t: Test) {
  const databaseUrl = await createEmptyPostgresDatabase(t)
  // Both start at once against an empty database: the migrator's lock lets one migrate.
  const [a, b] = await Promise.all([startInstance(t, databaseUrl), startInstance(t, databaseUrl)])
  const db = openTestDatabase(databaseUrl)
  t.teardown(async () => await db.destroy())
  return { a, b, db }
}

async function text (instance: Instance, from: string, body: string, id: string): Promise<number> {
  const res = await fetch(`${instance.url}/webhooks/messagebird`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ originator: from, payload: body, id })
  })
  await res.arrayBuffer()
  return res.status
}

t.test('20 first texts from one number, spread over 2 instances at once: one contact, one open ticket, one confirmation; again after that ticket is closed', ONLY, async (t) => {
  const { a, b, db } = await twoInstances(t)
  const from = '31612345678'
  const round = async (tag: string): Promise<number[]> => await Promise.all(Array.from({ length: 20 }, async (_, i) => await text(i % 2 === 0 ? a : b, from, `Text ${tag} ${i}`, `mb-${tag}-${i}`)))

  t.same(await round('first'), Array(20).fill(200), 'all 20 acknowledged')
  const contacts = await db.selectFrom('contacts').select('id').execute()
  t.equal(contacts.length, 1, 'one contact')
  let tickets = await db.selectFrom('tickets').select(['id', 'status']).execute()
  t.equal(tickets.filter((x) => x.status !== 'closed').length, 1, 'one open ticket')
  const inbound = await db.selectFrom('messages').select('ticket_id').where('direction', '=', 'inbound').execute()
  t.equal(inbound.length, 20, 'all 20 texts stored')
  t.ok(inbound.every((m) => m.ticket_id === tickets[0].id), 'all on that ticket')
  const confirmations = await db.selectFrom('messages').select('id').where('direction', '=', 'outbound').where('kind', '=', 'confirmation').execute()
  t.equal(confirmations.length, 1, 'one confirmation')

  await db.updateTable('tickets').set({ status: 'closed', closed_at: new Date().toISOString() }).where('id', '=', tickets[0].id).execute()
  t.same(await round('again'), Array(20).fill(200))
  tickets = await db.selectFrom('tickets').select(['id', 'status']).orderBy('id').execute()
  t.equal(tickets.length, 2, 'one new ticket, not twenty')
  t.equal(tickets[1].status, 'open')
  const onNew = await db.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).where('ticket_id', '=', tickets[1].id).where('direction', '=', 'inbound').executeTakeFirstOrThrow()
  t.equal(Number(onNew.n), 20)
})

t.test('one of two instances is killed (SIGKILL) under load: every acknowledged text is stored once, and the provider\'s retries of the rest are stored once', ONLY, async (t) => {
  const { a, b, db } = await twoInstances(t)
  const acknowledged = new Set<string>()
  const failed: string[] = []
  let sent = 0
  const TOTAL = 400
  const killAt = 150
  let killed: Promise<unknown> | null = null
  const send = async (target: Instance, i: number): Promise<void> => {
    const id = `mb-load-${i}`
    try {
      const status = await text(target, String(31600000000 + (i % 50)), `Load ${i}`, id)
      if (status === 200) acknowledged.add(id)
      else failed.push(id)
    } catch {
      failed.push(id)
    }
  }
  // 20 at a time, alternating between the instances; B dies after `killAt` requests have started.
  await Promise.all(Array.from({ length: 20 }, async () => {
    while (sent < TOTAL) {
      const i = sent++
      if (i === killAt) {
        b.child.kill('SIGKILL')
        killed = once(b.child, 'exit')
      }
      await send(i % 2 === 0 ? a : b, i)
    }
  }))
  await killed
  t.ok(failed.length > 0, `requests to the killed instance failed (${failed.length}); ${acknowledged.size} were acknowledged`)
  const stored = async (): Promise<string[]> => (await db.selectFrom('messages').select('provider_message_id').where('direction', '=', 'inbound').execute()).map((m) => m.provider_message_id as string)
  const before = new Set(await stored())
  for (const id of acknowledged) if (!before.has(id)) t.fail(`${id} was acknowledged and then lost`)
  t.pass('no acknowledged text was lost')

  // MessageBird retries what it did not see acknowledged, now reaching the live instance.
  for (const id of failed) t.equal(await text(a, String(31600000000 + (Number(id.slice('mb-load-'.length)) % 50)), `Load ${id.slice('mb-load-'.length)}`, id), 200)
  const after = await stored()
  t.equal(after.length, TOTAL, `all ${TOTAL} texts stored`)
  t.equal(new Set(after).size, after.length, 'none stored twice')
  const openPerContact = await sql<{ n: number }>`select count(*)::int as n from tickets where status <> 'closed' group by contact_id having count(*) > 1`.execute(db)
  t.equal(openPerContact.rows.length, 0, 'still one open ticket per contact')
})
