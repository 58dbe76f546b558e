import { type Kysely, sql } from 'kysely'

// The view counters (`ticket_counts`) in shards: a bucket's count is the sum of its rows, one per
// shard. On PostgreSQL every new ticket added to the same 'open' and 'unassigned' rows, and each
// transaction held those row locks until it committed, so concurrent first texts queued on them
// (the ingest bench measured about 150 new tickets a second, whatever the instances). Spread over
// shards, concurrent transactions mostly update different rows. SQLite has one writer, so it
// keeps using shard 0 (src/tickets/inbox-repository.ts).
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('ticket_count_shards')
    .addColumn('bucket', 'text', (c) => c.notNull())
    .addColumn('shard', 'integer', (c) => c.notNull())
    .addColumn('n', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('ticket_count_shards_pk', ['bucket', 'shard'])
    .execute()
  await db.insertInto('ticket_count_shards').columns(['bucket', 'shard', 'n'])
    .expression(db.selectFrom('ticket_counts').select(['bucket', sql.lit(0).as('shard'), 'n'])).execute()
  await db.schema.dropTable('ticket_counts').execute()
  await db.schema.alterTable('ticket_count_shards').renameTo('ticket_counts').execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('ticket_counts_single')
    .addColumn('bucket', 'text', (c) => c.primaryKey())
    .addColumn('n', 'integer', (c) => c.notNull())
    .execute()
  await db.insertInto('ticket_counts_single').columns(['bucket', 'n'])
    .expression(db.selectFrom('ticket_counts').select(['bucket', (eb) => eb.fn.sum<number>('n').as('n')]).groupBy('bucket')).execute()
  await db.schema.dropTable('ticket_counts').execute()
  await db.schema.alterTable('ticket_counts_single').renameTo('ticket_counts').execute()
}
