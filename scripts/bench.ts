import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import { benchFailover } from './bench/failover.js'
import { MESSAGES_PER_TICKET, timeViews } from './bench/inbox.js'
import { benchLive } from './bench/live.js'
import { benchPostgres } from './bench/postgres.js'
import { benchSearch, indexCostPerMessage } from './bench/search.js'
import { benchReports } from './bench/reports.js'
import { loadWebhook, peakRssMb, SERVICE_ENV, startChild, stopChild, type LoadResult } from './bench/load.js'
import { createDatabase } from '../src/db/database.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { ROOT } from '../src/paths.js'

// npm run bench: every figure is measured in this one run, and targets are checked as ratios
// against a bare Fastify route measured moments before on the same machine.
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
// `npm run bench -- ingest|inbox|failover|live|postgres|search|reports` runs one part; no argument runs them all.
const only = process.argv[2]
const runs = (part: string): boolean => only === undefined || only === part
// The postgres part needs a server: without one named, the bench runs itself again inside a
// throwaway cluster (scripts/with-postgres.sh, which sets TEST_DATABASE_URL).
const postgresAdmin = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? null
if (runs('postgres') && postgresAdmin === null) {
  const r = spawnSync('bash', [join(ROOT, 'scripts/with-postgres.sh'), process.execPath, ...process.argv.slice(1)], { stdio: 'inherit' })
  process.exit(r.status ?? 1)
}
const CONNECTIONS = 20
const SENDERS = 1000
const WARMUP_SECONDS = 3

const dist = join(ROOT, 'dist')
const work = mkdtempSync(join(tmpdir(), 'textdesk-bench-'))
const rows: Array<[string, string, string]> = []
let failed = false
const check = (name: string, value: string, ok: boolean, target: string): void => {
  rows.push([name, value, `${ok ? 'PASS' : 'FAIL'} (${target})`])
  if (!ok) failed = true
}

try {
  if (runs('ingest')) await benchIngest()
  if (runs('inbox')) await benchInbox()
  if (runs('failover')) await benchFailoverRow()
  if (runs('live')) await benchLiveRow()
  if (runs('postgres')) await benchPostgresRows()
  if (runs('search')) await benchSearchRows()
  if (runs('reports')) await benchReportsRows()
} finally {
  rmSync(work, { recursive: true, force: true })
}

async function benchIngest (): Promise<void> {
  console.log(`Ingestion: ${SECONDS} s, ${CONNECTIONS} connections, ${SENDERS} rotating senders, after a ${WARMUP_SECONDS} s warm-up with other senders\n`)
  // Both servers get the same warm-up (JIT, caches) from senders outside the measured 1,000, so the
  // measured run still opens a ticket and sends a confirmation for each of its senders.
  const warm = { seconds: WARMUP_SECONDS, connections: CONNECTIONS, senders: SENDERS, firstSender: 50_000 }
  // The yardstick is measured before and after the service and averaged: on this VM a single
  // measurement of the same route drifts by a fifth within minutes.
  const measureBare = async (tag: string): Promise<LoadResult> => {
    const bare = await startChild(join(dist, 'scripts/bench/bare-server.js'), { PORT: '0' })
    await loadWebhook(`${bare.url}/webhooks/messagebird`, { ...warm, tag: `${tag}-warm` })
    const result = await loadWebhook(`${bare.url}/webhooks/messagebird`, { seconds: SECONDS, connections: CONNECTIONS, senders: SENDERS, tag })
    await stopChild(bare.child)
    return result
  }
  const bareBefore = await measureBare('bare-before')

  const dbPath = join(work, 'ingest.sqlite')
  const svc = await startChild(join(dist, 'src/server.js'), { ...SERVICE_ENV, DATABASE_URL: `sqlite:${dbPath}` })
  await loadWebhook(`${svc.url}/webhooks/messagebird`, { ...warm, tag: 'svc-warm' })
  const load = await loadWebhook(`${svc.url}/webhooks/messagebird`, { seconds: SECONDS, connections: CONNECTIONS, senders: SENDERS, tag: 'svc' })
  const rss = peakRssMb(svc.child.pid as number)
  await stopChild(svc.child)
  const bareAfter = await measureBare('bare-after')
  const bareRate = (bareBefore.requestsPerSec + bareAfter.requestsPerSec) / 2

  // For context, not a target: the same writes done by hand, one transaction per webhook.
  const refPath = join(work, 'reference.sqlite')
  const refDb = createDatabase({ database: { kind: 'sqlite', path: refPath, synchronous: 'NORMAL' } })
  await migrateToLatest(refDb)
  await refDb.destroy()
  const ref = await startChild(join(dist, 'scripts/bench/handwritten-server.js'), { PORT: '0', DATABASE_PATH: refPath })
  await loadWebhook(`${ref.url}/webhooks/messagebird`, { ...warm, tag: 'ref-warm' })
  const refLoad = await loadWebhook(`${ref.url}/webhooks/messagebird`, { seconds: SECONDS, connections: CONNECTIONS, senders: SENDERS, tag: 'ref' })
  await stopChild(ref.child)

  const db = new SQLite(dbPath, { readonly: true })
  const count = (q: string): number => (db.prepare(q).get() as { n: number }).n
  const measured = "from_address between '+31612000000' and '+31612000999'"
  const stored = count(`select count(*) n from messages where direction = 'inbound' and ${measured}`)
  const tickets = count('select count(*) n from tickets join contacts on contacts.id = tickets.contact_id where contacts.phone between \'+31612000000\' and \'+31612000999\'')
  const confirmations = count('select count(*) n from messages where kind = \'confirmation\' and to_address between \'+31612000000\' and \'+31612000999\'')
  db.close()

  const ratio = load.requestsPerSec / bareRate
  console.log('| run | req/s | p50 ms | p99 ms | non-2xx |')
  console.log('|---|---|---|---|---|')
  for (const [name, r] of [['bare Fastify route, before', bareBefore], ['bare Fastify route, after', bareAfter]] as const) {
    console.log(`| ${name} | ${r.requestsPerSec.toFixed(0)} | ${r.p50Ms} | ${r.p99Ms} | ${r.non2xx} |`)
  }
  console.log(`| inbound webhook (store + ticket + confirmation) | ${load.requestsPerSec.toFixed(0)} | ${load.p50Ms} | ${load.p99Ms} | ${load.non2xx} |`)
  console.log(`| for context: the same writes by hand, one transaction each (${(refLoad.requestsPerSec / bareRate * 100).toFixed(1)}% of bare) | ${refLoad.requestsPerSec.toFixed(0)} | ${refLoad.p50Ms} | ${refLoad.p99Ms} | ${refLoad.non2xx} |`)
  console.log()
  check('ingestion / bare route (mean of before and after)', `${(ratio * 100).toFixed(1)}%`, ratio >= 0.4, '>= 40%')
  check('ingestion p99 latency', `${load.p99Ms} ms`, load.p99Ms < 20, '< 20 ms')
  check('service peak RSS', `${rss} MB`, rss < 200, '< 200 MB')
  // Requests still in flight when the load stops are stored but not counted by autocannon.
  check('nothing acknowledged is lost', `${load.total2xx} acknowledged, ${stored} stored`, stored >= load.total2xx && stored - load.total2xx <= CONNECTIONS, 'stored >= acknowledged')
  check('no request refused or failed', `${load.non2xx} non-2xx, ${load.errors} errors`, load.non2xx === 0 && load.errors === 0, '0')
  check('one ticket and one confirmation per sender', `${tickets} tickets, ${confirmations} confirmations`, tickets === Math.min(SENDERS, stored) && confirmations === tickets, `${SENDERS} each`)
}

async function benchInbox (): Promise<void> {
  console.log(`\nInbox views: each view's first page and /inbox/counts, in process, 100 requests after 20 warm-up, ${MESSAGES_PER_TICKET} messages per ticket, the two desks measured in alternation`)
  const r = await timeViews(1_000, 100_000)
  console.log(`| request | median ms at ${r.small.toLocaleString('en')} tickets | median ms at ${r.large.toLocaleString('en')} tickets / ${r.messages.toLocaleString('en')} messages | p95 ms (large) | growth |`)
  console.log('|---|---|---|---|---|')
  for (const v of r.timings) console.log(`| ${v.url} | ${v.small.medianMs.toFixed(2)} | ${v.large.medianMs.toFixed(2)} | ${v.large.p95Ms.toFixed(2)} | ${(v.large.medianMs / v.small.medianMs).toFixed(2)}x |`)
  console.log()
  for (const v of r.timings) {
    const growth = v.large.medianMs / v.small.medianMs
    check(`${v.url} median at 100,000 tickets`, `${v.large.medianMs.toFixed(2)} ms`, v.large.medianMs < 50, '< 50 ms')
    check(`${v.url} 100,000 vs 1,000 tickets`, `${growth.toFixed(2)}x`, growth <= 1.5, '<= 1.5x')
  }
}

async function benchSearchRows (): Promise<void> {
  console.log('\nSearch: GET /inbox?q=… (full page, in process, agent signed in) on SQLite, 200 requests of each kind after 20 warm-up, queries rotating')
  const s = await benchSearch()
  console.log(`Desk: ${s.tickets.toLocaleString('en')} tickets, ${s.messages.toLocaleString('en')} messages, built in ${s.seedSeconds.toFixed(0)} s through the full-text triggers (database ${s.databaseMb.toFixed(0)} MB)`)
  console.log('| search | examples | p50 ms | p99 ms | results shown (mean) |')
  console.log('|---|---|---|---|---|')
  for (const r of s.timings) console.log(`| ${r.what} | ${r.queries.map((q) => `\`${q}\``).join(', ')} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.results.toFixed(1)} |`)
  console.log()
  for (const r of s.timings) check(`search p50: ${r.what}`, `${r.p50Ms.toFixed(2)} ms`, r.p50Ms < 50, '< 50 ms')
  console.log(`Merges on the same desk, ${s.merges[0].results} pairs of customers, each merge one transaction through its route:`)
  console.log('| merge | p50 ms | p99 ms |')
  console.log('|---|---|---|')
  for (const m of s.merges) console.log(`| ${m.what} | ${m.p50Ms.toFixed(2)} | ${m.p99Ms.toFixed(2)} |`)
  console.log()
  console.log('What the index costs a stored message: 10,000 message inserts, with and without the index, alternated, median of 6 rounds')
  console.log('| messages per transaction | with the index | without | cost |')
  console.log('|---|---|---|---|')
  for (const batch of [12, 100]) {
    const cost = await indexCostPerMessage(batch)
    console.log(`| ${batch} | ${cost.withIndexUs.toFixed(1)} µs | ${cost.withoutIndexUs.toFixed(1)} µs | +${(cost.withIndexUs - cost.withoutIndexUs).toFixed(1)} µs |`)
  }
  console.log()
}

async function benchReportsRows (): Promise<void> {
  console.log('\nReports: GET /reports (full page, in process, admin signed in) on SQLite, 50 requests after 10 warm-up (10 for a year)')
  const r = await benchReports()
  console.log(`Desk: ${r.messages.toLocaleString('en')} messages, built in ${r.seedSeconds.toFixed(0)} s`)
  console.log('| period | URL | p50 ms | p99 ms |')
  console.log('|---|---|---|---|')
  for (const x of r.timings) console.log(`| ${x.what} | \`${x.url}\` | ${x.p50Ms.toFixed(1)} | ${x.p99Ms.toFixed(1)} |`)
  console.log()
  for (const x of r.timings.slice(0, 2)) check(`reports page: ${x.what}`, `${x.p50Ms.toFixed(1)} ms`, x.p50Ms < 200, '< 200 ms')
}

async function benchFailoverRow (): Promise<void> {
  console.log('\nFailover: 1,000 concurrent two-step workflows (simulator, first number unreachable, 15 s expiry)')
  const fo = await benchFailover()
  console.log('| workflows | handover lateness p50 | p99 | max | outbox drain | wall |')
  console.log('|---|---|---|---|---|---|')
  console.log(`| ${fo.workflows} | ${fo.handoverLatenessMs.p50.toFixed(0)} ms | ${fo.handoverLatenessMs.p99.toFixed(0)} ms | ${fo.handoverLatenessMs.max.toFixed(0)} ms | ${fo.drainRatePerSec.toFixed(0)} sends/s | ${(fo.wallMs / 1000).toFixed(1)} s |`)
  console.log()
  check('failover handover lateness p99', `${fo.handoverLatenessMs.p99.toFixed(0)} ms`, fo.handoverLatenessMs.p99 < 1000, '< 1 s')
}

async function benchLiveRow (): Promise<void> {
  const clients = 50
  const rate = 500
  console.log(`\nLive updates: inbound webhooks at ${rate}/s for ${SECONDS} s, without and then with ${clients} pages reading /inbox/events (real HTTP connections); presence probes every 50 ms time each page's receipt`)
  const live = await benchLive({ work, dist, seconds: SECONDS, rate, clients, senders: SENDERS })
  console.log('| run | webhooks/s | p50 ms | p99 ms | non-2xx |')
  console.log('|---|---|---|---|---|')
  for (const [name, r] of [['no page connected', live.withoutClients], [`${clients} pages connected`, live.withClients]] as const) {
    console.log(`| ${name} | ${r.requestsPerSec.toFixed(0)} | ${r.p50Ms} | ${r.p99Ms} | ${r.non2xx} |`)
  }
  const l = live.latencyMs
  console.log(`\n| event delivery (POST presence sent → frame read) | p50 ${l.p50.toFixed(1)} ms | p99 ${l.p99.toFixed(1)} ms | max ${l.max.toFixed(1)} ms | ${l.samples} receipts, ${l.missing} missing |`)
  const perClientKb = (live.rssAfterKb - live.rssBeforeKb) / clients
  console.log(`| memory per connected page (RSS delta / ${clients}) | ${perClientKb.toFixed(0)} KB | RSS ${(live.rssBeforeKb / 1024).toFixed(1)} → ${(live.rssAfterKb / 1024).toFixed(1)} MB |`)
  console.log(`| ticket events read per page during the run | ${live.ticketEventsPerClient.toFixed(0)} |`)
  console.log()
  check('live event delivery p99 (50 pages, 500 webhooks/s)', `${l.p99.toFixed(1)} ms`, l.p99 < 250 && l.missing === 0, '< 250 ms, none missing')
  const ratio = live.withClients.requestsPerSec / live.withoutClients.requestsPerSec
  check('ingestion with 50 pages / without', `${(ratio * 100).toFixed(1)}%`, ratio >= 0.9 && live.withClients.non2xx === 0, '>= 90%, no refusals')
  check('pages still connected at the end', `${live.clientsOpenAtEnd} of ${clients}`, live.clientsOpenAtEnd === clients, 'all')
}

async function benchPostgresRows (): Promise<void> {
  console.log(`\nPostgreSQL: ${CONNECTIONS} connections; each system gets the same traffic: a 3 s warm-up, ${SECONDS} s of first texts (every request a new sender), one text from each of ${SENDERS} senders (then the outbox empties), and ${SECONDS} s of steady ingestion from those senders. The server runs on this machine too (fsync off in the throwaway cluster)`)
  const pgb = await benchPostgres({ adminUrl: postgresAdmin as string, dist, work, seconds: SECONDS, connections: CONNECTIONS, senders: SENDERS })
  console.log('| run | steady req/s | p50 ms | p99 ms | first texts req/s | p99 ms | non-2xx | stored / acknowledged | duplicates | tickets, confirmations | peak RSS MB |')
  console.log('|---|---|---|---|---|---|---|---|---|---|---|')
  for (const r of pgb.runs) {
    const stored = r.stored < 0 ? '' : `${r.stored} / ${r.acknowledged}`
    const tc = r.tickets < 0 ? '' : `${r.tickets}, ${r.confirmations}`
    console.log(`| ${r.label} | ${r.load.requestsPerSec.toFixed(0)} | ${r.load.p50Ms} | ${r.load.p99Ms} | ${r.first.requestsPerSec.toFixed(0)} | ${r.first.p99Ms} | ${r.load.non2xx + r.first.non2xx} | ${stored} | ${r.duplicates} | ${tc} | ${r.rssMb.join(', ')} |`)
  }
  const { instant, latency } = pgb.drain
  console.log(`\n| outbox drain, ${pgb.drain.rows} sends | 1 worker | 2 workers (2 app processes) | 2 / 1 |`)
  console.log('|---|---|---|---|')
  console.log(`| provider answers at once (CPU-bound: both cores already busy with 1 worker + PostgreSQL) | ${instant.one.toFixed(0)} sends/s | ${instant.two.toFixed(0)} sends/s | ${(instant.two / instant.one).toFixed(2)}x |`)
  console.log(`| provider answers in ${latency.ms} ms, unlimited capacity (sends not the bottleneck) | ${latency.one.toFixed(0)} sends/s | ${latency.two.toFixed(0)} sends/s | ${(latency.two / latency.one).toFixed(2)}x |`)
  console.log()
  const [one, two, ref] = pgb.runs
  check('PostgreSQL steady ingestion / hand-written PostgreSQL', `${(one.load.requestsPerSec / ref.load.requestsPerSec * 100).toFixed(1)}%`, one.load.requestsPerSec >= 0.8 * ref.load.requestsPerSec, '>= 80%')
  rows.push(['PostgreSQL first texts / hand-written (the service also sends each confirmation; the reference only queues it)', `${(one.first.requestsPerSec / ref.first.requestsPerSec * 100).toFixed(1)}%`, 'no target'])
  check('PostgreSQL steady ingestion p99 at 20 connections, 1 instance', `${one.load.p99Ms} ms`, one.load.p99Ms < 50, '< 50 ms')
  rows.push(['PostgreSQL steady ingestion p99, 2 instances (both, the database and the load generator on 2 cores)', `${two.load.p99Ms} ms`, 'no target: needs more cores than this machine has'])
  for (const r of [one, two]) {
    const ok = r.stored >= r.acknowledged && r.duplicates === 0 && r.load.errors + r.first.errors === 0 && r.load.non2xx + r.first.non2xx === 0
    check(`${r.label}: nothing acknowledged lost or stored twice`, `${r.acknowledged} acknowledged, ${r.stored} stored, ${r.duplicates} duplicates`, ok, 'stored >= acknowledged, 0 duplicates')
    check(`${r.label}: one ticket and one confirmation per sender`, `${r.tickets} tickets, ${r.confirmations} confirmations`, r.tickets === SENDERS && r.confirmations === SENDERS, `${SENDERS} each`)
  }
  check(`outbox drain, 2 workers / 1 worker, provider answering in ${latency.ms} ms`, `${(latency.two / latency.one).toFixed(2)}x`, latency.two >= 1.5 * latency.one, '>= 1.5x')
  rows.push(['outbox drain, 2 workers / 1 worker, provider answering at once (CPU-bound on 2 cores)', `${(instant.two / instant.one).toFixed(2)}x`, 'no target: needs more cores than this machine has'])
}

console.log('| check | measured | result |')
console.log('|---|---|---|')
for (const r of rows) console.log(`| ${r.join(' | ')} |`)
process.exitCode = failed ? 1 : 0
