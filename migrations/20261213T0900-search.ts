import { type Kysely, PostgresAdapter, sql } from 'kysely'

// Search from one box (README "Search"): full text over every message and note, and numbers by
// their last digits. Written once for both engines; what differs is the full-text machinery.
//
// SQLite: two external-content FTS5 tables, messages_fts over messages (by rowid) and notes_fts
// over notes (by id), holding only the index (the text stays in its table). Triggers keep them in
// step in the very statement that inserts, deletes or edits a message or note, so in the same
// transaction: a rollback takes the index entry with it. `unicode61` without diacritic removal
// and without stemming, so that both engines match the same words.
//
// PostgreSQL: a GIN index on search_tsvector(body) over each table, maintained by PostgreSQL in
// the inserting transaction. search_tsvector() turns ASCII and common Unicode punctuation into
// spaces before the 'simple' configuration (lower case, no stemming, no stop words) splits the
// words: the same words unicode61 sees, whatever the server's locale.
//
// Both: an index on the last four digits of every number (contact_numbers), so a search by the
// last 4+ digits of a number is an index lookup, not a scan of every number.
export async function up (db: Kysely<any>): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await sql`create function search_tsvector(body text) returns tsvector language sql immutable parallel safe as $$
      select to_tsvector('pg_catalog.simple'::regconfig,
        regexp_replace(body, '[\\x21-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7e\\u00a0-\\u00a9\\u00ab-\\u00b1\\u00b4\\u00b6-\\u00b8\\u00bb\\u00bf\\u00d7\\u00f7\\u2000-\\u206f\\u2190-\\u2bff\\u3000-\\u303f\\U0001f000-\\U0001faff]+', ' ', 'g'))
    $$`.execute(db)
    await sql`create index messages_search on messages using gin (search_tsvector(body))`.execute(db)
    await sql`create index notes_search on notes using gin (search_tsvector(body))`.execute(db)
  } else {
    await sql`create virtual table messages_fts using fts5(body, content='messages', tokenize='unicode61 remove_diacritics 0')`.execute(db)
    await sql`create virtual table notes_fts using fts5(body, content='notes', content_rowid='id', tokenize='unicode61 remove_diacritics 0')`.execute(db)
    for (const [table, fts, key] of [['messages', 'messages_fts', 'rowid'], ['notes', 'notes_fts', 'id']] as const) {
      const t = sql.raw(table)
      const f = sql.raw(fts)
      const k = sql.raw(key)
      await sql`create trigger ${sql.raw(`${table}_search_insert`)} after insert on ${t} begin
        insert into ${f} (rowid, body) values (new.${k}, new.body);
      end`.execute(db)
      await sql`create trigger ${sql.raw(`${table}_search_delete`)} after delete on ${t} begin
        insert into ${f} (${f}, rowid, body) values ('delete', old.${k}, old.body);
      end`.execute(db)
      // Only a change of the text touches the index: status updates of messages cost nothing here.
      await sql`create trigger ${sql.raw(`${table}_search_update`)} after update of body on ${t} begin
        insert into ${f} (${f}, rowid, body) values ('delete', old.${k}, old.body);
        insert into ${f} (rowid, body) values (new.${k}, new.body);
      end`.execute(db)
      // The whole history: index every row already there.
      await sql`insert into ${f} (${f}) values ('rebuild')`.execute(db)
    }
  }
  await db.schema.createIndex('contact_numbers_last4').on('contact_numbers')
    .expression(sql`substr(number, length(number) - 3)`).execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('contact_numbers_last4').execute()
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await sql`drop index notes_search`.execute(db)
    await sql`drop index messages_search`.execute(db)
    await sql`drop function search_tsvector(text)`.execute(db)
    return
  }
  for (const table of ['messages', 'notes']) {
    for (const op of ['insert', 'delete', 'update']) await sql`drop trigger ${sql.raw(`${table}_search_${op}`)}`.execute(db)
    await sql`drop table ${sql.raw(`${table}_fts`)}`.execute(db)
  }
}
