import type { Kysely } from 'kysely'

// Failover workflows (dispatches and their steps), API keys, and idempotency records for the notifications API.
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('dispatches')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('template', 'text', (c) => c.notNull())
    .addColumn('ticket_id', 'integer', (c) => c.notNull().references('tickets.id'))
    .addColumn('current_step', 'integer', (c) => c.notNull())
    .addColumn('api_key_id', 'integer')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('ended_at', 'text')
    .execute()

  await db.schema.createTable('dispatch_steps')
    .addColumn('dispatch_id', 'text', (c) => c.notNull().references('dispatches.id').onDelete('cascade'))
    .addColumn('position', 'integer', (c) => c.notNull())
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('to_address', 'text', (c) => c.notNull())
    .addColumn('from_address', 'text')
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('condition_status', 'text')
    .addColumn('expiry_seconds', 'integer')
    .addColumn('message_id', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('started_at', 'text')
    .addColumn('deadline_at', 'text')
    .addColumn('ended_at', 'text')
    .addPrimaryKeyConstraint('dispatch_steps_pk', ['dispatch_id', 'position'])
    .execute()
  await db.schema.createIndex('dispatch_steps_message').on('dispatch_steps').column('message_id').execute()

  await db.schema.createTable('api_keys')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('prefix', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'text')
    .addColumn('last_used_at', 'text')
    .execute()

  await db.schema.createTable('idempotency_keys')
    .addColumn('api_key_id', 'integer', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('status_code', 'integer', (c) => c.notNull())
    .addColumn('response_body', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['api_key_id', 'key'])
    .execute()
  await db.schema.createIndex('idempotency_keys_created').on('idempotency_keys').column('created_at').execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  for (const t of ['idempotency_keys', 'api_keys', 'dispatch_steps', 'dispatches']) {
    await db.schema.dropTable(t).execute()
  }
}
