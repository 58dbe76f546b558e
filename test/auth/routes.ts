import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import { engineOf, type Db } from '../../src/db/database.js'

export interface RouteEntry { method: string, url: string }

/**
 * Every route the app has, read from Fastify's own route tree, so a route added later is
 * enumerated without anyone remembering to list it here.
 */
export function appRoutes (app: FastifyInstance): RouteEntry[] {
  const routes: RouteEntry[] = []
  const paths: string[] = []
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:[│ ] {3})*)[├└]── (\S+)(?: \(([A-Z, ]+)\))?/.exec(line)
    if (m === null) continue
    const depth = m[1].length / 4
    paths.length = depth
    const path = (paths[depth - 1] ?? '') + m[2]
    paths[depth] = path
    for (const method of m[3]?.split(', ') ?? []) routes.push({ method, url: path })
  }
  return routes
}

/** A concrete URL for a route pattern: parameters become `1`, wildcards `x`. */
export function concrete (url: string): string {
  return url.replace(/:[A-Za-z_]+/g, '1').replace(/\*/g, 'x')
}

/** Every row of every table, to prove a refused request changed nothing. */
export async function snapshot (db: Db): Promise<Record<string, unknown[]>> {
  const postgres = engineOf(db) === 'postgres'
  const tables = postgres
    ? await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE' order by 1`.execute(db)
    // Ordinary tables only: a full-text index (a virtual table and its shadow tables, some without
    // a rowid) follows the tables it indexes, which are compared.
    : await sql<{ name: string }>`select name from pragma_table_list where schema = 'main' and type = 'table' and name not like 'sqlite_%' order by name`.execute(db)
  const out: Record<string, unknown[]> = {}
  for (const { name } of tables.rows) {
    // PostgreSQL has no rowid: its rows are ordered by their whole text, which is as stable.
    out[name] = (postgres
      ? await sql`select * from ${sql.table(name)} as r order by r::text`.execute(db)
      : await sql`select * from ${sql.table(name)} order by rowid`.execute(db)).rows
  }
  return out
}
