import { spawn } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { migrations } from '../../src/db/migrate.js'
import { createEmptyPostgresDatabase, openTestDatabase, postgresOnly } from '../helper.js'

const LOADER = 'file://' + join(process.cwd(), 'node_modules/@tapjs/typescript/dist/esm/import.mjs')

function initDb (databaseUrl: string): Promise<{ code: number | null, out: string, err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', LOADER, 'scripts/init-db.ts'], {
      env: { ...process.env, DATABASE_URL: databaseUrl, NODE_ENV: 'test', LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.on('exit', (code) => resolve({ code, out, err }))
  })
}

t.test('four instances starting at once against one empty database migrate it exactly once (the migrator\'s lock)', postgresOnly('Kysely\'s migration lock on PostgreSQL'), async (t) => {
  const databaseUrl = await createEmptyPostgresDatabase(t)
  const runs = await Promise.all([1, 2, 3, 4].map(async () => await initDb(databaseUrl)))
  for (const [i, r] of runs.entries()) t.equal(r.code, 0, `process ${i + 1} succeeded${r.code === 0 ? '' : `: ${r.err}`}`)
  const applied = runs.flatMap((r) => [...r.out.matchAll(/^Applied: (\S+)$/gm)].map((m) => m[1]))
  t.same([...applied].sort(), Object.keys(migrations).sort(), 'every migration applied once, by one of the four')
  t.equal(runs.filter((r) => r.out.includes('is up to date; nothing to do')).length, 3, 'the other three found nothing to do')
  const db = openTestDatabase(databaseUrl)
  t.teardown(async () => await db.destroy())
  const rows = await db.selectFrom('kysely_migration' as never).select('name' as never).execute()
  t.equal(rows.length, Object.keys(migrations).length, 'one row per migration in the migrations table')
})
