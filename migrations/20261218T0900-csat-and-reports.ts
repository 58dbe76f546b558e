import { type Kysely, sql } from 'kysely'

// Satisfaction over SMS (CSAT) and the reports page.
//
// - csat_surveys: one row per ticket that was asked "How did we do?" (a ticket is asked once, at
//   its first close, so a close, undo and close again does not ask twice). `agent_id` is who had
//   the ticket when it closed: the rating counts for them in the reports. `rating` is set once,
//   by a guarded UPDATE (`where rating is null`), so two concurrent replies cannot both rate.
// - csat_surveys_waiting: the one lookup an inbound single digit makes (the contact's unanswered
//   survey, newest first). Partial: rated surveys leave the index.
// - csat_surveys_rated: ratings of a period for the reports.
// - auto_replies.csat_at: the thank-you for a rating obeys the same limits as the keywords' answers.
// - tickets_created: tickets opened per day and the response times of a period's tickets.
// - messages_outbound_created: failure rates, SMS parts and cost of a period's outbound messages.
//   Partial on outbound, so the inbound webhook's insert writes no entry in it.
// - dispatch_steps_started: failover handovers (a step after the first that started) of a period.
// - tickets.first_reply_at, first_reply_agent_id, first_reply_waited_from: the first agent reply
//   that answered a customer's message, who wrote it, and since when the customer had waited (the
//   ticket's awaiting_reply_since at that moment). Written by the reply's own ticket update, so
//   first-response times are a range read of tickets, not a walk through every ticket's messages.
//   Existing tickets are filled in from their messages once, here.
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('csat_surveys')
    .addColumn('ticket_id', 'integer', (c) => c.primaryKey().references('tickets.id'))
    .addColumn('contact_id', 'integer', (c) => c.notNull().references('contacts.id'))
    .addColumn('agent_id', 'integer', (c) => c.references('agents.id'))
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('sent_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('rating', 'integer')
    .addColumn('rated_at', 'text')
    .addColumn('rating_message_id', 'text')
    .execute()
  await db.schema.createIndex('csat_surveys_waiting').on('csat_surveys').columns(['contact_id', 'sent_at'])
    .where(sql.ref('rating'), 'is', null).execute()
  await db.schema.createIndex('csat_surveys_rated').on('csat_surveys').columns(['rated_at'])
    .where(sql.ref('rating'), 'is not', null).execute()
  await db.schema.alterTable('auto_replies').addColumn('csat_at', 'text').execute()
  await db.schema.createIndex('tickets_created').on('tickets').columns(['created_at']).execute()
  await db.schema.createIndex('messages_outbound_created').on('messages').columns(['created_at'])
    .where(sql.ref('direction'), '=', 'outbound').execute()
  await db.schema.alterTable('tickets').addColumn('first_reply_at', 'text').execute()
  await db.schema.alterTable('tickets').addColumn('first_reply_agent_id', 'integer').execute()
  await db.schema.alterTable('tickets').addColumn('first_reply_waited_from', 'text').execute()
  const firstCustomer = sql`(select min(c.created_at) from messages c where c.ticket_id = tickets.id and c.direction = 'inbound')`
  const firstReply = (column: string) => sql`(select r.${sql.ref(column)} from messages r where r.ticket_id = tickets.id and r.kind = 'reply' and r.created_at >= ${firstCustomer} order by r.created_at, r.id limit 1)`
  await db.updateTable('tickets')
    .set({ first_reply_at: firstReply('created_at'), first_reply_agent_id: firstReply('agent_id'), first_reply_waited_from: firstCustomer })
    .where(sql<boolean>`exists (select 1 from messages r where r.ticket_id = tickets.id and r.kind = 'reply' and r.created_at >= ${firstCustomer})`)
    .execute()
  await db.schema.createIndex('dispatch_steps_started').on('dispatch_steps').columns(['started_at'])
    .where(sql.ref('position'), '>', 0).execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('dispatch_steps_started').execute()
  await db.schema.dropIndex('messages_outbound_created').execute()
  await db.schema.dropIndex('tickets_created').execute()
  for (const c of ['first_reply_waited_from', 'first_reply_agent_id', 'first_reply_at']) await db.schema.alterTable('tickets').dropColumn(c).execute()
  await db.schema.alterTable('auto_replies').dropColumn('csat_at').execute()
  await db.schema.dropTable('csat_surveys').execute()
}
