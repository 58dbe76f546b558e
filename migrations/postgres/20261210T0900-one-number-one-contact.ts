import { type Kysely, sql } from 'kysely'

// PostgreSQL's form of the released migration 20261210T0900-one-number-one-contact, run under the
// same name (src/db/migrate.ts). It reaches the same schema: `contact_numbers`, the registry of
// every number a contact has; `contact_address_conflicts`, where conflicting extra addresses are
// set aside; and the two foreign keys on (contact, number), the one from `contacts.phone` deferred
// to commit. The SQLite file rebuilds both tables, because SQLite cannot add a foreign key to an
// existing table, with pragmas and its own catalogue; PostgreSQL adds the constraints in place.
// The migrator runs each PostgreSQL migration in a transaction, so it commits whole or not at all.
// The data moves are the same statements as in the SQLite file.

export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('contact_numbers')
    .addColumn('number', 'text', (c) => c.primaryKey())
    .addColumn('contact_id', 'integer', (c) => c.notNull().references('contacts.id'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('contact_numbers_contact').on('contact_numbers').columns(['contact_id', 'number']).unique().execute()

  await db.schema.createTable('contact_address_conflicts')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('contact_id', 'integer', (c) => c.notNull().references('contacts.id'))
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('position', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('owner_contact_id', 'integer', (c) => c.notNull().references('contacts.id'))
    .addColumn('set_aside_at', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('contact_address_conflicts_contact').on('contact_address_conflicts').column('contact_id').execute()

  await sql`insert into contact_numbers (number, contact_id, created_at) select phone, id, created_at from contacts`.execute(db)
  await sql`insert into contact_numbers (number, contact_id, created_at)
    select a.address, a.contact_id, a.created_at from contact_addresses a
    where a.id = (select min(b.id) from contact_addresses b where b.address = a.address)
    on conflict (number) do nothing`.execute(db)
  await sql`insert into contact_address_conflicts (id, contact_id, channel, address, position, created_at, owner_contact_id, set_aside_at)
    select a.id, a.contact_id, a.channel, a.address, a.position, a.created_at, n.contact_id, ${new Date().toISOString()}
    from contact_addresses a join contact_numbers n on n.number = a.address
    where n.contact_id <> a.contact_id`.execute(db)
  await sql`delete from contact_addresses a where exists (select 1 from contact_address_conflicts x where x.id = a.id)`.execute(db)

  await db.schema.alterTable('contact_addresses')
    .addForeignKeyConstraint('contact_addresses_number', ['contact_id', 'address'], 'contact_numbers', ['contact_id', 'number'], (fk) => fk.onUpdate('cascade'))
    .execute()
  await db.schema.alterTable('contacts')
    .addForeignKeyConstraint('contacts_phone_number', ['id', 'phone'], 'contact_numbers', ['contact_id', 'number'], (fk) => fk.deferrable().initiallyDeferred())
    .execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('contacts').dropConstraint('contacts_phone_number').execute()
  await db.schema.alterTable('contact_addresses').dropConstraint('contact_addresses_number').execute()
  // The set-aside addresses come back, unless their owner has since added the same address.
  await sql`insert into contact_addresses (id, contact_id, channel, address, position, created_at)
    select id, contact_id, channel, address, position, created_at from contact_address_conflicts x
    where not exists (select 1 from contact_addresses a where a.channel = x.channel and a.address = x.address or a.id = x.id)`.execute(db)
  await db.schema.dropTable('contact_address_conflicts').execute()
  await db.schema.dropTable('contact_numbers').execute()
}
