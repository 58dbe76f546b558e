import { sql } from 'kysely'
import type { Executor } from '../db/database.js'

/** The database answers a query on the connection the app uses (it waits behind a running batch). */
export async function pingDatabase (db: Executor): Promise<void> {
  await sql`select 1`.execute(db)
}
