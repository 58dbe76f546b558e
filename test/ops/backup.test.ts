import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import { sql } from 'kysely'
import t from 'tap'
import { runBackupCli } from '../../src/ops/backup-cli.js'
import { buildTestApp, sqliteOnly, testConfig } from '../helper.js'

const SQLITE_ONLY = sqliteOnly('npm run backup copies a SQLite file (PostgreSQL: pg_dump)')

const LOADER = 'file://' + join(process.cwd(), 'node_modules/@tapjs/typescript/dist/esm/import.mjs')

async function cli (args: string[], databasePath: string) {
  const out: string[] = []
  const err: string[] = []
  const code = await runBackupCli(args, { config: testConfig({ DATABASE_URL: `sqlite:${databasePath}` }), out: (l) => out.push(l), err: (l) => err.push(l) })
  return { code, out: out.join('\n'), err: err.join('\n') }
}

t.test('npm run backup under continuous writes: the copy opens, passes integrity_check and holds every row committed before it started', SQLITE_ONLY, async (t) => {
  const { services, databasePath, db } = await buildTestApp(t)
  const receive = async (i: number) => await services.tickets.receiveInbound({ provider: 'test', providerMessageId: `m-${i}`, from: `+316${String(10_000_000 + (i % 500))}`, to: null, text: `message ${i}`, channel: 'sms' })
  for (let i = 0; i < 1000; i++) await receive(i)
  const committedBefore = (await db.selectFrom('messages').select('id').execute()).map((r) => r.id)
  const target = join(databasePath, '..', 'backup.sqlite')

  // The command runs in a process of its own, as it would beside the service, while this process
  // keeps storing messages through the ticket service, 20 at a time as concurrent webhooks do,
  // until the command has exited.
  const child = spawn(process.execPath, ['--import', LOADER, 'scripts/backup.ts', target], {
    env: { ...process.env, DATABASE_URL: `sqlite:${databasePath}`, NODE_ENV: 'test' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  child.stdout.on('data', (b: Buffer) => { stdout += b.toString() })
  child.stderr.on('data', (b: Buffer) => { stdout += b.toString() })
  const state = { exited: false }
  const exit = once(child, 'exit').then(([code]) => { state.exited = true; return code as number | null })
  let written = 0
  while (!state.exited) {
    await Promise.all(Array.from({ length: 20 }, async (_, i) => await receive(100_000 + written + i)))
    written += 20
  }
  t.equal(await exit, 0, stdout)
  t.ok(written > 0, `${written} messages were stored while the backup ran`)
  t.match(stdout, new RegExp(`Backed up .*test\\.sqlite to ${target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\d+ pages, [\\d.]+ MB, in \\d+ ms; integrity check ok\\.`))

  const copy = new SQLite(target, { readonly: true, fileMustExist: true })
  t.teardown(() => copy.close())
  t.equal(copy.pragma('integrity_check', { simple: true }), 'ok')
  t.equal(copy.pragma('journal_mode', { simple: true }), 'delete', 'one self-contained file, no -wal beside it')
  const inCopy = new Set((copy.prepare('select id from messages').all() as Array<{ id: string }>).map((r) => r.id))
  t.equal(committedBefore.filter((id) => !inCopy.has(id)).length, 0, `all ${committedBefore.length} messages committed before the backup are in it`)
  const total = Number((await db.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n)
  t.ok(inCopy.size >= committedBefore.length && inCopy.size <= total, `the copy is one snapshot: ${inCopy.size} of ${total} messages`)
  const orphans = copy.prepare('select count(*) as n from messages m left join tickets t on t.id = m.ticket_id where t.id is null').get() as { n: number }
  t.equal(orphans.n, 0, 'no message without its ticket: no half-copied transaction')
  t.same(readdir(target), [], 'no partial file left behind')
})

t.test('the backup holds what is committed but not yet checkpointed (still only in the WAL)', SQLITE_ONLY, async (t) => {
  const { services, databasePath, db } = await buildTestApp(t)
  // The server checkpoints on a thread of its own, every 200 ms (db/checkpointer.ts); between two
  // checkpoints, commits exist only in the WAL, and a copy of the database file would lose them.
  await sql`pragma wal_autocheckpoint = 0`.execute(db)
  for (let i = 0; i < 200; i++) await services.tickets.receiveInbound({ provider: 'test', providerMessageId: `w-${i}`, from: `+316${String(20_000_000 + i)}`, to: null, text: `in the WAL ${i}`, channel: 'sms' })
  const target = join(databasePath, '..', 'wal.sqlite')
  const r = await cli([target], databasePath)
  t.equal(r.code, 0, r.err)
  const copy = new SQLite(target, { readonly: true })
  t.teardown(() => copy.close())
  t.equal((copy.prepare('select count(*) as n from messages').get() as { n: number }).n, 400, '200 texts and their 200 confirmations')
})

function readdir (target: string): string[] {
  return ['-wal', '-shm', '-journal', `.partial-${process.pid}`].map((s) => target + s).filter((p) => existsSync(p))
}

t.test('an existing file is kept unless --force; bad arguments get a usage message', SQLITE_ONLY, async (t) => {
  const { databasePath } = await buildTestApp(t)
  const target = join(databasePath, '..', 'keep.sqlite')
  writeFileSync(target, 'precious')
  const refused = await cli([target], databasePath)
  t.equal(refused.code, 73)
  t.match(refused.err, /Backup not made: .*keep\.sqlite already exists; pass --force to replace it/)
  t.equal(readFileSync(target, 'utf8'), 'precious', 'untouched')

  const forced = await cli([target, '--force'], databasePath)
  t.equal(forced.code, 0, forced.err)
  const copy = new SQLite(target, { readonly: true })
  t.equal(copy.pragma('integrity_check', { simple: true }), 'ok', 'replaced by a real backup')
  copy.close()

  t.equal((await cli([], databasePath)).code, 64, 'no file named')
  t.equal((await cli(['a.sqlite', 'b.sqlite'], databasePath)).code, 64, 'two files named')
  t.match((await cli(['--overwrite', 'a.sqlite'], databasePath)).err, /Unknown option --overwrite/)
  const self = await cli([databasePath, '--force'], databasePath)
  t.equal(self.code, 64)
  t.match(self.err, /cannot be written over the database itself/)
  const missing = await cli([target, '--force'], join(databasePath, '..', 'nothing-here.sqlite'))
  t.equal(missing.code, 66)
  t.match(missing.err, /There is no database at .*nothing-here\.sqlite: check DATABASE_URL/)
  t.notOk(existsSync(join(databasePath, '..', 'nothing-here.sqlite')), 'no empty database created')
  const noDir = await cli([join(databasePath, '..', 'no', 'such', 'dir.sqlite')], databasePath)
  t.equal(noDir.code, 73)
  t.match(noDir.err, /The folder .* does not exist/)
})
