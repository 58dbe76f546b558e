import t from 'tap'
import { hashApiKey } from '../../src/api/api-keys.js'
import { runApiKeyCli } from '../../src/api/api-key-cli.js'
import { buildTestApp, FakeClock, freshDatabase } from '../helper.js'

async function cli (db: Parameters<typeof runApiKeyCli>[1]['db'], args: string[], clock = new FakeClock()) {
  const out: string[] = []
  const err: string[] = []
  const code = await runApiKeyCli(args, { db, clock, out: (l) => out.push(l), err: (l) => err.push(l) })
  return { code, out, err }
}

t.test('create prints the key once, as the last line, and stores only its SHA-256', async (t) => {
  const { db } = await freshDatabase(t)
  t.teardown(async () => await db.destroy())
  const r = await cli(db, ['create', '--name', 'bakery'])
  t.equal(r.code, 0)
  const key = r.out[r.out.length - 1]
  t.match(key, /^tdk_[A-Za-z0-9_-]{43}$/, 'the last line is the key and nothing else')
  const rows = await db.selectFrom('api_keys').selectAll().execute()
  t.equal(rows.length, 1)
  t.equal(rows[0].key_hash, hashApiKey(key))
  t.equal(rows[0].prefix, key.slice(0, 12))
  t.notMatch(JSON.stringify(rows), new RegExp(key.slice(12)), 'the secret part is stored nowhere')
  const again = await cli(db, ['create', '--name', 'bakery'])
  t.equal(again.code, 1)
  t.match(again.err.join('\n'), /already exists.*rotate/)
  const noName = await cli(db, ['create'])
  t.equal(noName.code, 2)
  const badName = await cli(db, ['create', '--name', '<script>'])
  t.equal(badName.code, 1)
})

t.test('list shows names, prefixes and state; revoke --name stops the key working', async (t) => {
  const clock = new FakeClock()
  const { app, services, db } = await buildTestApp(t, { clock })
  const created = await cli(db, ['create', '--name=bakery'], clock)
  const key = created.out[created.out.length - 1]
  await cli(db, ['create', '--name', 'florist'], clock)
  const ok = await app.inject({ method: 'GET', url: '/api/v1/messages/none', headers: { authorization: `Bearer ${key}` } })
  t.equal(ok.statusCode, 404, 'the key works')
  let list = await cli(db, ['list'], clock)
  t.equal(list.code, 0)
  t.match(list.out[0], /NAME\tPREFIX\tCREATED\tLAST USED\tSTATUS/)
  t.match(list.out[1], new RegExp(`^bakery\\t${key.slice(0, 12)}…\\t2026-01-01T09:00:00.000Z\\t2026-01-01T09:00:00.000Z\\tactive$`))
  t.match(list.out[2], /^florist\t.*\tnever\tactive$/)
  t.notMatch(list.out.join('\n'), new RegExp(key.slice(12)), 'list never shows a key')

  const revoked = await cli(db, ['revoke', '--name', 'bakery'], clock)
  t.equal(revoked.code, 0)
  t.match(revoked.out[0], /Revoked the API key "bakery"/)
  const refused = await app.inject({ method: 'GET', url: '/api/v1/messages/none', headers: { authorization: `Bearer ${key}` } })
  t.equal(refused.statusCode, 401)
  list = await cli(db, ['list'], clock)
  t.match(list.out[1], /^bakery\t.*\trevoked 2026-01-01T09:00:00.000Z$/)
  const unknown = await cli(db, ['revoke', '--name', 'bakery'], clock)
  t.equal(unknown.code, 1)
  t.match(unknown.err[0], /active API key named "bakery" was not found/)
  const recreated = await cli(db, ['create', '--name', 'bakery'], clock)
  t.equal(recreated.code, 0, 'a revoked name can be used again')
  t.ok(services)
})

t.test('unknown commands print the usage', async (t) => {
  const { db } = await freshDatabase(t)
  t.teardown(async () => await db.destroy())
  const r = await cli(db, ['rotate'])
  t.equal(r.code, 2)
  t.match(r.err[0], /Unknown command "rotate"[\s\S]*create --name/)
  const none = await cli(db, [])
  t.match(none.err[0], /^Usage:/)
})
