import SQLite from 'better-sqlite3'
import { sql } from 'kysely'
import t, { type Test } from 'tap'
import { captureStatements, postgresPlan } from '../db/capture-statements.js'
import { FAST_HASH_ENV, signedInAgent, type AgentSession } from '../auth/agent-session.js'
import { join } from 'node:path'
import { buildTestApp, createEmptyPostgresDatabase, FakeClock, form, openTestDatabase, testEngine } from '../helper.js'
import { migrateTo, migrateToLatest } from '../../src/db/migrate.js'
import { insertMessage } from '../../src/messaging/message-repository.js'
import { searchText, ticketsByNumber } from '../../src/inbox/search-repository.js'
import type { Db } from '../../src/db/database.js'

// Search from one box, at the HTTP edge (GET /inbox?q=…), on the engine the suite runs on:
// phone numbers as people type them, ticket references, words from any message or note, the
// filters, highlighting with escaping, and queries that must not break anything.

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const HTML = { accept: 'text/html' }
type Agent = AgentSession & { id: number, name: string }

async function setup (t: Test, env: Record<string, string> = {}) {
  const clock = new FakeClock('2026-03-10T09:00:00.000Z')
  // Sessions outlast the days the filter test moves the clock through.
  const built = await buildTestApp(t, { clock, env: { ...FAST_HASH_ENV, DEFAULT_COUNTRY: 'NL', SESSION_TTL_HOURS: '720', ...env } })
  const ada = await signedInAgent(built.app, { email: 'ada@example.com', name: 'Ada Lovelace' })
  const bo = await signedInAgent(built.app, { email: 'bo@example.com', name: 'Bo Jensen' })
  let n = 0
  const text = async (from: string, body: string): Promise<number> => {
    const res = await built.app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: from, payload: body, id: `in-${++n}` }) })
    if (res.statusCode !== 200) throw new Error(`webhook answered ${res.statusCode}`)
    return res.json().ticket_id as number
  }
  return { ...built, clock, ada, bo, text }
}

const post = async (agent: Agent, url: string, fields: Record<string, string>) =>
  await agent.inject({ method: 'POST', url, headers: { ...FORM, ...HTML }, payload: form(fields) })
const search = async (agent: Agent, params: Record<string, string>) =>
  await agent.inject({ method: 'GET', url: `/inbox?${new URLSearchParams({ view: 'open', ...params }).toString()}`, headers: HTML })
/** The tickets a results page lists, in order (ticket hits first, then message and note hits). */
const found = (html: string) => [...html.matchAll(/class="ticket-row result ([\w-]+)[^"]*" data-ticket-id="(\d+)"/g)].map((m) => `${m[1] === 'ticket-hit' ? 'ticket' : 'text'}:${m[2]}`)
const ticketsFound = (html: string) => [...new Set([...html.matchAll(/class="ticket-row result[^"]*" data-ticket-id="(\d+)"/g)].map((m) => Number(m[1])))]

t.test('a phone number as people type it, in any format, or its last digits', async (t) => {
  const { ada, text } = await setup(t)
  const mine = await text('31612345678', 'Hello')
  const other = await text('31687654321', 'Hi there')
  const abroad = await text('447700900123', 'Good morning')
  for (const q of ['+31 6 1234 5678', '+31612345678', '0031612345678', '0612345678', '06-12 34 56 78', '(06) 1234 5678', '612345678', '31612345678', '5678', '345678']) {
    const res = await search(ada, { q })
    t.equal(res.statusCode, 200, q)
    t.same(found(res.body).filter((f) => f.startsWith('ticket:')), [`ticket:${mine}`], `"${q}" finds the customer's ticket`)
  }
  t.match((await search(ada, { q: '0612345678' })).body, /Number \+31612345678/, 'a local number read with the default country, found exactly')
  t.match((await search(ada, { q: '5678' })).body, /Number ending in 5678/)
  t.same(found((await search(ada, { q: '+44 7700 900123' })).body), [`ticket:${abroad}`])
  t.same(found((await search(ada, { q: '4321' })).body), [`ticket:${other}`])
  const zeros = await text('31611110025', 'Zeros at the end')
  t.same(found((await search(ada, { q: '0025' })).body), [`ticket:${zeros}`], 'last digits that start with 0 are kept as typed')
  t.match((await search(ada, { q: '9999' })).body, /Nothing found for “9999”/)
})

t.test('without a default country, a local number is searched by its digits after the 0', async (t) => {
  const { ada, text } = await setup(t, { DEFAULT_COUNTRY: '' })
  const mine = await text('31612345678', 'Hello')
  const res = await search(ada, { q: '0612345678' })
  t.same(found(res.body), [`ticket:${mine}`])
  t.match(res.body, /Number ending in 612345678/)
})

t.test('a ticket reference, #12 or 12', async (t) => {
  const { ada, text } = await setup(t)
  const first = await text('31611111111', 'one')
  const second = await text('31622222222', 'two')
  t.same(found((await search(ada, { q: `#${second}` })).body), [`ticket:${second}`])
  t.same(found((await search(ada, { q: `# ${first}` })).body), [`ticket:${first}`])
  const bare = found((await search(ada, { q: String(second) })).body)
  t.same(bare.filter((f) => f.startsWith('ticket:')), [`ticket:${second}`], 'bare digits: a ticket reference too')
  t.same(bare.filter((f) => f.startsWith('text:')), [`text:${second}`], '…and a word: the confirmation says "Your ticket ID is 2."')
  t.match((await search(ada, { q: '#999' })).body, /Nothing found/)
})

t.test('words from any message or note in the whole history, newest first, highlighted', async (t) => {
  const { ada, bo, text, clock } = await setup(t)
  const parcel = await text('31611111111', 'My parcel never arrived')
  clock.advance(60_000)
  const refund = await text('31622222222', 'I want a refund for order 4411')
  clock.advance(60_000)
  t.equal((await post(bo, `/tickets/${parcel}/replies`, { body: 'Sorry! The parcel ships today.' })).statusCode, 303)
  clock.advance(60_000)
  t.equal((await post(ada, `/tickets/${refund}/notes`, { body: 'VIP customer: refunded twice already' })).statusCode, 303)
  // History: the first ticket is closed, and still found.
  t.equal((await post(ada, `/tickets/${parcel}/status`, { status: 'closed' })).statusCode, 303)

  let res = await search(ada, { q: 'parcel' })
  t.equal(res.statusCode, 200)
  t.same(found(res.body), [`text:${parcel}`, `text:${parcel}`], 'the reply and the customer\'s text, on a closed ticket')
  t.match(res.body, /<span class="who">Bo Jensen:<\/span> Sorry! The <mark>parcel<\/mark> ships today\./, 'newest first, who wrote it, the match marked')
  t.match(res.body, /<span class="who">Customer:<\/span> My <mark>parcel<\/mark> never arrived/)
  t.match(res.body, new RegExp(`href="/tickets/${parcel}\\?view=open"`), 'each result links to its ticket')

  res = await search(ada, { q: 'REFUND' })
  t.same(found(res.body), [`text:${refund}`, `text:${refund}`], 'case does not matter; the note (newer) and the text')
  t.match(res.body, /class="ticket-row result text-hit note"/, 'a note is found')
  t.match(res.body, /Note by Ada Lovelace:<\/span> VIP customer: <mark>refunded<\/mark> twice already/, 'a word of 3+ letters also finds longer words it starts')
  t.match(res.body, /I want a <mark>refund<\/mark> for order 4411/)

  t.same(found((await search(ada, { q: 'parcel never' })).body), [`text:${parcel}`], 'every word must match')
  t.same(found((await search(ada, { q: 'parcel refund' })).body), [])
  t.same(found((await search(ada, { q: 'vip' })).body), [`text:${refund}`], 'notes are searched')
  t.same(found((await search(ada, { q: '4411' })).body), [`text:${refund}`], 'a number inside a text')
  t.same(found((await search(ada, { q: 'a' })).body), [`text:${refund}`], 'one or two letters: whole words only ("a", not "arrived")')
})

t.test('message text is escaped; only the highlight is markup', async (t) => {
  const { ada, text } = await setup(t)
  const id = await text('31611111111', 'Look: <script>alert("pwned")</script> & <b>bold</b>')
  const res = await search(ada, { q: 'script alert' })
  t.equal(res.statusCode, 200)
  t.same(ticketsFound(res.body), [id])
  t.notMatch(res.body, /<script>alert/, 'the text never becomes markup')
  t.notMatch(res.body, /<b>bold/)
  t.match(res.body, /Look: &lt;<mark>script<\/mark>&gt;<mark>alert<\/mark>\(&quot;pwned&quot;\)&lt;\/<mark>script<\/mark>&gt; &amp; &lt;b&gt;bold&lt;\/b&gt;/)
  // A text holding the match markers themselves cannot open stray markup.
  await text('31622222222', 'odd \u0002 markers \u0001 inside')
  const odd = await search(ada, { q: 'markers' })
  t.equal(odd.statusCode, 200)
  const snippet = /<p class="snippet">([\s\S]*?)<\/p>/.exec(odd.body)?.[1] ?? ''
  t.equal((snippet.match(/<mark>/g) ?? []).length, (snippet.match(/<\/mark>/g) ?? []).length, 'every <mark> is closed')
  t.notMatch(snippet, /<(?!\/?mark>|\/?span)/, 'no other tags')
})

t.test('filters combine with search: status, assignee, dates', async (t) => {
  const { ada, bo, text, clock } = await setup(t)
  const a = await text('31611111111', 'broken screen') // 2026-03-10
  clock.set('2026-03-12T10:00:00.000Z')
  const b = await text('31622222222', 'broken charger')
  clock.set('2026-03-14T10:00:00.000Z')
  const c = await text('31633333333', 'broken cable')
  await post(ada, `/tickets/${a}/assign`, { assignee: 'me' })
  await post(ada, `/tickets/${b}/assign`, { assignee: String(bo.id) })
  await post(ada, `/tickets/${c}/status`, { status: 'pending' })

  t.same(ticketsFound((await search(ada, { q: 'broken' })).body), [c, b, a])
  t.same(ticketsFound((await search(ada, { q: 'broken', status: 'pending' })).body), [c])
  t.same(ticketsFound((await search(ada, { q: 'broken', status: 'open' })).body), [b, a])
  t.same(ticketsFound((await search(ada, { q: 'broken', assignee: 'me' })).body), [a])
  t.same(ticketsFound((await search(bo, { q: 'broken', assignee: 'me' })).body), [b])
  t.same(ticketsFound((await search(ada, { q: 'broken', assignee: String(bo.id) })).body), [b])
  t.same(ticketsFound((await search(ada, { q: 'broken', assignee: 'none' })).body), [c])
  t.same(ticketsFound((await search(ada, { q: 'broken', from: '2026-03-12' })).body), [c, b])
  t.same(ticketsFound((await search(ada, { q: 'broken', to: '2026-03-12' })).body), [b, a], 'the to date is included')
  t.same(ticketsFound((await search(ada, { q: 'broken', from: '2026-03-11', to: '2026-03-13' })).body), [b])
  t.same(ticketsFound((await search(ada, { q: 'broken', from: '2026-03-11', status: 'open', assignee: 'me' })).body), [])
  // The same filters on a number and a ticket reference.
  t.same(ticketsFound((await search(ada, { q: '1111', status: 'pending' })).body), [])
  t.same(ticketsFound((await search(ada, { q: '1111', status: 'open' })).body), [a])
  t.same(ticketsFound((await search(ada, { q: `#${c}`, assignee: 'me' })).body), [])
  t.same(ticketsFound((await search(ada, { q: `#${c}`, from: '2026-03-14', to: '2026-03-14' })).body), [c])
  t.same(ticketsFound((await search(ada, { q: `#${a}`, from: '2026-03-12' })).body), [], 'not active since')
  const kept = (await search(ada, { q: 'broken', status: 'pending', from: '2026-03-11' })).body
  t.match(kept, /<option value="pending" selected>Pending<\/option>/, 'the form keeps the filters')
  t.match(kept, /name="from" value="2026-03-11"/)
  t.match(kept, /<details class="search-filters" open>/)

  for (const [params, message] of [
    [{ status: 'shipped' }, /The status filter is open, pending or closed/],
    [{ assignee: 'everyone' }, /The assignee filter is me, none, or an agent/],
    [{ from: '2026-02-30' }, /The from date &quot;2026-02-30&quot; is not a date; use the form 2026-01-31\./],
    [{ to: 'tomorrow' }, /The to date &quot;tomorrow&quot; is not a date/],
    [{ from: '2026-03-14', to: '2026-03-12' }, /The from date is after the to date/]
  ] as const) {
    const res = await search(ada, { q: 'broken', ...params })
    t.equal(res.statusCode, 400, JSON.stringify(params))
    t.match(res.body, message)
  }
})

t.test('bad input gets a clear answer, never a 500; an empty query is the normal inbox', async (t) => {
  const { ada, text } = await setup(t)
  const id = await text('31611111111', 'parcel "quoted" (brackets) NEAR col:umn ^start')
  for (const q of ['"\'*()-:^', '"', '*', '()', '-', ':', '^', '"\'', '…', '!!!', '{}[]', 'NEAR(', 'AND OR NOT']) {
    const res = await search(ada, { q })
    if (/[\p{L}\p{N}]/u.test(q)) {
      t.equal(res.statusCode, 200, `"${q}" is words`)
      continue
    }
    t.equal(res.statusCode, 400, `"${q}"`)
    t.match(res.body, /There is nothing to search for in “.*”: type words from a message or note, a phone number \(at least its last 4 digits\), or a ticket number like #42\./)
    t.match(res.body, /<form method="get" action="\/inbox" role="search"/, 'on the inbox page, with the box to try again')
  }
  // FTS syntax around words is only punctuation between words.
  for (const q of ['"parcel', 'parcel*', 'parcel OR', '(parcel)', 'col:umn', '^start', '"quoted"', 'parcel -brackets', 'NEAR(parcel quoted)', 'body:parcel']) {
    const res = await search(ada, { q })
    t.equal(res.statusCode, 200, q)
    if (!/OR|body/.test(q)) t.same(ticketsFound(res.body), [id], `"${q}" finds the text`)
  }
  const long = await search(ada, { q: 'parcel '.repeat(1500).slice(0, 10_000) })
  t.equal(long.statusCode, 400)
  t.match(long.body, /A search is at most 200 characters; this one has 10,000\. Search for a few words, a phone number or a ticket number\./)
  t.match(long.body, /<input type="search" id="search" name="q" value="parcel parcel/, 'the box keeps the start of it')
  const words = await search(ada, { q: 'a b c d e f g h i j k l m' })
  t.equal(words.statusCode, 400)
  t.match(words.body, /at most 12 words at once; this one has 13/)
  const json = await ada.inject({ method: 'GET', url: '/inbox/list?q=%22%27*()' })
  t.equal(json.statusCode, 400, 'the list fragment too')
  t.match(json.body, /There is nothing to search for/)

  const empty = await ada.inject({ method: 'GET', url: '/inbox?q=', headers: HTML })
  t.equal(empty.statusCode, 303, 'an empty query: the inbox as usual')
  t.match(empty.headers.location, /^\/inbox\?view=/)
  const blank = await search(ada, { q: '   ' })
  t.equal(blank.statusCode, 200)
  t.match(blank.body, /<table class="tickets">/, 'the view\'s list, not results')
})

t.test('the list fragment refreshes the results; the page has the box the / key focuses', async (t) => {
  const { ada, text, clock } = await setup(t)
  await text('31611111111', 'parcel one')
  const page = await search(ada, { q: 'parcel' })
  t.match(page.body, /<input type="search" id="search" name="q" value="parcel"/)
  t.match(page.body, /<section id="ticket-list" class="search-results"/)
  t.match(page.body, /<title>\(1\) Search: parcel · Textdesk<\/title>/)
  t.notMatch(page.body, /aria-current="page"/, 'no view tab is current while searching')
  clock.advance(1000)
  const second = await text('31622222222', 'parcel two')
  const fragment = await ada.inject({ method: 'GET', url: '/inbox/list?view=open&q=parcel' })
  t.equal(fragment.statusCode, 200)
  t.equal(fragment.headers['cache-control'], 'no-store')
  t.match(fragment.body, /^<section id="ticket-list" class="search-results"/)
  t.equal(ticketsFound(fragment.body)[0], second, 'a new text is found at once')
  const ticketPage = await ada.inject({ method: 'GET', url: `/tickets/${second}`, headers: HTML })
  t.match(ticketPage.body, /<input type="search" id="search" name="q" value=""/, 'the ticket page has the box too')
})

/** A customer message written straight through the repository, in `db` (a transaction or not). */
async function storeMessage (db: Parameters<typeof insertMessage>[0], ticketId: number, id: string, body: string): Promise<void> {
  await insertMessage(db, {
    id,
    ticket_id: ticketId,
    direction: 'inbound',
    kind: 'customer',
    channel: 'sms',
    from_address: '+31611111111',
    to_address: '+3197010260000',
    body,
    provider: 'test',
    provider_message_id: id,
    status: 'received',
    status_at: '2026-03-10T09:05:00.000Z',
    attempts: 0,
    created_at: '2026-03-10T09:05:00.000Z',
    updated_at: '2026-03-10T09:05:00.000Z'
  })
}

const words = (...w: string[]) => w.map((text) => ({ text, prefix: false }))
const anyFilters = { status: null, assignee: null, from: null, until: null }

t.test('the index is written in the transaction that writes the text: found at once after commit, never after a rollback', async (t) => {
  const { ada, text, db } = await setup(t)
  const id = await text('31611111111', 'hello')
  await (db as Db).transaction().execute(async (trx) => {
    await storeMessage(trx, id, 'committed-1', 'pineapple delivered')
    // Inside the transaction, before the commit, the index already holds it.
    t.equal((await searchText(trx, words('pineapple'), anyFilters, 10)).length, 1, 'visible to its own transaction')
  })
  t.same(ticketsFound((await search(ada, { q: 'pineapple' })).body), [id], 'found by the next request after the commit')

  await t.rejects((db as Db).transaction().execute(async (trx) => {
    await storeMessage(trx, id, 'rolled-back-1', 'watermelon smashed')
    await trx.insertInto('notes').values({ ticket_id: id, agent_id: ada.id, body: 'watermelon note', created_at: '2026-03-10T09:06:00.000Z' }).execute()
    t.equal((await searchText(trx, words('watermelon'), anyFilters, 10)).length, 2, 'in the index inside the transaction')
    throw new Error('roll back')
  }), /roll back/)
  t.match((await search(ada, { q: 'watermelon' })).body, /Nothing found for “watermelon”/, 'the rolled-back message and note are not found')
  t.equal((await searchText(db, words('watermelon'), anyFilters, 10)).length, 0)

  // A changed text is found by its new words only; a deleted one not at all.
  await db.updateTable('messages').set({ body: 'kiwi delivered' }).where('id', '=', 'committed-1').execute()
  t.same(ticketsFound((await search(ada, { q: 'kiwi' })).body), [id])
  t.match((await search(ada, { q: 'pineapple' })).body, /Nothing found/)
  await db.deleteFrom('messages').where('id', '=', 'committed-1').execute()
  t.match((await search(ada, { q: 'kiwi' })).body, /Nothing found/)
  if (testEngine === 'sqlite') {
    // FTS5's own check that the index matches its content tables exactly.
    await sql`insert into messages_fts (messages_fts, rank) values ('integrity-check', 1)`.execute(db)
    await sql`insert into notes_fts (notes_fts, rank) values ('integrity-check', 1)`.execute(db)
    t.pass('FTS5 integrity-check passed for messages and notes')
  }
})

t.test('every search is index lookups: words through the full-text index, numbers through their last digits', async (t) => {
  const capture = captureStatements()
  t.teardown(() => capture.restore())
  const { ada, bo, text, clock, databasePath, databaseUrl } = await setup(t)
  for (let i = 0; i < 12; i++) {
    clock.advance(1000)
    const id = await text(`3161234${String(5600 + i).padStart(4, '0')}`, `parcel number ${i} arrived broken`)
    if (i % 3 === 0) await post(ada, `/tickets/${id}/notes`, { body: `parcel note ${i}` })
    if (i % 4 === 0) await post(bo, `/tickets/${id}/assign`, { assignee: 'me' })
  }
  const queries = ['parcel', 'parcel broken', 'arr', '5605', '+31 6 1234 5605', '0612345605', '#3']
  const statements = (await capture.during(async () => {
    for (const q of queries) {
      t.equal((await search(ada, { q })).statusCode, 200, q)
      t.equal((await search(ada, { q, status: 'open', assignee: 'me', from: '2026-03-01', to: '2026-03-31' })).statusCode, 200, `${q} with filters`)
    }
  })).filter((s) => /search|fts|contact_numbers|t\.id = /.test(s.sql) && /^\s*select/i.test(s.sql))
  t.ok(statements.some((s) => /messages_fts|search_tsvector/.test(s.sql)), 'the capture saw the text searches')
  t.ok(statements.some((s) => /substr\(number/.test(s.sql)), 'and the search by last digits')
  const problems = new Set<string>()
  if (testEngine === 'postgres') {
    for (const q of statements) {
      for (const line of await postgresPlan(databaseUrl, q)) {
        const table = /Seq Scan on (\w+)/.exec(line)?.[1]
        if (table !== undefined && ['messages', 'notes', 'tickets', 'contacts', 'contact_numbers'].includes(table)) problems.add(`${line.trim()}  ←  ${q.sql}`)
      }
    }
  } else {
    const explain = new SQLite(databasePath, { readonly: true })
    t.teardown(() => explain.close())
    for (const q of statements) {
      for (const { detail } of explain.prepare('explain query plan ' + q.sql).all(...q.params) as Array<{ detail: string }>) {
        // FTS5 is a virtual table: it is always a "SCAN … VIRTUAL TABLE INDEX" of its own index, by MATCH.
        if (/^SCAN \w+_fts VIRTUAL TABLE INDEX \d+:M/.test(detail)) continue
        if (/^SCAN /.test(detail)) problems.add(`${detail}  ←  ${q.sql}`)
        // Newest first straight from the full-text index, which stops at the limit.
        if (/TEMP B-TREE FOR ORDER BY/.test(detail) && /_fts/.test(q.sql)) problems.add(`${detail}  ←  ${q.sql}`)
      }
    }
  }
  t.same([...problems], [], `${new Set(statements.map((q) => q.sql)).size} distinct search queries, all served by indexes`)
})

t.test('the migration indexes the whole history already stored, on either engine', async (t) => {
  const url = testEngine === 'postgres' ? await createEmptyPostgresDatabase(t) : `sqlite:${join(t.testdir(), 'before-search.sqlite')}`
  const db = openTestDatabase(url)
  t.teardown(async () => await db.destroy())
  await migrateTo(db, '20261212T0900-team-inbox')
  const at = '2025-06-01T10:00:00.000Z'
  await db.transaction().execute(async (trx) => {
    // A contact's phone and its contact_numbers row point at each other: checked at commit.
    await trx.insertInto('contacts').values({ id: 1, phone: '+31612345678', name: null, opted_out_at: null, created_at: at, updated_at: at }).execute()
    await trx.insertInto('contact_numbers').values({ number: '+31612345678', contact_id: 1, created_at: at }).execute()
    await trx.insertInto('agents').values({ id: 1, email: 'old@example.com', name: 'Old Agent', role: 'agent', password_hash: 'x', disabled_at: null, created_at: at, updated_at: at }).execute()
    await trx.insertInto('tickets').values({ id: 1, contact_id: 1, status: 'closed', assignee_id: null, created_at: at, updated_at: at, closed_at: at, closed_by: null, last_message_at: at, last_message_preview: 'old', last_message_direction: 'inbound', message_count: 1, status_at: at, last_sender: 'customer', last_sender_agent_id: null, last_customer_message_at: at, awaiting_reply_since: null }).execute()
  })
  // Written as that release wrote messages: today's insertMessage names columns added since.
  await db.insertInto('messages').values({ id: 'old-1', ticket_id: 1, direction: 'inbound', kind: 'customer', channel: 'sms', from_address: '+31612345678', to_address: '+3197010260000', body: 'An archived complaint about a scratched table', provider: 'test', provider_message_id: 'old-1', status: 'received', status_at: at, attempts: 0, created_at: at, updated_at: at }).execute()
  await db.insertInto('notes').values({ ticket_id: 1, agent_id: 1, body: 'Archived: offered a partial refund', created_at: at }).execute()
  await migrateToLatest(db)
  const hits = await searchText(db, [{ text: 'archived', prefix: true }], anyFilters, 10)
  t.same(hits.map((h) => h.source).sort(), ['message', 'note'], 'the message and the note stored before the migration are found')
  t.same((await ticketsByNumber(db, { suffix: '5678' }, anyFilters, 10)).map((r) => r.id), [1], 'and the number by its last digits')
  t.same((await ticketsByNumber(db, { suffix: '345678' }, anyFilters, 10)).map((r) => r.id), [1])
  t.same((await ticketsByNumber(db, { suffix: '5679' }, anyFilters, 10)).map((r) => r.id), [])
})
