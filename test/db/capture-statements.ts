import SQLite from 'better-sqlite3'

export interface Captured { sql: string, params: unknown[] }

/**
 * Records every statement better-sqlite3 runs (Kysely's driver and the compiled-once queries that
 * bypass it both end there) while `capturing` is set. Patched on the shared Statement prototype,
 * for this test process only.
 */
export function captureStatements () {
  const probe = new SQLite(':memory:')
  const proto = Object.getPrototypeOf(probe.prepare('select 1')) as Record<'run' | 'get' | 'all' | 'iterate', (...args: unknown[]) => unknown>
  probe.close()
  let current: Captured[] | null = null
  const originals = { run: proto.run, get: proto.get, all: proto.all, iterate: proto.iterate }
  for (const name of ['run', 'get', 'all', 'iterate'] as const) {
    const original = originals[name]
    proto[name] = function (this: { source: string }, ...args: unknown[]) {
      current?.push({ sql: this.source, params: args })
      return original.apply(this, args)
    }
  }
  return {
    during: async (work: () => Promise<void>): Promise<Captured[]> => {
      const seen: Captured[] = []
      current = seen
      try {
        await work()
      } finally {
        current = null
      }
      return seen
    },
    restore: () => Object.assign(proto, originals)
  }
}
