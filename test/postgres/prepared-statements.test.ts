import { sql } from 'kysely'
import pg from 'pg'
import t from 'tap'
import { freshDatabase, openTestDatabase, postgresOnly } from '../helper.js'

// The pool sends parameterized queries as named statements (src/db/database.ts): parsed and
// planned once per connection. These tests hold what that must and must not cover.

const preparedOnThisConnection = sql<{ statement: string }>`select statement from pg_prepared_statements`

t.test('a parameterized query is prepared once per connection and then reused', postgresOnly('prepared statements are a PostgreSQL feature'), async (t) => {
  const { db } = await freshDatabase(t)
  await db.connection().execute(async (conn) => {
    const find = async () => await conn.selectFrom('agents').select(['id', 'email']).where('email', '=', 'nobody@example.com').execute()
    await find()
    await find()
    const prepared = (await preparedOnThisConnection.execute(conn)).rows.map((r) => r.statement)
    t.equal(prepared.filter((s) => s.includes('from "agents"') && s.includes('"email" = $1')).length, 1, 'the query is one prepared statement on this connection')
  })
})

t.test('`select *` is never prepared: another instance adding a column (a rolling deploy) does not break it', postgresOnly('prepared statements are a PostgreSQL feature'), async (t) => {
  const { db, databaseUrl } = await freshDatabase(t)
  await db.connection().execute(async (conn) => {
    const all = async () => await conn.selectFrom('agents').selectAll().where('email', '=', 'nobody@example.com').execute()
    await all()
    const prepared = (await preparedOnThisConnection.execute(conn)).rows.map((r) => r.statement)
    t.same(prepared.filter((s) => s.includes('from "agents"')), [], 'select * stays unnamed')
    // The migration of a newer instance, on a connection of its own.
    const other = new pg.Client({ connectionString: databaseUrl })
    await other.connect()
    try {
      await other.query('alter table agents add column nickname text')
    } finally {
      await other.end()
    }
    // Prepared, this would fail with "cached plan must not change result type".
    const rows = await all()
    t.same(rows, [], 'the same query runs after the new column')
  })
})

t.test('DATABASE_PREPARED_STATEMENTS=off (behind a transaction-pooling proxy) sends every query unnamed', postgresOnly('prepared statements are a PostgreSQL feature'), async (t) => {
  const { databaseUrl } = await freshDatabase(t)
  const db = openTestDatabase(databaseUrl, { DATABASE_PREPARED_STATEMENTS: 'off' })
  t.teardown(async () => await db.destroy())
  await db.connection().execute(async (conn) => {
    await conn.selectFrom('agents').select(['id', 'email']).where('email', '=', 'nobody@example.com').execute()
    t.same((await preparedOnThisConnection.execute(conn)).rows, [], 'nothing is prepared on the connection')
  })
})
