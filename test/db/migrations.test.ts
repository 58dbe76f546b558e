import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { createDatabase } from '../../src/db/database.js'
import { migrateToLatest } from '../../src/db/migrate.js'

t.test('migrateToLatest creates the schema and is idempotent', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'textdesk-mig-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const db = createDatabase({ database: { kind: 'sqlite', path: join(dir, 'x.sqlite'), synchronous: 'NORMAL' } })
  t.teardown(async () => await db.destroy())
  const first = await migrateToLatest(db)
  t.ok((first.results ?? []).length >= 1)
  t.ok((first.results ?? []).every((r) => r.status === 'Success'))
  const second = await migrateToLatest(db)
  t.same(second.results, [], 'nothing to do the second time')
  const tables = (await db.introspection.getTables()).map((x) => x.name)
  for (const name of ['contacts', 'tickets', 'messages', 'message_events', 'outbox']) t.ok(tables.includes(name), name)
})

t.test('npm run init-db prints what it did, and is safe to run again', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'textdesk-init-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const run = async (): Promise<string> => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'file://' + join(process.cwd(), 'node_modules/@tapjs/typescript/dist/esm/import.mjs'), 'scripts/init-db.ts'], {
      env: { ...process.env, DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`, NODE_ENV: 'test' }
    })
    return stdout
  }
  const first = await run()
  t.match(first, /Applied: 20261122T0800-core-tickets/)
  t.match(first, /now at the latest schema/)
  const second = await run()
  t.match(second, /up to date; nothing to do/)
})
