import type { Kysely } from 'kysely'

// Send later and quiet hours.
//
// - messages.send_at: the time an agent scheduled a reply for; null for a message sent as soon as
//   it is queued. The outbox row that sends it is due at that time (outbox.run_at).
// - messages.quiet_hours: whether quiet hours (QUIET_HOURS) hold the message: 'hold' (a scheduled
//   reply, an API notification, a failover handover), 'urgent' (the API asked to bypass them, for
//   this message and its handovers), or null (sent at once, like a live reply; its handovers are
//   held).
// Plain added columns, nullable and without defaults: the same statements on both engines, and no
// table rewrite on either.
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('messages').addColumn('send_at', 'text').execute()
  await db.schema.alterTable('messages').addColumn('quiet_hours', 'text').execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  for (const c of ['quiet_hours', 'send_at']) await db.schema.alterTable('messages').dropColumn(c).execute()
}
