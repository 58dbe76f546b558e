import { CompiledQuery } from 'kysely'
import pg from 'pg'
import type { Clock } from '../clock.js'
import { pgClientOptions, type Db, type TxExecutor } from '../db/database.js'
import type { PostgresConfig } from '../config.js'
import type { BusEvent, EventBus, PersistentEvent, PresenceEventData, Replay, TicketEventData } from './bus.js'
import { InProcessPresenceBoard } from './in-process-presence.js'
import { InProcessEventBus } from './in-process.js'
import type { PresenceBoard, PresenceState } from './presence.js'

/** The channel every instance of one database LISTENs on. */
export const CHANNEL = 'textdesk_events'

/** Sent with every committed change: compiled by hand, not built and compiled by Kysely each time. */
function notifyQuery (payload: string): CompiledQuery {
  return CompiledQuery.raw('select pg_notify($1, $2)', [CHANNEL, payload])
}

/**
 * How far back a resume point from another instance is replayed: clock skew between the machines
 * plus NOTIFY's delivery lag, with room to spare. Replaying a few events twice costs a page a
 * refetch; missing one would leave it stale.
 */
export const FOREIGN_RESUME_MARGIN_MS = 5_000

/** What travels in a NOTIFY: ids and a kind, never message text (NOTIFY payloads are limited to 8,000 bytes anyway). */
type Wire =
  | { k: 't', d: TicketEventData, a: number | null }
  | { k: 'p', d: PresenceEventData }
  /** A page's presence report, applied by every instance's board (SharedPresenceBoard). */
  | { k: 'r', t: number, g: { id: number, name: string }, s: PresenceState }

/**
 * The event bus of several instances sharing one PostgreSQL database. A change is published with
 * NOTIFY (inside the changing transaction when there is one, which PostgreSQL delivers only if it
 * commits), and every instance, this one included, receives it on a dedicated LISTEN connection
 * outside the pool and hands it to its own ring (in-process.ts): numbering, replay and delivery
 * to its pages are per instance.
 *
 * A page may be rendered by one instance and open its stream, or reconnect, on another: behind a
 * round-robin balancer that is every other page load. So the ids given to pages are
 * `<ring id>.<ms received>`. The instance that numbered it replays exactly what follows. Any
 * other instance received the same notifications in the same order (PostgreSQL delivers them in
 * commit order to every listener) at about the same time, so it replays what it received since
 * that time, less FOREIGN_RESUME_MARGIN_MS: a few events twice, none missed. It answers "reload"
 * (a full catch-up) only when it was not listening for all of that span or its ring has dropped
 * part of it. No sticky sessions are needed.
 *
 * If the LISTEN connection drops, notifications sent meanwhile are lost to this instance: it
 * reconnects (1 s, then doubling up to 30 s) and then tells every open page to reload, and starts a
 * new epoch so that no reconnect is answered from a ring with a hole in it.
 */
export class PostgresEventBus implements EventBus {
  private readonly local: InProcessEventBus
  private client: pg.Client | null = null
  private closed = false
  private retryMs = 1_000
  private retryTimer: NodeJS.Timeout | null = null
  private connected: Promise<void>
  private everConnected = false
  /** Since when (ms, the injected clock) this instance has received every notification: Infinity until LISTEN is up. */
  private listeningSince = Infinity
  /** The last NOTIFY sent outside a transaction: the next waits for it (see notify()). */
  private notifying: Promise<void> = Promise.resolve()
  private presenceReport: ((ticketId: number, agent: { id: number, name: string }, state: PresenceState) => void) | null = null

  constructor (private readonly deps: {
    db: Db
    clock: Clock
    config: PostgresConfig
    replayMax: number
    replayMinutes: number
    onError?: (message: string) => void
    /** The first reconnect delay (tests shorten it); it doubles up to 30 s. */
    retryMs?: number
  }) {
    this.retryMs = deps.retryMs ?? 1_000
    this.local = new InProcessEventBus({ db: deps.db, clock: deps.clock, replayMax: deps.replayMax, replayMinutes: deps.replayMinutes })
    this.connected = this.connect()
  }

  /** Resolves once the LISTEN connection is up (tests and start-up wait for it). */
  async ready (): Promise<void> {
    await this.connected
  }

  async publish (data: TicketEventData, opts: { audience?: number } = {}): Promise<void> {
    if (this.closed) return
    await this.notify({ k: 't', d: data, a: opts.audience ?? null })
  }

  async publishInTransaction (trx: TxExecutor, data: TicketEventData, opts: { audience?: number } = {}): Promise<void> {
    if (this.closed) return
    await trx.executeQuery(notifyQuery(JSON.stringify({ k: 't', d: data, a: opts.audience ?? null } satisfies Wire)))
  }

  publishEphemeral (data: PresenceEventData): void {
    if (this.closed) return
    void this.notify({ k: 'p', d: data })
  }

  subscribe (listener: (event: BusEvent) => void): () => void {
    return this.local.subscribe(outward(listener))
  }

  subscribeAfter (lastId: string | null, listener: (event: BusEvent) => void): { replay: Replay, unsubscribe: () => void } {
    const deliver = outward(listener)
    let result: { replay: Replay, unsubscribe: () => void }
    if (lastId === null) {
      result = this.local.subscribeAfter(null, deliver)
    } else {
      const match = /^([1-9][0-9]{0,17})\.([0-9]{1,16})$/.exec(lastId)
      if (match === null) return { replay: { ok: false }, unsubscribe: () => {} }
      const [, ringId, at] = match
      if (this.local.ownsId(ringId)) {
        result = this.local.subscribeAfter(ringId, deliver)
      } else {
        const since = Number(at) - FOREIGN_RESUME_MARGIN_MS
        if (since < this.listeningSince) return { replay: { ok: false }, unsubscribe: () => {} }
        result = this.local.subscribeSince(since, deliver)
      }
    }
    return { replay: result.replay.ok ? { ok: true, events: result.replay.events.map(withTime) } : result.replay, unsubscribe: result.unsubscribe }
  }

  lastId (): string {
    return `${this.local.lastId()}.${this.deps.clock.now().getTime()}`
  }

  listenerCount (): number {
    return this.local.listenerCount()
  }

  async close (): Promise<void> {
    this.closed = true
    if (this.retryTimer !== null) clearTimeout(this.retryTimer)
    // What was published before closing still goes out, before the pool it uses is closed.
    await this.notifying
    const client = this.client
    this.client = null
    await this.local.close()
    if (client !== null) await client.end().catch(() => {})
  }

  /** A presence board shared by every instance (SharedPresenceBoard). */
  presenceBoard (): PresenceBoard {
    const board = new InProcessPresenceBoard({ clock: this.deps.clock, events: { publishEphemeral: (data) => { if (!this.closed) this.local.publishEphemeral(data) } } })
    this.presenceReport = (ticketId, agent, state) => { board.report(ticketId, agent, state) }
    return {
      viewers: (ticketId) => board.viewers(ticketId),
      // Every instance, this one included, applies the report when its NOTIFY arrives, so every
      // board holds every instance's viewers; each announces changes to its own pages only.
      report: (ticketId, agent, state) => { if (!this.closed) void this.notify({ k: 'r', t: ticketId, g: { id: agent.id, name: agent.name }, s: state }) },
      sweep: () => { board.sweep() }
    }
  }

  /**
   * Outside a transaction: the change has committed, so the NOTIFY goes out on its own. One after
   * the other, as published: two at once would take two pool connections, and PostgreSQL delivers
   * notifications in the order their sessions commit, so the later could arrive first.
   */
  private async notify (wire: Wire): Promise<void> {
    const payload = JSON.stringify(wire)
    this.notifying = this.notifying.then(async () => {
      await this.deps.db.executeQuery(notifyQuery(payload))
    }).catch((err: Error) => {
      if (!this.closed) this.deps.onError?.(`a live update was not sent: ${err.message}`)
    })
    await this.notifying
  }

  private receive (payload: string | undefined): void {
    if (this.closed || payload === undefined) return
    let wire: Wire
    try {
      wire = JSON.parse(payload) as Wire
    } catch {
      return
    }
    if (wire.k === 't') this.local.publish(wire.d, wire.a === null ? {} : { audience: wire.a })
    else if (wire.k === 'p') this.local.publishEphemeral(wire.d)
    else if (wire.k === 'r') this.presenceReport?.(wire.t, wire.g, wire.s)
  }

  private async connect (): Promise<void> {
    const client = new pg.Client(pgClientOptions(this.deps.config))
    client.on('notification', (n) => { if (n.channel === CHANNEL) this.receive(n.payload) })
    client.on('error', (err) => { this.lost(client, err) })
    client.on('end', () => { this.lost(client, new Error('the connection ended')) })
    try {
      await client.connect()
      await client.query(`listen ${CHANNEL}`)
    } catch (err) {
      this.lost(client, err as Error)
      if (!this.everConnected) throw err
      return
    }
    if (this.closed) {
      await client.end().catch(() => {})
      return
    }
    this.client = client
    this.retryMs = this.deps.retryMs ?? 1_000
    // Anything published while this instance was not listening is lost to it: its pages start afresh.
    if (this.everConnected) this.local.restart()
    this.everConnected = true
    this.listeningSince = this.deps.clock.now().getTime()
  }

  private lost (client: pg.Client, err: Error): void {
    if (this.closed || (this.client !== null && this.client !== client)) return
    if (this.client === client) this.client = null
    client.removeAllListeners('end')
    client.end().catch(() => {})
    if (this.retryTimer !== null || !this.everConnected) return
    this.deps.onError?.(`the live-update connection to PostgreSQL was lost (${err.message}); reconnecting in ${this.retryMs / 1000} s`)
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null
      this.connected = this.connect().catch(() => {})
    }, this.retryMs)
    this.retryTimer.unref()
    this.retryMs = Math.min(this.retryMs * 2, 30_000)
  }
}

/** A ring event as pages see it: its id carries when it was received, for resuming on another instance. */
function withTime (event: PersistentEvent): PersistentEvent {
  return { ...event, id: `${event.id}.${event.at}` }
}

function outward (listener: (event: BusEvent) => void): (event: BusEvent) => void {
  return (event) => { listener(event.name === 'ticket' ? withTime(event) : event) }
}
