import { randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import pg from 'pg'

// The PostgreSQL yardstick: the ingest written by hand with Fastify and `pg`, one transaction per
// webhook, on this product's schema (migrated by the parent), with the same writes as
// handwritten-server.ts: the message, the ticket's inbox columns, for a new sender their contact
// and number, and for a new ticket its confirmation and outbox row. The open ticket is created
// with the same ON CONFLICT as the product, so concurrent first texts from one sender are safe.
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.POOL ?? 10) })

async function ingest (f: Record<string, string>): Promise<number> {
  const c = await pool.connect()
  try {
    await c.query('begin')
    const now = new Date().toISOString()
    const seen = await c.query<{ ticket_id: number }>('select ticket_id from messages where provider = $1 and provider_message_id = $2', ['messagebird', f.id])
    if (seen.rows.length > 0) {
      await c.query('commit')
      return seen.rows[0].ticket_id
    }
    const from = '+' + f.originator
    let contactId = (await c.query<{ id: number }>('select contact_id id from contact_numbers where number = $1', [from])).rows[0]?.id
    if (contactId === undefined) {
      contactId = (await c.query<{ id: number }>('insert into contacts (phone, created_at, updated_at) values ($1, $2, $2) on conflict (phone) do update set updated_at = excluded.updated_at returning id', [from, now])).rows[0].id
      await c.query('insert into contact_numbers (number, contact_id, created_at) values ($1, $2, $3) on conflict do nothing', [from, contactId, now])
    }
    const created = await c.query<{ id: number }>("insert into tickets (contact_id, status, created_at, updated_at, last_message_at, last_message_preview, last_message_direction, message_count) values ($1, 'open', $2, $2, $2, $3, 'inbound', 0) on conflict (contact_id) where status <> 'closed' do nothing returning id", [contactId, now, f.payload])
    const ticketId = created.rows[0]?.id ?? (await c.query<{ id: number }>("select id from tickets where contact_id = $1 and status <> 'closed'", [contactId])).rows[0].id
    await c.query("insert into messages (id, ticket_id, direction, kind, channel, from_address, to_address, body, provider, provider_message_id, status, status_at, created_at, updated_at) values ($1, $2, 'inbound', 'customer', 'sms', $3, $4, $5, 'messagebird', $6, 'received', $7, $7, $7)", [randomUUID(), ticketId, from, f.receiver ?? '', f.payload, f.id, now])
    await c.query("update tickets set last_message_at = $1, last_message_preview = $2, last_message_direction = 'inbound', message_count = message_count + 1, updated_at = $1 where id = $3", [now, f.payload, ticketId])
    if (created.rows.length > 0) {
      const id = randomUUID()
      await c.query("insert into messages (id, ticket_id, direction, kind, channel, from_address, to_address, body, provider, provider_message_id, status, status_at, created_at, updated_at) values ($1, $2, 'outbound', 'confirmation', 'sms', null, $3, $4, null, null, 'queued', $5, $5, $5)", [id, ticketId, from, `Thanks for contacting customer support! Your ticket ID is ${ticketId}.`, now])
      await c.query("insert into outbox (kind, message_id, run_at, created_at) values ('send', $1, $2, $2)", [id, now])
    }
    await c.query('commit')
    return ticketId
  } catch (err) {
    await c.query('rollback').catch(() => {})
    throw err
  } finally {
    c.release()
  }
}

const app = Fastify({ logger: false })
app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer' }, (_req, body, done) => {
  done(null, Object.fromEntries(new URLSearchParams((body as Buffer).toString('utf8'))))
})
app.post('/webhooks/messagebird', async (req) => ({ ok: true, ticket_id: await ingest(req.body as Record<string, string>) }))
const address = await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
process.send?.({ ready: address })
