import SQLite from 'better-sqlite3'
import pg from 'pg'
import { testEngine } from '../helper.js'

export interface Captured { sql: string, params: unknown[] }

/** A sink for statements, and `during()`, which points it at a fresh list while `work` runs. */
function recorder (): { record: (c: Captured) => void, during: (work: () => Promise<void>) => Promise<Captured[]> } {
  let current: Captured[] | null = null
  return {
    record: (c) => { current?.push(c) },
    during: async (work) => {
      const seen: Captured[] = []
      current = seen
      try {
        await work()
      } finally {
        current = null
      }
      return seen
    }
  }
}

/**
 * Records every statement better-sqlite3 runs (Kysely's driver and the compiled-once queries that
 * bypass it both end there) while `during()` runs. Patched on the shared Statement prototype,
 * for this test process only. On PostgreSQL, every query a `pg` client sends instead.
 */
export function captureStatements (): { during: (work: () => Promise<void>) => Promise<Captured[]>, restore: () => void } {
  const { record, during } = recorder()
  if (testEngine === 'postgres') {
    const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown }
    const original = proto.query
    proto.query = function (this: unknown, ...args: unknown[]) {
      const [config, values] = args as [unknown, unknown]
      // Parameterized queries arrive as named statements ({ name, text, values }), see db/database.ts.
      if (typeof config === 'string') record({ sql: config, params: Array.isArray(values) ? values : [] })
      else if (typeof config === 'object' && config !== null && typeof (config as { text?: unknown }).text === 'string') {
        const c = config as { text: string, values?: unknown[] }
        record({ sql: c.text, params: c.values ?? [] })
      }
      return original.apply(this, args)
    }
    return { during, restore: () => { proto.query = original } }
  }
  const probe = new SQLite(':memory:')
  const proto = Object.getPrototypeOf(probe.prepare('select 1')) as Record<'run' | 'get' | 'all' | 'iterate', (...args: unknown[]) => unknown>
  probe.close()
  const originals = { run: proto.run, get: proto.get, all: proto.all, iterate: proto.iterate }
  for (const name of ['run', 'get', 'all', 'iterate'] as const) {
    const original = originals[name]
    proto[name] = function (this: { source: string }, ...args: unknown[]) {
      record({ sql: this.source, params: args })
      return original.apply(this, args)
    }
  }
  return { during, restore: () => { Object.assign(proto, originals) } }
}

/**
 * PostgreSQL's plan for `q` with sequential scans and sorts priced out (`enable_seqscan` and
 * `enable_sort` off): the planner picks a table scan or a sort for tables this small whatever
 * their indexes, so a plan that still holds one has no index that serves the query.
 */
export async function postgresPlan (url: string, q: Captured): Promise<string[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query('set enable_seqscan = off')
    await client.query('set enable_sort = off')
    const res = await client.query<{ 'QUERY PLAN': string }>(`explain ${q.sql}`, q.params)
    return res.rows.map((r) => r['QUERY PLAN'])
  } finally {
    await client.end()
  }
}
