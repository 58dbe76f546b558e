import { request, type IncomingMessage } from 'node:http'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { AgentService } from '../../src/auth/agent-service.js'
import { SessionService } from '../../src/auth/session-service.js'
import { systemClock } from '../../src/clock.js'
import { loadConfig } from '../../src/config.js'
import { createDatabase } from '../../src/db/database.js'
import { migrateToLatest } from '../../src/db/migrate.js'
import { currentRssKb, loadWebhook, SERVICE_ENV, startChild, stopChild, type LoadResult } from './load.js'

export interface LiveBenchResult {
  clients: number
  rate: number
  seconds: number
  withoutClients: LoadResult
  withClients: LoadResult
  /** POST /tickets/:id/presence sent → the `presence` frame read by each client, in ms. */
  latencyMs: { p50: number, p99: number, max: number, samples: number, missing: number }
  ticketEventsPerClient: number
  clientsOpenAtEnd: number
  rssBeforeKb: number
  rssAfterKb: number
}

interface Client { res: IncomingMessage, received: number, tickets: number, closed: boolean, onPresence: (() => void) | null }

/** A real HTTP connection reading the event stream; counts frames, calls back on `presence`. */
async function connect (base: string, cookie: string): Promise<Client> {
  const req = request(`${base}/inbox/events`, { headers: { accept: 'text/event-stream', cookie }, agent: false })
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve)
    req.once('error', reject)
    req.end()
  })
  if (res.statusCode !== 200) throw new Error(`GET /inbox/events answered ${String(res.statusCode)}`)
  const client: Client = { res, received: 0, tickets: 0, closed: false, onPresence: null }
  res.setEncoding('utf8')
  let buffer = ''
  let connected: () => void = () => {}
  const ready = new Promise<void>((resolve) => { connected = resolve })
  res.on('data', (chunk: string) => {
    buffer += chunk
    let at: number
    while ((at = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, at)
      buffer = buffer.slice(at + 2)
      client.received++
      if (block === ': connected') connected()
      else if (block.startsWith('event: presence')) client.onPresence?.()
      else if (block.startsWith('id: ')) client.tickets++
    }
  })
  res.once('close', () => { client.closed = true })
  await ready
  return client
}

function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)]
}

/**
 * The live part of `npm run bench`: the production server in a child process takes inbound
 * webhooks at a fixed rate for `seconds`, first with no page connected, then with `clients`
 * real connections reading /inbox/events. Latency is probed while the load runs: an agent's page
 * posts presence (alternately viewing and left) every 50 ms, and each client's receipt of the
 * broadcast is timed from the moment the POST was sent, so it is an upper bound on publish →
 * receipt (it includes the POST's own handling).
 */
export async function benchLive (opts: { work: string, dist: string, seconds: number, rate: number, clients: number, senders: number }): Promise<LiveBenchResult> {
  const dbPath = join(opts.work, 'live.sqlite')
  const env = { ...SERVICE_ENV, DATABASE_URL: `sqlite:${dbPath}` }
  // Agents and their sessions are made before the server starts, through the services a sign-in uses.
  const config = loadConfig(env)
  const db = createDatabase(config)
  await migrateToLatest(db)
  const agents = new AgentService({ db, clock: systemClock, passwordHashLogN: config.passwordHashLogN })
  const sessions = new SessionService({ db, clock: systemClock, config })
  // One agent's session per page (pages of one session are capped), and another agent who probes.
  const reader = await agents.add({ email: 'reader@bench.example', name: 'Reader', role: 'agent', password: 'bench password 0123456789' })
  const writer = await agents.add({ email: 'writer@bench.example', name: 'Writer', role: 'agent', password: 'bench password 0123456789' })
  const cookies: string[] = []
  for (let i = 0; i <= opts.clients; i++) cookies.push(`textdesk_session=${(await sessions.create(i < opts.clients ? reader.id : writer.id)).token}`)
  const prober = await sessions.resolve(cookies[opts.clients].slice('textdesk_session='.length))
  await db.destroy()
  if (prober === null) throw new Error('the probe session does not resolve')

  const svc = await startChild(join(opts.dist, 'src/server.js'), env)
  try {
    const pid = svc.child.pid as number
    const ticket = await fetch(`${svc.url}/webhooks/messagebird`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'originator=31699000000&payload=probe&id=live-probe' })
    const ticketId = (await ticket.json() as { ticket_id: number }).ticket_id
    const load = { seconds: opts.seconds, connections: 20, senders: opts.senders, rate: opts.rate }
    await loadWebhook(`${svc.url}/webhooks/messagebird`, { ...load, seconds: 3, tag: 'live-warm', firstSender: 60_000 })
    const withoutClients = await loadWebhook(`${svc.url}/webhooks/messagebird`, { ...load, tag: 'live-none', firstSender: 70_000 })

    const rssBeforeKb = currentRssKb(pid)
    const clients = await Promise.all(cookies.slice(0, opts.clients).map(async (cookie) => await connect(svc.url, cookie)))
    const rssAfterKb = currentRssKb(pid)

    const latencies: number[] = []
    let missing = 0
    const run = { probing: true }
    const probe = async (): Promise<void> => {
      let state: 'viewing' | 'left' = 'viewing'
      while (run.probing) {
        const sentAt = performance.now()
        const arrived = Promise.all(clients.map(async (c) => await new Promise<number | null>((resolve) => {
          const timer = setTimeout(() => { c.onPresence = null; resolve(null) }, 2000)
          c.onPresence = () => { clearTimeout(timer); c.onPresence = null; resolve(performance.now() - sentAt) }
        })))
        const res = await fetch(`${svc.url}/tickets/${ticketId}/presence`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookies[opts.clients], 'x-csrf-token': prober.csrfToken },
          body: `state=${state}`
        })
        if (res.status !== 204) throw new Error(`presence answered ${res.status}`)
        for (const ms of await arrived) {
          if (ms === null) missing++
          else latencies.push(ms)
        }
        state = state === 'viewing' ? 'left' : 'viewing'
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
    const probes = probe()
    const withClients = await loadWebhook(`${svc.url}/webhooks/messagebird`, { ...load, tag: 'live-50', firstSender: 80_000 })
    run.probing = false
    await probes
    const clientsOpenAtEnd = clients.filter((c) => !c.closed).length
    const ticketEventsPerClient = clients.reduce((n, c) => n + c.tickets, 0) / clients.length
    for (const c of clients) c.res.destroy()

    latencies.sort((a, b) => a - b)
    return {
      clients: opts.clients,
      rate: opts.rate,
      seconds: opts.seconds,
      withoutClients,
      withClients,
      latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies[latencies.length - 1] ?? NaN, samples: latencies.length, missing },
      ticketEventsPerClient,
      clientsOpenAtEnd,
      rssBeforeKb,
      rssAfterKb
    }
  } finally {
    await stopChild(svc.child)
  }
}
