import { type Kysely, sql } from 'kysely'

// A phone number belongs to at most one contact. `contact_numbers` holds every number a contact
// has (their own phone and each extra address), one row per number: its primary key is the rule.
// Both places that give a contact a number point at their row with a foreign key on
// (contact, number), so neither can hold a number the registry gives to someone else:
// `contact_addresses` directly, `contacts.phone` deferred to commit (the contact's id exists only
// once its row is inserted). The same contact may hold one number on SMS and on WhatsApp: both
// address rows point at the same registry row.
//
// Existing conflicts are resolved, never dropped: a contact keeps their own phone; an extra
// address that is another contact's phone, or that an earlier-added address of another contact
// already holds, is moved to `contact_address_conflicts` with the contact it belongs to, and the
// ticket page lists it (README "One number, one customer").
//
// SQLite cannot add a foreign key to an existing table, so both tables are rebuilt the way its
// documentation prescribes (ALTER TABLE, "other kinds of table schema changes"): with foreign key
// enforcement off, which is only possible outside a transaction, then checked before commit.
// Kysely's migrator runs SQLite migrations outside a transaction, so this one opens its own.

export async function up (db: Kysely<any>): Promise<void> {
  // The rebuild commits as a whole; if the process died after that commit but before the migrator
  // recorded it, the next start finds the new table and has nothing left to do.
  if (await tableExists(db, 'contact_numbers')) return
  await withForeignKeysOff(db, async () => {
    await db.schema.createTable('contact_numbers')
      .addColumn('number', 'text', (c) => c.primaryKey())
      .addColumn('contact_id', 'integer', (c) => c.notNull().references('contacts.id'))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute()
    // The target of both foreign keys below.
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

    // Every contact keeps their own phone.
    await sql`insert into contact_numbers (number, contact_id, created_at) select phone, id, created_at from contacts`.execute(db)
    // Then each remaining number goes to the contact that added it first.
    await sql`insert into contact_numbers (number, contact_id, created_at)
      select a.address, a.contact_id, a.created_at from contact_addresses a
      where a.id = (select min(b.id) from contact_addresses b where b.address = a.address)
      on conflict (number) do nothing`.execute(db)
    await sql`insert into contact_address_conflicts (id, contact_id, channel, address, position, created_at, owner_contact_id, set_aside_at)
      select a.id, a.contact_id, a.channel, a.address, a.position, a.created_at, n.contact_id, ${new Date().toISOString()}
      from contact_addresses a join contact_numbers n on n.number = a.address
      where n.contact_id <> a.contact_id`.execute(db)

    await db.schema.createTable('contact_addresses_new')
      .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
      .addColumn('contact_id', 'integer', (c) => c.notNull().references('contacts.id').onDelete('cascade'))
      .addColumn('channel', 'text', (c) => c.notNull())
      .addColumn('address', 'text', (c) => c.notNull())
      .addColumn('position', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('contact_addresses_channel_address', ['channel', 'address'])
      // ON UPDATE CASCADE: moving a number to another contact (a merge) carries its addresses along.
      .addForeignKeyConstraint('contact_addresses_number', ['contact_id', 'address'], 'contact_numbers', ['contact_id', 'number'], (fk) => fk.onUpdate('cascade'))
      .execute()
    await sql`insert into contact_addresses_new (id, contact_id, channel, address, position, created_at)
      select id, contact_id, channel, address, position, created_at from contact_addresses a
      where not exists (select 1 from contact_address_conflicts x where x.id = a.id)`.execute(db)
    await replaceTable(db, 'contact_addresses', 'contact_addresses_new')
    await db.schema.createIndex('contact_addresses_contact').on('contact_addresses').columns(['contact_id', 'position']).execute()

    await db.schema.createTable('contacts_new')
      .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
      .addColumn('phone', 'text', (c) => c.notNull().unique())
      .addColumn('name', 'text')
      .addColumn('opted_out_at', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addForeignKeyConstraint('contacts_phone_number', ['id', 'phone'], 'contact_numbers', ['contact_id', 'number'], (fk) => fk.deferrable().initiallyDeferred())
      .execute()
    await sql`insert into contacts_new (id, phone, name, opted_out_at, created_at, updated_at)
      select id, phone, name, opted_out_at, created_at, updated_at from contacts`.execute(db)
    await replaceTable(db, 'contacts', 'contacts_new')
  })
}

export async function down (db: Kysely<any>): Promise<void> {
  await withForeignKeysOff(db, async () => {
    await db.schema.createTable('contacts_old')
      .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
      .addColumn('phone', 'text', (c) => c.notNull().unique())
      .addColumn('name', 'text')
      .addColumn('opted_out_at', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute()
    await sql`insert into contacts_old select id, phone, name, opted_out_at, created_at, updated_at from contacts`.execute(db)
    await replaceTable(db, 'contacts', 'contacts_old')

    await db.schema.createTable('contact_addresses_old')
      .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
      .addColumn('contact_id', 'integer', (c) => c.notNull().references('contacts.id').onDelete('cascade'))
      .addColumn('channel', 'text', (c) => c.notNull())
      .addColumn('address', 'text', (c) => c.notNull())
      .addColumn('position', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('contact_addresses_channel_address', ['channel', 'address'])
      .execute()
    // The set-aside addresses come back, unless their owner has since added the same address.
    await sql`insert into contact_addresses_old (id, contact_id, channel, address, position, created_at)
      select id, contact_id, channel, address, position, created_at from contact_addresses`.execute(db)
    await sql`insert into contact_addresses_old (id, contact_id, channel, address, position, created_at)
      select id, contact_id, channel, address, position, created_at from contact_address_conflicts x
      where not exists (select 1 from contact_addresses_old a where a.channel = x.channel and a.address = x.address or a.id = x.id)`.execute(db)
    await replaceTable(db, 'contact_addresses', 'contact_addresses_old')
    await db.schema.createIndex('contact_addresses_contact').on('contact_addresses').columns(['contact_id', 'position']).execute()
    await db.schema.dropTable('contact_address_conflicts').execute()
    await db.schema.dropTable('contact_numbers').execute()
  })
}

async function tableExists (db: Kysely<any>, name: string): Promise<boolean> {
  const rows = await sql`select 1 from sqlite_master where type = 'table' and name = ${name}`.execute(db)
  return rows.rows.length > 0
}

/**
 * Drops `table` and gives `replacement` its name, keeping the AUTOINCREMENT high-water mark, so an
 * id once handed out (say, of a removed address) is never handed out again.
 */
async function replaceTable (db: Kysely<any>, table: string, replacement: string): Promise<void> {
  const seq = (await sql<{ seq: number }>`select seq from sqlite_sequence where name = ${table}`.execute(db)).rows[0]?.seq ?? 0
  await db.schema.dropTable(table).execute()
  await db.schema.alterTable(replacement).renameTo(table).execute()
  if (seq === 0) return
  const updated = await sql`update sqlite_sequence set seq = max(seq, ${seq}) where name = ${table}`.execute(db)
  if (Number(updated.numAffectedRows ?? 0n) === 0) await sql`insert into sqlite_sequence (name, seq) values (${table}, ${seq})`.execute(db)
}

/** Runs `work` in one transaction with foreign key enforcement off, and refuses to commit a violation. */
async function withForeignKeysOff (db: Kysely<any>, work: () => Promise<void>): Promise<void> {
  const before = (await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(db)).rows[0]?.foreign_keys ?? 0
  await sql`pragma foreign_keys = off`.execute(db)
  try {
    await sql`begin immediate`.execute(db)
    try {
      await work()
      const broken = await sql<{ table: string, parent: string }>`pragma foreign_key_check`.execute(db)
      if (broken.rows.length > 0) {
        const first = broken.rows[0]
        throw new Error(`${broken.rows.length} row(s) would break a foreign key (first: ${first.table} → ${first.parent}); nothing was changed`)
      }
      await sql`commit`.execute(db)
    } catch (err) {
      await sql`rollback`.execute(db)
      throw err
    }
  } finally {
    await sql.raw(`pragma foreign_keys = ${before === 1 ? 'on' : 'off'}`).execute(db)
  }
}
