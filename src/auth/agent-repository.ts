import { sql } from 'kysely'
import { engineOf, type Db, type Executor } from '../db/database.js'
import type { Agent } from '../db/schema.js'

// All SQL for agent accounts. Emails are stored lower-cased; callers normalise before calling.

export async function insertAgent (db: Executor, agent: { email: string, name: string, role: Agent['role'], passwordHash: string }, now: string): Promise<number> {
  const row = await db.insertInto('agents').values({
    email: agent.email,
    name: agent.name,
    role: agent.role,
    password_hash: agent.passwordHash,
    disabled_at: null,
    created_at: now,
    updated_at: now
  }).returning('id').executeTakeFirstOrThrow()
  return row.id
}

/**
 * Inserts the agent only while the table is empty; its id, or undefined. On SQLite one statement
 * is enough (one writer). On PostgreSQL two such statements at once each see an empty table under
 * READ COMMITTED and both insert, so the statement runs under a transaction-scoped advisory lock:
 * the second waits for the first to commit, then its fresh snapshot sees the first admin.
 */
export async function insertAgentIfNone (db: Db, agent: { email: string, name: string, role: Agent['role'], passwordHash: string }, now: string): Promise<number | undefined> {
  const insert = async (trx: Executor): Promise<number | undefined> => {
    const row = await trx.insertInto('agents')
      .columns(['email', 'name', 'role', 'password_hash', 'disabled_at', 'created_at', 'updated_at'])
      .expression(trx.selectNoFrom((eb) => [
        eb.val(agent.email).as('email'),
        eb.val(agent.name).as('name'),
        eb.val(agent.role).as('role'),
        eb.val(agent.passwordHash).as('password_hash'),
        eb.val(null).as('disabled_at'),
        eb.val(now).as('created_at'),
        eb.val(now).as('updated_at')
      ]).where((eb) => eb.not(eb.exists(eb.selectFrom('agents').select('id')))))
      .returning('id')
      .executeTakeFirst()
    return row?.id
  }
  if (engineOf(db) !== 'postgres') return await insert(db)
  return await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext('textdesk:first_admin'))`.execute(trx)
    return await insert(trx)
  })
}

export function findAgentByEmail (db: Executor, email: string): Promise<Agent | undefined> {
  return db.selectFrom('agents').selectAll().where('email', '=', email).executeTakeFirst()
}

export function listAgents (db: Executor) {
  return db.selectFrom('agents').select(['id', 'email', 'name', 'role', 'disabled_at', 'created_at']).orderBy('id').execute()
}

export async function anyAgent (db: Executor): Promise<boolean> {
  const row = await db.selectFrom('agents').select('id').limit(1).executeTakeFirst()
  return row !== undefined
}

export async function anyActiveAgent (db: Executor): Promise<boolean> {
  const row = await db.selectFrom('agents').select('id').where('disabled_at', 'is', null).limit(1).executeTakeFirst()
  return row !== undefined
}

export async function setAgentDisabled (db: Executor, id: number, disabledAt: string | null, now: string): Promise<void> {
  await db.updateTable('agents').set({ disabled_at: disabledAt, updated_at: now }).where('id', '=', id).execute()
}

export async function setAgentPassword (db: Executor, id: number, passwordHash: string, now: string): Promise<void> {
  await db.updateTable('agents').set({ password_hash: passwordHash, updated_at: now }).where('id', '=', id).execute()
}
