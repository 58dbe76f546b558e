import { type Kysely, sql } from 'kysely'

// The team inbox: statuses open/pending/closed, assignment, unread per agent, notes, the
// timeline's events, agent availability for auto-assignment, and exact view counts kept as
// counters. Every view's first page is an index range scan and every count is one row read.
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('tickets').addColumn('status_at', 'text').execute()
  // Who wrote the last message the list previews: customer, agent (with last_sender_agent_id), api
  // or automatic. Null on rows written before this migration only until the update below.
  await db.schema.alterTable('tickets').addColumn('last_sender', 'text').execute()
  await db.schema.alterTable('tickets').addColumn('last_sender_agent_id', 'integer').execute()
  await db.schema.alterTable('tickets').addColumn('last_customer_message_at', 'text').execute()
  await db.schema.alterTable('tickets').addColumn('awaiting_reply_since', 'text').execute()
  await db.updateTable('tickets').set({
    status_at: sql`coalesce(closed_at, updated_at)`,
    last_sender: sql`case when last_message_direction = 'inbound' then 'customer' else 'agent' end`,
    last_customer_message_at: sql`(select max(m.created_at) from messages m where m.ticket_id = tickets.id and m.direction = 'inbound')`
  }).execute()

  // The Open and Pending views, newest activity first: one partial index each. They replace
  // tickets_open_by_activity (open and pending together). A single index on (status, activity)
  // would also match the Closed view's status, and SQLite then picks it and sorts by closed_at in
  // a temporary B-tree: partial indexes leave it one choice per view.
  await db.schema.dropIndex('tickets_open_by_activity').execute()
  await db.schema.createIndex('tickets_open_activity').on('tickets').columns(['last_message_at desc', 'id desc'])
    .where(sql.ref('status'), '=', 'open').execute()
  await db.schema.createIndex('tickets_pending_activity').on('tickets').columns(['last_message_at desc', 'id desc'])
    .where(sql.ref('status'), '=', 'pending').execute()
  // Mine and Unassigned: open tickets by assignee (NULL for nobody), newest activity first.
  await db.schema.createIndex('tickets_open_assignee_activity').on('tickets').columns(['assignee_id', 'last_message_at desc', 'id desc'])
    .where(sql.ref('status'), '=', 'open').execute()
  // Closed: most recent close first.
  await db.schema.createIndex('tickets_closed_recent').on('tickets').columns(['closed_at desc', 'id desc'])
    .where(sql.ref('status'), '=', 'closed').execute()
  // PENDING_AUTO_CLOSE_HOURS: pending tickets by how long they have waited.
  await db.schema.createIndex('tickets_pending_since').on('tickets').columns(['status_at', 'id'])
    .where(sql.ref('status'), '=', 'pending').execute()

  await db.schema.alterTable('agents').addColumn('available', 'integer', (c) => c.notNull().defaultTo(1)).execute()
  // Round-robin order of auto-assignment: the available agent assigned longest ago goes next.
  await db.schema.alterTable('agents').addColumn('last_assigned_at', 'text').execute()

  await db.schema.createTable('ticket_events')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('ticket_id', 'integer', (c) => c.notNull().references('tickets.id'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('agent_id', 'integer')
    .addColumn('target_agent_id', 'integer')
    .addColumn('from_status', 'text')
    .addColumn('to_status', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('ticket_events_ticket').on('ticket_events').columns(['ticket_id', 'id']).execute()

  await db.schema.createTable('notes')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('ticket_id', 'integer', (c) => c.notNull().references('tickets.id'))
    .addColumn('agent_id', 'integer', (c) => c.notNull().references('agents.id'))
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('notes_ticket').on('notes').columns(['ticket_id', 'id']).execute()

  await db.schema.createTable('agent_ticket_reads')
    .addColumn('agent_id', 'integer', (c) => c.notNull().references('agents.id').onDelete('cascade'))
    .addColumn('ticket_id', 'integer', (c) => c.notNull().references('tickets.id'))
    .addColumn('read_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('agent_ticket_reads_pk', ['agent_id', 'ticket_id'])
    .execute()
  // A ticket's insert checks its child tables (foreign keys): an index keeps that a lookup.
  await db.schema.createIndex('agent_ticket_reads_ticket').on('agent_ticket_reads').column('ticket_id').execute()

  // Exact counts of every view, changed in the transaction that changes a ticket's status or
  // assignee: 'open', 'pending', 'closed', 'unassigned' (open, nobody assigned), 'agent:<id>'
  // (open, assigned to that agent).
  await db.schema.createTable('ticket_counts')
    .addColumn('bucket', 'text', (c) => c.primaryKey())
    .addColumn('n', 'integer', (c) => c.notNull())
    .execute()
  const byStatus = await db.selectFrom('tickets').select(['status', (eb) => eb.fn.countAll().as('n')]).groupBy('status').execute()
  const byAssignee = await db.selectFrom('tickets').select(['assignee_id', (eb) => eb.fn.countAll().as('n')])
    .where('status', '=', 'open').groupBy('assignee_id').execute()
  const rows = [
    ...byStatus.map((r) => ({ bucket: String(r.status), n: Number(r.n) })),
    ...byAssignee.map((r) => ({ bucket: r.assignee_id === null ? 'unassigned' : `agent:${String(r.assignee_id)}`, n: Number(r.n) }))
  ]
  if (rows.length > 0) await db.insertInto('ticket_counts').values(rows).execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  for (const t of ['ticket_counts', 'agent_ticket_reads', 'notes', 'ticket_events']) await db.schema.dropTable(t).execute()
  await db.schema.alterTable('agents').dropColumn('last_assigned_at').execute()
  await db.schema.alterTable('agents').dropColumn('available').execute()
  for (const i of ['tickets_pending_since', 'tickets_closed_recent', 'tickets_open_assignee_activity', 'tickets_pending_activity', 'tickets_open_activity']) await db.schema.dropIndex(i).execute()
  await db.schema.createIndex('tickets_open_by_activity').on('tickets').columns(['last_message_at desc', 'id desc'])
    .where(sql.ref('status'), '<>', 'closed').execute()
  for (const c of ['awaiting_reply_since', 'last_customer_message_at', 'last_sender_agent_id', 'last_sender', 'status_at']) {
    await db.schema.alterTable('tickets').dropColumn(c).execute()
  }
}
