import SQLite from 'better-sqlite3'
import t from 'tap'
import { FAST_HASH_ENV, signedInAgent } from '../auth/agent-session.js'
import { captureStatements, postgresPlan } from '../db/capture-statements.js'
import { buildTestApp, FakeClock, form, testEngine } from '../helper.js'

// Every view's first and next page, the counts and the ticket page, captured from the real
// routes: each query must be served by an index (no SCAN of a table that grows), and a list must
// come out of its index in order (no temporary B-tree to sort): then a first page reads about
// a page of rows whatever the table holds.

const GROWING = ['messages', 'message_events', 'tickets', 'contacts', 'contact_addresses', 'outbox', 'dispatches', 'dispatch_steps', 'ticket_events', 'notes', 'agent_ticket_reads']
const NOT_QUERIES = /^\s*(begin|commit|rollback|savepoint|release|pragma)\b/i

t.test('views, their next pages, counts and the ticket page are index range scans', async (t) => {
  const capture = captureStatements()
  t.teardown(() => capture.restore())
  const clock = new FakeClock()
  const { app, databasePath, databaseUrl } = await buildTestApp(t, { clock, env: { ...FAST_HASH_ENV, INBOX_PAGE_SIZE: '2' } })
  const ada = await signedInAgent(app)
  for (let i = 0; i < 10; i++) {
    clock.advance(1000)
    await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ originator: `3161234560${i}`, payload: `text ${i}`, id: `q${i}` }) })
  }
  const post = async (url: string, fields: Record<string, string>) => await ada.inject({ method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form(fields) })
  await post('/tickets/1/assign', { assignee: 'me' })
  await post('/tickets/2/assign', { assignee: 'me' })
  await post('/tickets/3/assign', { assignee: 'me' })
  await post('/tickets/4/status', { status: 'pending' })
  await post('/tickets/5/status', { status: 'pending' })
  await post('/tickets/6/status', { status: 'pending' })
  await post('/tickets/7/status', { status: 'closed' })
  await post('/tickets/8/status', { status: 'closed' })
  await post('/tickets/9/status', { status: 'closed' })
  await post('/tickets/1/notes', { body: 'a note' })

  const statements = await capture.during(async () => {
    for (const view of ['mine', 'unassigned', 'open', 'pending', 'closed']) {
      const first = await ada.inject({ method: 'GET', url: `/inbox/list?view=${view}` })
      t.equal(first.statusCode, 200)
      const next = /cursor=([^"]+)" rel="next"/.exec(first.body)?.[1]
      if (view !== 'unassigned') t.ok(next, `${view} has a second page`)
      if (next !== undefined) t.equal((await ada.inject({ method: 'GET', url: `/inbox/list?view=${view}&cursor=${next}` })).statusCode, 200)
    }
    t.equal((await ada.inject({ method: 'GET', url: '/inbox/counts' })).statusCode, 200)
    t.equal((await ada.inject({ method: 'GET', url: '/tickets/1' })).statusCode, 200)
  })

  const queries = statements.filter((s) => !NOT_QUERIES.test(s.sql))
  t.ok(queries.some((q) => /from "tickets" as "t"/.test(q.sql)), 'the capture saw the list queries')
  const problems = new Set<string>()
  if (testEngine === 'postgres') {
    for (const q of queries) {
      const plan = await postgresPlan(databaseUrl, q)
      for (const line of plan) {
        const table = /Seq Scan on (\w+)/.exec(line)?.[1]
        if (table !== undefined && GROWING.includes(table)) problems.add(`${line.trim()}  ←  ${q.sql}`)
        if (/^\s*(->\s*)?(Incremental )?Sort\b/.test(line) && /from "tickets" as "t"/.test(q.sql)) problems.add(`${line.trim()}  ←  ${q.sql}`)
      }
    }
    t.same([...problems], [], `${new Set(queries.map((q) => q.sql)).size} distinct queries: no sequential scan of a growing table, lists in index order`)
    return
  }
  const explain = new SQLite(databasePath, { readonly: true })
  t.teardown(() => explain.close())
  for (const q of queries) {
    const plan = explain.prepare('explain query plan ' + q.sql).all(...q.params) as Array<{ detail: string }>
    for (const { detail } of plan) {
      const table = /^SCAN (\w+)/.exec(detail)?.[1]
      if (table !== undefined && GROWING.includes(table)) problems.add(`${detail}  ←  ${q.sql}`)
      if (/TEMP B-TREE FOR ORDER BY/.test(detail) && /from "tickets" as "t"/.test(q.sql)) problems.add(`${detail}  ←  ${q.sql}`)
    }
  }
  t.same([...problems], [], `${new Set(queries.map((q) => q.sql)).size} distinct queries: no SCAN of a growing table, lists in index order`)
})
