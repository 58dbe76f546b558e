import type { ServerResponse } from 'node:http'
import { fastifySSE } from '@fastify/sse'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { BusEvent, EventBus } from './bus.js'
import type { PresenceBoard, PresenceState } from './presence.js'

export interface LiveRoutesDeps {
  events: EventBus
  presence: PresenceBoard
  ticketExists: (ticketId: number) => Promise<boolean>
  /** Whether a session is still signed in (not signed out, expired or disabled since the stream opened). */
  sessionActive: (sessionId: string) => Promise<boolean>
  limits: { maxStreams: number, maxStreamsPerSession: number }
  /** How often every open stream gets a `: ping` comment (the contract's 15 s; tests shorten it). */
  pingMs?: number
  /** How often the presence board forgets expired viewers and tells the pages (1 s; tests shorten it). */
  presenceSweepMs?: number
}

export const PING_MS = 15_000
export const PRESENCE_SWEEP_MS = 1_000
/**
 * A page that stops reading (a frozen tab, a dead network the kernel has not noticed yet) is
 * dropped once this much is waiting for it, instead of buffering without bound; when it comes
 * back, EventSource reconnects with Last-Event-ID and gets the replay or a reload.
 */
export const MAX_UNSENT_BYTES = 256 * 1024

const STATES = new Set<string>(['viewing', 'typing', 'left'])

interface Stream {
  agentId: number
  sessionId: string
  raw: ServerResponse
  unsubscribe: () => void
  /** Frames waiting for this turn of the event loop to end (see write()). */
  pending: string
}

/** One SSE frame. `data` is JSON of ids and names (never message text), so it has no line breaks. */
function frame (event: BusEvent): string {
  const data = JSON.stringify(event.data)
  return event.name === 'ticket' ? `id: ${event.id}\nevent: ticket\ndata: ${data}\n\n` : `event: ${event.name}\ndata: ${data}\n\n`
}

/**
 * Live updates for agents' pages (docs/team-inbox-contract.md, "Server-Sent Events"): `GET /inbox/events`
 * and `POST /tickets/:id/presence`. Register inside the scope that has agent sign-in: both need a
 * session (the stream answers 401 JSON without one) and the POST needs the CSRF token, which a
 * `sendBeacon` (no headers possible) sends as the `_csrf` form field.
 */
export async function liveRoutes (app: FastifyInstance, deps: LiveRoutesDeps): Promise<void> {
  const { events, presence, limits } = deps
  const streams = new Set<Stream>()
  const perSession = new Map<string, number>()

  // The plugin negotiates Accept (406 for a client that refuses text/event-stream), commits the
  // SSE headers, and reports the end of the connection. Frames and pings are written here: the
  // bus delivers synchronously, and a stream that stops reading is dropped (MAX_UNSENT_BYTES).
  await app.register(fastifySSE, { heartbeatInterval: 0 })

  // Polled by every open tab: their request lines are debug-level, like the other background routes.
  const log = app.log as { isLevelEnabled?: (level: string) => boolean }
  const logLevel = log.isLevelEnabled?.('info') === true && !log.isLevelEnabled('debug') ? 'warn' : undefined

  const end = (stream: Stream): void => {
    if (!streams.delete(stream)) return
    stream.unsubscribe()
    const n = (perSession.get(stream.sessionId) ?? 1) - 1
    if (n === 0) perSession.delete(stream.sessionId)
    else perSession.set(stream.sessionId, n)
    if (!stream.raw.writableEnded) stream.raw.end()
  }

  // Frames published in one turn of the event loop (a group commit's batch publishes dozens at
  // once) go out in one write per stream: one system call instead of one per event and page.
  let dirty: Stream[] = []
  const flush = (): void => {
    const streamsToFlush = dirty
    dirty = []
    for (const stream of streamsToFlush) {
      const text = stream.pending
      stream.pending = ''
      // A connection gone before its handler could hear of it never reports its close: drop it here.
      if (stream.raw.destroyed) end(stream)
      else if (stream.raw.writableEnded) continue
      else if (stream.raw.writableLength + text.length > MAX_UNSENT_BYTES) end(stream)
      else stream.raw.write(text)
    }
  }
  const write = (stream: Stream, text: string): void => {
    if (stream.pending === '') {
      if (dirty.length === 0) setImmediate(flush)
      dirty.push(stream)
    }
    stream.pending += text
  }

  // Each ping also ends the streams of sessions that stopped working since they connected (one
  // lookup per session): a signed-out or disabled agent's page stops receiving within 15 s, and
  // its reconnect gets 401.
  let checking = false
  let closing = false
  const checkSessions = async (): Promise<void> => {
    const sessions = new Set([...streams].map((s) => s.sessionId))
    for (const sessionId of sessions) {
      if (await deps.sessionActive(sessionId)) continue
      for (const stream of [...streams]) if (stream.sessionId === sessionId) end(stream)
    }
  }
  const ping = setInterval(() => {
    for (const stream of streams) write(stream, ': ping\n\n')
    if (checking || streams.size === 0) return
    checking = true
    checkSessions().catch((err) => { if (!closing) app.log.error({ err }, 'event stream session check failed') }).finally(() => { checking = false })
  }, deps.pingMs ?? PING_MS)
  ping.unref()
  const sweep = setInterval(() => presence.sweep(), deps.presenceSweepMs ?? PRESENCE_SWEEP_MS)
  sweep.unref()
  // Before the server stops accepting: open streams would otherwise hold app.close() until every
  // page goes away. EventSource reconnects by itself to whichever instance answers next.
  app.addHook('preClose', async () => {
    closing = true
    clearInterval(ping)
    clearInterval(sweep)
    for (const stream of [...streams]) end(stream)
  })

  app.get<{ Querystring: { lastEventId?: string } }>('/inbox/events', {
    sse: { kind: 'only', heartbeat: false },
    // A HEAD request would otherwise open a stream with no body that holds a slot.
    exposeHeadRoute: false,
    logLevel,
    schema: { querystring: { type: 'object', properties: { lastEventId: { type: 'string', maxLength: 40 } } } }
  }, async (req, reply) => {
    const session = req.agentSession
    if (session === undefined) throw new Error('the event stream was registered outside agent sign-in')
    const sessionCount = perSession.get(session.id) ?? 0
    if (streams.size >= limits.maxStreams || sessionCount >= limits.maxStreamsPerSession) {
      const mine = sessionCount >= limits.maxStreamsPerSession
      req.log.warn({ agentId: session.agent.id, streams: streams.size, sessionStreams: sessionCount }, 'event stream refused: too many open')
      return await reply.code(429).header('retry-after', '30').send({
        statusCode: 429,
        error: 'TOO_MANY_STREAMS',
        message: mine
          ? `This session already has ${sessionCount} live connections open (the limit is ${limits.maxStreamsPerSession}). Close some Textdesk tabs; this page will keep trying.`
          : 'The server has as many live connections open as it allows. This page will keep trying; ask an admin to raise EVENT_STREAMS_MAX.'
      })
    }

    // EventSource's own reconnect sends the header; the query is the page's first connection.
    const header = req.headers['last-event-id']
    const lastId = (typeof header === 'string' && header !== '' ? header : undefined) ?? (req.query.lastEventId !== '' ? req.query.lastEventId : undefined) ?? null
    const agentId = session.agent.id
    const raw = reply.raw
    reply.header('cache-control', 'no-store')
    reply.header('x-accel-buffering', 'no')

    const stream: Stream = { agentId, sessionId: session.id, raw, unsubscribe: () => {}, pending: '' }
    const deliver = (event: BusEvent): void => {
      if (event.audience === null || event.audience === agentId) write(stream, frame(event))
    }
    const { replay, unsubscribe } = events.subscribeAfter(lastId, deliver)
    if (!replay.ok) {
      // Too far behind (or from before a restart): the page reloads itself and starts afresh.
      reply.sse.sendHeaders()
      raw.end('event: reload\ndata: {}\n\n')
      return
    }
    stream.unsubscribe = unsubscribe
    streams.add(stream)
    perSession.set(session.id, sessionCount + 1)
    reply.sse.keepAlive()
    reply.sse.onClose(() => end(stream))
    if (raw.destroyed) {
      end(stream)
      return
    }
    reply.sse.sendHeaders()
    // The first bytes flush the headers, so the page's EventSource reports "open" at once.
    raw.write(': connected\n\n')
    for (const event of replay.events) deliver(event)
  })

  app.post<{ Params: { id: string }, Body: { state?: unknown } | undefined }>('/tickets/:id/presence', { logLevel }, async (req, reply) => {
    const agent = req.agent
    if (agent === undefined) throw new Error('the presence route was registered outside agent sign-in')
    const id = req.params.id
    const ticketId = /^[1-9][0-9]{0,14}$/.test(id) ? Number(id) : null
    if (ticketId === null || !await deps.ticketExists(ticketId)) {
      return await refuse(reply, 404, 'NOT_FOUND', `There is no ticket ${id.slice(0, 40)}.`)
    }
    const state = typeof req.body === 'object' && req.body !== null ? req.body.state : undefined
    if (typeof state !== 'string' || !STATES.has(state)) {
      return await refuse(reply, 400, 'BAD_PRESENCE_STATE', 'The presence state must be "viewing", "typing" or "left".')
    }
    presence.report(ticketId, { id: agent.id, name: agent.name }, state as PresenceState)
    return await reply.code(204).send()
  })
}

async function refuse (reply: FastifyReply, statusCode: number, error: string, message: string): Promise<FastifyReply> {
  return await reply.code(statusCode).send({ statusCode, error, message })
}
