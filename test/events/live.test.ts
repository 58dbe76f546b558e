import { once } from 'node:events'
import type { Socket } from 'node:net'
import t, { type Test } from 'tap'
import { buildApp } from '../../src/app.js'
import type { InProcessEventBus } from '../../src/events/in-process.js'
import { VIEWING_TTL_MS } from '../../src/events/in-process-presence.js'
import { signedInAgent } from '../auth/agent-session.js'
import { FakeClock, form, freshDatabase, openTestDatabase, sqliteOnly, testConfig, testEngine } from '../helper.js'
import { isTicket, listen, openStream, ticketData, type Frame } from './sse-client.js'

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const MARKER = 'SECRET-PARCEL-7f3a'

/** The real app on a fresh database, listening on a port, with the stream's timers as the test needs them. */
async function liveApp (t: Test, opts: { env?: Record<string, string>, pingMs?: number, presenceSweepMs?: number, databasePath?: string, logLines?: string[] } = {}) {
  let url = opts.databasePath
  let db
  if (url === undefined) {
    const fresh = await freshDatabase(t)
    url = fresh.databaseUrl
    db = fresh.db
  } else {
    db = openTestDatabase(url)
  }
  const clock = new FakeClock()
  const config = testConfig({ DATABASE_URL: url, ...opts.env })
  const lines = opts.logLines
  const logger = lines === undefined ? undefined : { level: 'info', stream: { write: (line: string) => { lines.push(line) } } }
  const app = await buildApp({ config, db, clock, logger, live: { pingMs: opts.pingMs ?? 60_000, presenceSweepMs: opts.presenceSweepMs ?? 60_000 } })
  const sockets = new Set<Socket>()
  app.server.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)) })
  t.teardown(async () => await app.close())
  const base = await listen(app)
  const bus = app.services.events as InProcessEventBus
  return { app, db, clock, base, bus, path: url, sockets }
}

/** A ticket through the real inbound webhook; its first message holds `text`. */
async function inbound (app: Awaited<ReturnType<typeof liveApp>>['app'], text: string, from = '31612345678'): Promise<number> {
  const res = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: from, payload: text, receiver: '3197010260000', id: `mb-${from}-${text.length}-${Math.random()}` }) })
  if (res.statusCode !== 200) throw new Error(`webhook answered ${res.statusCode}: ${res.body}`)
  return res.json().ticket_id
}

/**
 * Resolves once the bus has handed `n` ticket events to its subscribers, that is, once they are in
 * its ring. On PostgreSQL a publish comes back through NOTIFY a moment later; in process, at once.
 */
async function received (bus: InProcessEventBus, n: number): Promise<void> {
  await new Promise<void>((resolve) => {
    let seen = 0
    const unsubscribe = bus.subscribe((event) => {
      if (event.name === 'ticket' && ++seen === n) {
        unsubscribe()
        resolve()
      }
    })
  })
}

const changesOf = (frames: Frame[]): string[] => frames.filter((f) => f.event === 'ticket').map((f) => `${ticketData(f).ticketId}:${ticketData(f).change}`)

t.test('without a session: 401 JSON, never a redirect, and no stream', async (t) => {
  const { base } = await liveApp(t)
  for (const accept of ['text/event-stream', '*/*']) {
    const res = await openStream(base, { accept })
    t.equal(res.status, 401, accept)
    t.match(res.headers['content-type'], /^application\/json/)
    t.match(await res.json(), { statusCode: 401, error: 'UNAUTHENTICATED', message: /not signed in/ })
  }
})

t.test('the stream: headers per the contract, a delivery status change arrives with an id after it commits', async (t) => {
  const { app, base } = await liveApp(t)
  const ada = await signedInAgent(app)
  const ticketId = await inbound(app, 'Where is my parcel?')
  const stream = await openStream(base, { cookie: ada.cookie })
  t.teardown(() => stream.close())
  t.equal(stream.status, 200)
  t.equal(stream.headers['content-type'], 'text/event-stream')
  t.equal(stream.headers['cache-control'], 'no-store')
  t.equal(stream.headers['x-accel-buffering'], 'no')
  // The confirmation SMS goes out: queued → sending → sent (StatusService listener, after commit).
  await app.services.worker.drain()
  const delivery = await stream.next(isTicket(ticketId, 'delivery'))
  // On PostgreSQL the id also says when the instance received it, so another instance can resume from it.
  t.match(delivery.id, testEngine === 'sqlite' ? /^[1-9][0-9]*$/ : /^[1-9][0-9]*\.[0-9]+$/, 'a persistent event carries a numeric id')
  t.same(JSON.parse(delivery.data), { ticketId, change: 'delivery' }, 'ids to fetch, nothing else')
  const message = await app.services.db.selectFrom('messages').select('status').where('direction', '=', 'outbound').executeTakeFirstOrThrow()
  t.not(message.status, 'queued', 'the change it announces is committed and visible')
})

t.test('406 for a client that refuses text/event-stream', async (t) => {
  const { app, base } = await liveApp(t)
  const ada = await signedInAgent(app)
  const res = await openStream(base, { cookie: ada.cookie, accept: 'application/json' })
  t.equal(res.status, 406)
})

t.test('a reconnect with Last-Event-ID gets exactly the missed events, in order, then live ones; the header wins over ?lastEventId=', async (t) => {
  const { app, base, bus } = await liveApp(t)
  const ada = await signedInAgent(app)
  const first = await openStream(base, { cookie: ada.cookie })
  for (let i = 1; i <= 3; i++) bus.publish({ ticketId: i, change: 'message' })
  const seen = [await first.next(isTicket(1)), await first.next(isTicket(2))]
  first.close()
  for (let i = 4; i <= 5; i++) bus.publish({ ticketId: i, change: 'status' })

  const again = await openStream(base, { cookie: ada.cookie, lastEventId: seen[1].id as string, query: `?lastEventId=${seen[0].id as string}` })
  t.teardown(() => again.close())
  bus.publish({ ticketId: 6, change: 'note' })
  await again.next(isTicket(6))
  t.same(changesOf(again.frames), ['3:message', '4:status', '5:status', '6:note'], 'nothing twice, nothing lost, in order')
  const ids = again.frames.filter((f) => f.event === 'ticket').map((f) => Number(f.id))
  t.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]), 'ids grow')

  const fromPage = await openStream(base, { cookie: ada.cookie, query: `?lastEventId=${seen[0].id as string}` })
  t.teardown(() => fromPage.close())
  await fromPage.next(isTicket(6))
  t.same(changesOf(fromPage.frames), ['2:message', '3:message', '4:status', '5:status', '6:note'], 'the page\'s first connection uses the query')
})

t.test('a page rendered with lastId() gets what was published between the render and the connection', async (t) => {
  const { app, base, bus } = await liveApp(t)
  const ada = await signedInAgent(app)
  const rendered = bus.lastId()
  bus.publish({ ticketId: 8, change: 'created' })
  const stream = await openStream(base, { cookie: ada.cookie, query: `?lastEventId=${rendered}` })
  t.teardown(() => stream.close())
  t.same(ticketData(await stream.next(isTicket(8))), { ticketId: 8, change: 'created' })
})

t.test('reload and close: an id from before a restart, and one beyond the ring', async (t) => {
  const before = await liveApp(t)
  before.bus.publish({ ticketId: 1, change: 'created' })
  const oldId = before.bus.lastId()
  await before.app.close()

  const after = await liveApp(t, { databasePath: before.path, env: { EVENT_REPLAY_MAX: '10' } })
  const ada = await signedInAgent(after.app)
  const restarted = await openStream(after.base, { cookie: ada.cookie, lastEventId: oldId })
  t.equal(restarted.status, 200)
  await restarted.ended
  t.same(restarted.frames.map((f) => [f.event, f.data]), [['reload', '{}']], 'only `event: reload`, then the server closes')

  const rendered = after.bus.lastId()
  const inRing = received(after.bus, 11)
  for (let i = 1; i <= 11; i++) after.bus.publish({ ticketId: i, change: 'message' })
  await inRing
  const behind = await openStream(after.base, { cookie: ada.cookie, query: `?lastEventId=${rendered}` })
  await behind.ended
  t.same(behind.frames.map((f) => f.event), ['reload'], '11 events behind a ring of 10')
  t.equal(after.bus.listenerCount(), 0, 'neither stays subscribed')
})

t.test('an event for one agent (audience) reaches only that agent\'s streams', async (t) => {
  const { app, base, bus } = await liveApp(t)
  const ada = await signedInAgent(app, { email: 'ada@example.com', name: 'Ada' })
  const bo = await signedInAgent(app, { email: 'bo@example.com', name: 'Bo' })
  const adas = await openStream(base, { cookie: ada.cookie })
  const bos = await openStream(base, { cookie: bo.cookie })
  t.teardown(() => { adas.close(); bos.close() })
  const rendered = bus.lastId()
  bus.publish({ ticketId: 4, change: 'read' }, { audience: ada.id })
  bus.publish({ ticketId: 5, change: 'status' })
  await adas.next(isTicket(5))
  await bos.next(isTicket(5))
  t.same(changesOf(adas.frames), ['4:read', '5:status'])
  t.same(changesOf(bos.frames), ['5:status'], 'Bo never sees Ada\'s read mark')

  const replayed = await openStream(base, { cookie: bo.cookie, query: `?lastEventId=${rendered}` })
  t.teardown(() => replayed.close())
  bus.publish({ ticketId: 6, change: 'note' })
  await replayed.next(isTicket(6))
  t.same(changesOf(replayed.frames), ['5:status', '6:note'], 'nor in a replay')
})

t.test('presence: a report reaches other agents\' streams at once, and its expiry through the sweep', async (t) => {
  const { app, base, clock } = await liveApp(t, { presenceSweepMs: 5 })
  const ada = await signedInAgent(app, { email: 'ada@example.com', name: 'Ada' })
  const bo = await signedInAgent(app, { email: 'bo@example.com', name: 'Bo' })
  const ticketId = await inbound(app, 'Hello')
  const bos = await openStream(base, { cookie: bo.cookie })
  t.teardown(() => bos.close())

  const res = await ada.inject({ method: 'POST', url: `/tickets/${ticketId}/presence`, headers: FORM, payload: form({ state: 'typing' }) })
  t.equal(res.statusCode, 204)
  const shown = await bos.next((f) => f.event === 'presence')
  t.equal(shown.id, null, 'presence carries no id: it is not replayed')
  t.same(JSON.parse(shown.data), { ticketId, viewers: [{ agentId: ada.id, name: 'Ada', typing: true }] })

  clock.advance(VIEWING_TTL_MS)
  const gone = await bos.next((f) => f.event === 'presence')
  t.same(JSON.parse(gone.data), { ticketId, viewers: [] }, 'Ada\'s page stopped reporting: Bo learns she left')
  t.same(app.services.presence.viewers(ticketId), [])
})

t.test('no message text ever appears in the stream', async (t) => {
  const { app, base, bus } = await liveApp(t, { presenceSweepMs: 5 })
  const ada = await signedInAgent(app)
  const stream = await openStream(base, { cookie: ada.cookie })
  t.teardown(() => stream.close())
  const ticketId = await inbound(app, `My code is ${MARKER}, where is my parcel?`)
  await inbound(app, `Again: ${MARKER}`)
  await app.services.worker.drain()
  await ada.inject({ method: 'POST', url: `/tickets/${ticketId}/presence`, headers: FORM, payload: form({ state: 'viewing' }) })
  for (const change of ['created', 'message', 'status', 'assigned', 'note', 'read'] as const) bus.publish({ ticketId, change })
  await stream.next(isTicket(ticketId, 'read'))
  await stream.next((f) => f.event === 'presence')
  t.ok(stream.frames.some(isTicket(ticketId, 'delivery')), 'the stream did carry this ticket\'s changes')
  t.notMatch(stream.text(), MARKER)
  t.notMatch(stream.text(), 'parcel')
  t.notMatch(stream.text(), '31612345678', 'nor the customer\'s number')
})

t.test('closing the client removes its subscription; app.close() ends open streams', async (t) => {
  const { app, base, bus, sockets } = await liveApp(t)
  const ada = await signedInAgent(app)
  const idle = bus.listenerCount()
  const stream = await openStream(base, { cookie: ada.cookie })
  await stream.next((f) => f.comment === 'connected')
  t.equal(bus.listenerCount(), idle + 1)
  const serverSide = [...sockets]
  stream.close()
  await Promise.all(serverSide.map(async (s) => s.destroyed ? undefined : await once(s, 'close')))
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(bus.listenerCount(), idle, 'the server dropped the subscription when the client went away')

  const open = await openStream(base, { cookie: ada.cookie })
  await open.next((f) => f.comment === 'connected')
  await app.close()
  await open.ended
  t.pass('app.close() did not wait for the page to go away')
  t.equal(bus.listenerCount(), 0)
})

t.test('a signed-out or disabled agent\'s stream ends at the next ping; the reconnect gets 401', async (t) => {
  const { app, base } = await liveApp(t, { pingMs: 10 })
  const ada = await signedInAgent(app, { email: 'ada@example.com', name: 'Ada' })
  const bo = await signedInAgent(app, { email: 'bo@example.com', name: 'Bo' })
  const adas = await openStream(base, { cookie: ada.cookie })
  const bos = await openStream(base, { cookie: bo.cookie })
  t.teardown(() => { adas.close(); bos.close() })
  await adas.next((f) => f.comment === 'ping')
  const out = await ada.inject({ method: 'POST', url: '/logout', headers: FORM, payload: form({ _csrf: ada.csrfToken }) })
  t.equal(out.statusCode, 303)
  await adas.ended
  t.pass('signed out: the stream ended')
  await app.services.agents.disable('bo@example.com')
  await bos.ended
  t.pass('disabled: the stream ended')
  t.equal((await openStream(base, { cookie: ada.cookie })).status, 401)
})

t.test('HEAD /inbox/events opens no stream', async (t) => {
  const { app } = await liveApp(t)
  const ada = await signedInAgent(app)
  const res = await app.inject({ method: 'HEAD', url: '/inbox/events', headers: { cookie: ada.cookie, accept: 'text/event-stream' } })
  t.equal(res.statusCode, 404)
})

t.test('nothing is logged per event', async (t) => {
  const logLines: string[] = []
  const { app, base, bus } = await liveApp(t, { logLines })
  const ada = await signedInAgent(app)
  const stream = await openStream(base, { cookie: ada.cookie })
  t.teardown(() => stream.close())
  await stream.next((f) => f.comment === 'connected')
  const before = logLines.length
  for (let i = 1; i <= 200; i++) bus.publish({ ticketId: i, change: 'message' })
  await stream.next(isTicket(200))
  t.equal(logLines.length, before, '200 events, no log line')
})

t.test('a page that stops reading is dropped once 256 KiB wait for it, instead of buffering without bound', sqliteOnly('the stream\'s back-pressure is the same on both engines; a million NOTIFYs to fill the socket would take minutes'), async (t) => {
  const { app, base, bus } = await liveApp(t)
  const ada = await signedInAgent(app)
  const idle = bus.listenerCount()
  const frozen = await openStream(base, { cookie: ada.cookie })
  const reading = await openStream(base, { cookie: ada.cookie })
  t.teardown(() => { frozen.close(); reading.close() })
  await frozen.next((f) => f.comment === 'connected')
  frozen.pause()
  let published = 0
  // The kernel's socket buffers take some megabytes first; then Node's buffer grows.
  while (bus.listenerCount() === idle + 2 && published < 2_000_000) {
    for (let i = 0; i < 1000; i++) bus.publish({ ticketId: ++published, change: 'message' })
    await new Promise((resolve) => setImmediate(resolve))
    await new Promise((resolve) => setImmediate(resolve))
  }
  t.equal(bus.listenerCount(), idle + 1, `the frozen page was dropped after ${published} events`)
  bus.publish({ ticketId: 0, change: 'note' })
  await reading.next(isTicket(0, 'note'))
  t.pass('the page that reads is still served')
})

t.test('a `: ping` comment goes out on the interval', async (t) => {
  const { app, base } = await liveApp(t, { pingMs: 10 })
  const ada = await signedInAgent(app)
  const stream = await openStream(base, { cookie: ada.cookie })
  t.teardown(() => stream.close())
  await stream.next((f) => f.comment === 'ping')
  await stream.next((f) => f.comment === 'ping')
  t.match(stream.text(), /\n\n: ping\n\n/, 'a comment line on its own, which EventSource ignores')
})

t.test('a cap on open streams, per session and in all, refused with 429 and a message a person understands', async (t) => {
  const { app, base } = await liveApp(t, { env: { EVENT_STREAMS_PER_SESSION: '2', EVENT_STREAMS_MAX: '3' } })
  const ada = await signedInAgent(app, { email: 'ada@example.com', name: 'Ada' })
  const bo = await signedInAgent(app, { email: 'bo@example.com', name: 'Bo' })
  const open = [await openStream(base, { cookie: ada.cookie }), await openStream(base, { cookie: ada.cookie })]
  t.teardown(() => { for (const s of open) s.close() })
  const third = await openStream(base, { cookie: ada.cookie })
  t.equal(third.status, 429)
  t.equal(third.headers['retry-after'], '30')
  t.match(await third.json(), { error: 'TOO_MANY_STREAMS', message: /already has 2 live connections open .*Close some Textdesk tabs/ })
  open.push(await openStream(base, { cookie: bo.cookie }))
  t.equal(open[2].status, 200, 'another session still gets one')
  const fourth = await openStream(base, { cookie: bo.cookie })
  t.equal(fourth.status, 429)
  t.match(await fourth.json(), { message: /as many live connections open as it allows/ })
})

t.test('POST /tickets/:id/presence: 204, CSRF by header or by the _csrf field (sendBeacon), clear 400/403/404', async (t) => {
  const { app } = await liveApp(t)
  const ada = await signedInAgent(app, { name: 'Ada' })
  const ticketId = await inbound(app, 'Hi')
  const post = async (url: string, payload: string, headers: Record<string, string> = FORM) =>
    await app.inject({ method: 'POST', url, headers: { cookie: ada.cookie, ...headers }, payload })

  // A report changes the board, which announces it: at once in process, through NOTIFY on PostgreSQL.
  const announced = async (): Promise<void> => {
    await new Promise<void>((resolve) => {
      const unsubscribe = app.services.events.subscribe((event) => {
        if (event.name === 'presence') { unsubscribe(); resolve() }
      })
    })
  }
  let change = announced()
  const viaHeader = await post(`/tickets/${ticketId}/presence`, form({ state: 'viewing' }), { ...FORM, 'x-csrf-token': ada.csrfToken })
  t.equal(viaHeader.statusCode, 204)
  t.equal(viaHeader.body, '')
  await change
  change = announced()
  const json = await post(`/tickets/${ticketId}/presence`, JSON.stringify({ state: 'typing' }), { 'content-type': 'application/json', 'x-csrf-token': ada.csrfToken })
  t.equal(json.statusCode, 204, 'JSON works too')
  await change
  t.same(app.services.presence.viewers(ticketId), [{ agentId: ada.id, name: 'Ada', typing: true }])
  // navigator.sendBeacon(url, URLSearchParams) sets no headers of ours, only this content type.
  change = announced()
  const beacon = await post(`/tickets/${ticketId}/presence`, form({ state: 'left', _csrf: ada.csrfToken }), { 'content-type': 'application/x-www-form-urlencoded;charset=UTF-8' })
  t.equal(beacon.statusCode, 204)
  await change
  t.same(app.services.presence.viewers(ticketId), [])

  const forged = await post(`/tickets/${ticketId}/presence`, form({ state: 'viewing' }))
  t.equal(forged.statusCode, 403, 'no token: refused')
  t.same(app.services.presence.viewers(ticketId), [], 'and nothing recorded')

  const bad = await post(`/tickets/${ticketId}/presence`, form({ state: 'dancing', _csrf: ada.csrfToken }))
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().message, 'The presence state must be "viewing", "typing" or "left".')
  const missing = await post(`/tickets/${ticketId}/presence`, form({ _csrf: ada.csrfToken }))
  t.equal(missing.statusCode, 400)

  for (const id of ['999', 'abc', '0', '1e3']) {
    const res = await post(`/tickets/${id}/presence`, form({ state: 'viewing', _csrf: ada.csrfToken }))
    t.equal(res.statusCode, 404, id)
    t.equal(res.json().message, `There is no ticket ${id}.`)
  }

  const anonymous = await app.inject({ method: 'POST', url: `/tickets/${ticketId}/presence`, headers: FORM, payload: form({ state: 'viewing' }) })
  t.equal(anonymous.statusCode, 401)
})

// The tickets services publish `created`/`message` once the inbound group commit resolves.
t.test('end to end: an inbound SMS through the signed webhook reaches a connected stream', async (t) => {
  const { SignJWT } = await import('jose')
  const { createHash, randomUUID } = await import('node:crypto')
  const KEY = 'fixture-signing-key-0001'
  const PUBLIC = 'https://support.example.com'
  // Plain cookie names: the test client speaks http to the listening server.
  const { app, base, clock } = await liveApp(t, { env: { MESSAGEBIRD_SIGNING_KEY: KEY, PUBLIC_URL: PUBLIC, SECURE_COOKIES: 'false' } })
  clock.set('2026-01-01T09:00:00.000Z')
  const ada = await signedInAgent(app)
  const stream = await openStream(base, { cookie: ada.cookie })
  t.teardown(() => stream.close())

  const body = form({ originator: '31612345678', payload: `Is my order ready? ${MARKER}`, receiver: '3197010260000', id: 'mb-e2e-1' })
  const url = `${PUBLIC}/webhooks/messagebird`
  const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex')
  const now = Math.floor(clock.now().getTime() / 1000)
  const jwt = await new SignJWT({ jti: randomUUID(), url_hash: sha256(url), payload_hash: sha256(body) })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuer('MessageBird').setNotBefore(now).setExpirationTime(now + 60)
    .sign(new TextEncoder().encode(KEY))
  const res = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { ...FORM, 'messagebird-signature-jwt': jwt }, payload: body })
  t.equal(res.statusCode, 200)
  const ticketId = res.json().ticket_id
  const event = await stream.next(isTicket(ticketId))
  t.ok(['created', 'message'].includes(ticketData(event).change))
  t.ok(event.id)
  t.notMatch(stream.text(), MARKER)
})
