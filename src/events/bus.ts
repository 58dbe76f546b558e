import type { TxExecutor } from '../db/database.js'

// Live updates for agents' pages: a small publish/subscribe room. Payloads carry ids to fetch,
// never message text. The in-process implementation (in-process.ts) is the default; a
// multi-instance one (Postgres LISTEN/NOTIFY) implements the same interface, so no caller changes.

export type TicketChange = 'created' | 'message' | 'status' | 'assigned' | 'note' | 'read' | 'delivery' | 'contact'

export interface TicketEventData { ticketId: number, change: TicketChange }
export interface Viewer { agentId: number, name: string, typing: boolean }
export interface PresenceEventData { ticketId: number, viewers: Viewer[] }

/** A change worth refetching for: kept in the replay ring and numbered. */
export interface PersistentEvent {
  /** Grows within an instance epoch; a reconnect names the last one it saw (Last-Event-ID). */
  id: string
  name: 'ticket'
  data: TicketEventData
  /** Only this agent's pages care (their unread marks); null: every agent. */
  audience: number | null
  /** When it was published (ms, injected clock): the ring forgets events by age. */
  at: number
}

/** Presence: who is viewing or typing. Not numbered, not replayed. */
export interface EphemeralEvent {
  name: 'presence'
  data: PresenceEventData
  audience: null
}

/** Events may have been missed (the instance lost its LISTEN connection): every page reloads. */
export interface ReloadEvent {
  name: 'reload'
  data: Record<string, never>
  audience: null
}

export type BusEvent = PersistentEvent | EphemeralEvent | ReloadEvent

export type Replay =
  | { ok: true, events: PersistentEvent[] }
  /** The id is unknown here: from before a restart, or older than the ring keeps. */
  | { ok: false }

export interface EventBus {
  /**
   * Publishes a change whose transaction has committed. A bus that sends it elsewhere (NOTIFY)
   * returns a promise that settles once it is sent (never rejects): a request awaits it before
   * answering, so the events of one client's consecutive requests go out in their order.
   */
  publish: (data: TicketEventData, opts?: { audience?: number }) => void | Promise<void>
  /**
   * Publishes a change made inside `trx`, once (and only if) it commits: for code that runs inside a
   * transaction it does not own (status listeners). A LISTEN/NOTIFY implementation sends its
   * NOTIFY in `trx`, which Postgres delivers at commit.
   */
  publishInTransaction: (trx: TxExecutor, data: TicketEventData, opts?: { audience?: number }) => Promise<void>
  publishEphemeral: (data: PresenceEventData) => void
  /** Every event from now on, in order; returns the unsubscribe function. */
  subscribe: (listener: (event: BusEvent) => void) => () => void
  /**
   * Replay and subscription in one step, so nothing falls between them: the events after
   * `lastId` (when given), then every later one. Replay `ok: false` means "reload".
   */
  subscribeAfter: (lastId: string | null, listener: (event: BusEvent) => void) => { replay: Replay, unsubscribe: () => void }
  /** The id a page rendered now should resume from. */
  lastId: () => string
  close: () => Promise<void>
}
