import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Migrator, sql } from 'kysely'
import t from 'tap'
import { createDatabase } from '../../src/db/database.js'
import { migrateToLatest, migrations } from '../../src/db/migrate.js'
import { runDue } from '../messaging/failover-helpers.js'
import { buildTestApp } from '../helper.js'
import { apiClient, bakeryWorkflow } from './api-helpers.js'

t.test('an API key reads only its own messages and dispatches; any other gets the answer for an unknown id', async (t) => {
  const { app, services } = await buildTestApp(t)
  const bakery = await apiClient(app, services, 'bakery')
  const florist = await apiClient(app, services, 'florist')

  const message = (await bakery.post('/api/v1/messages', { to: '31612345671', text: 'Your cupcakes are ready' })).json().message_uuid as string
  const dispatch = (await bakery.post('/api/v1/dispatch', bakeryWorkflow())).json().dispatch_uuid as string
  await runDue(services)
  const stepMessage = (await bakery.get(`/api/v1/dispatch/${dispatch}`)).json()._links.messages[0].href as string

  for (const url of [`/api/v1/messages/${message}`, `/api/v1/dispatch/${dispatch}`, stepMessage]) {
    t.equal((await bakery.get(url)).statusCode, 200, `the bakery reads ${url}`)
    const other = await florist.get(url)
    t.equal(other.statusCode, 404, `the florist does not read ${url}`)
    const kind = url.includes('/dispatch/') ? 'Dispatch' : 'Message'
    const unknownId = '00000000-0000-4000-8000-000000000000'
    const unknown = await florist.get(url.replace(/[^/]+$/, unknownId))
    t.same(other.json(), { ...unknown.json(), message: unknown.json().message.replace(unknownId, url.split('/').pop() as string) }, 'the same answer as for an id that does not exist')
    t.equal(other.json().message, `${kind} ${url.split('/').pop() as string} was not found`)
  }

  // The florist's own message is the florist's alone.
  const own = (await florist.post('/api/v1/messages', { to: '31612345672', text: 'Your roses are ready' })).json().message_uuid as string
  t.equal((await florist.get(`/api/v1/messages/${own}`)).statusCode, 200)
  t.equal((await bakery.get(`/api/v1/messages/${own}`)).statusCode, 404)
})

t.test('the migration gives earlier API messages to the only key there was, and to no key when there were several', async (t) => {
  for (const keys of [1, 2]) {
    const dir = mkdtempSync(join(tmpdir(), 'textdesk-keys-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const db = createDatabase({ database: { kind: 'sqlite', path: join(dir, 'x.sqlite'), synchronous: 'NORMAL' } })
    t.teardown(async () => await db.destroy())
    // The schema as released before this change, with one message sent through the API.
    const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } })
    t.equal((await migrator.migrateTo('20261122T1100-lean-message-indexes')).error, undefined)
    const now = '2026-01-01T09:00:00.000Z'
    for (let k = 1; k <= keys; k++) await sql`insert into api_keys (name, key_hash, prefix, created_at) values (${`key${k}`}, ${`hash${k}`}, 'tdk_', ${now})`.execute(db)
    await sql`insert into contacts (phone, created_at, updated_at) values ('+31612345671', ${now}, ${now})`.execute(db)
    await sql`insert into tickets (contact_id, status, created_at, updated_at, last_message_at, last_message_preview, last_message_direction, message_count) values (1, 'open', ${now}, ${now}, ${now}, 'x', 'outbound', 1)`.execute(db)
    await sql`insert into messages (id, ticket_id, direction, kind, channel, to_address, body, status, status_at, attempts, created_at, updated_at) values ('m-1', 1, 'outbound', 'notification', 'sms', '+31612345671', 'hi', 'queued', ${now}, 0, ${now}, ${now})`.execute(db)
    await sql`insert into messages (id, ticket_id, direction, kind, channel, to_address, body, status, status_at, attempts, created_at, updated_at) values ('m-2', 1, 'outbound', 'reply', 'sms', '+31612345671', 'hi', 'queued', ${now}, 0, ${now}, ${now})`.execute(db)

    await migrateToLatest(db)
    const owners = await db.selectFrom('api_messages').selectAll().execute()
    t.same(owners, keys === 1 ? [{ message_id: 'm-1', api_key_id: 1 }] : [], `${keys} key(s) before the change`)
  }
})
