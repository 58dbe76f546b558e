import SQLite from 'better-sqlite3'
import t from 'tap'
import { signedInAgent } from '../auth/agent-session.js'
import { captureStatements, postgresPlan } from '../db/capture-statements.js'
import { setup } from '../contacts/helpers.js'
import { testEngine } from '../helper.js'

// Every statement the reports page and its CSVs run, captured from the real routes (for everyone
// and for one agent) and explained: each must read an index, never scan a table that grows
// (SQLite: no SCAN; PostgreSQL: no Seq Scan with sequential scans priced out). A partial index is
// only used when the query names its condition with the same constants, which this catches.

const GROWING = ['messages', 'message_events', 'tickets', 'contacts', 'outbox', 'dispatches', 'dispatch_steps', 'ticket_events', 'csat_surveys']
const NOT_QUERIES = /^\s*(begin|commit|rollback|savepoint|release|pragma)\b/i

t.test('the reports read indexes only', async (t) => {
  const capture = captureStatements()
  t.teardown(() => capture.restore())
  const s = await setup(t, { CSAT: 'on' })
  const boss = await signedInAgent(s.app, { email: 'bo@example.com', name: 'Bo', role: 'admin' })
  for (let i = 0; i < 5; i++) await s.text(`+3161234560${i}`, `text ${i}`)
  await s.flush()
  const statements = await capture.during(async () => {
    for (const url of ['/reports?from=2026-01-01&to=2026-01-01', `/reports?from=2026-01-01&to=2026-01-01&agent=${s.ada.id}`, '/reports/volume.csv']) {
      t.equal((await boss.inject({ method: 'GET', url })).statusCode, 200, url)
    }
  })
  const queries = statements.filter((q) => !NOT_QUERIES.test(q.sql))
  t.ok(queries.some((q) => /from "csat_surveys"/.test(q.sql)), 'the capture saw the report queries')
  const problems = new Set<string>()
  if (testEngine === 'postgres') {
    for (const q of queries) {
      for (const line of await postgresPlan(s.databaseUrl, q)) {
        const table = /Seq Scan on (\w+)/.exec(line)?.[1]
        if (table !== undefined && GROWING.includes(table)) problems.add(`${line.trim()}  ←  ${q.sql}`)
      }
    }
  } else {
    const explain = new SQLite(s.databasePath, { readonly: true })
    t.teardown(() => explain.close())
    for (const q of queries) {
      const plan = explain.prepare('explain query plan ' + q.sql).all(...q.params) as Array<{ detail: string }>
      for (const { detail } of plan) {
        const table = /^SCAN (\w+)/.exec(detail)?.[1]
        if (table !== undefined && GROWING.includes(table)) problems.add(`${detail}  ←  ${q.sql}`)
      }
    }
  }
  t.same([...problems], [], `${new Set(queries.map((q) => q.sql)).size} distinct queries: no scan of a growing table`)
})
