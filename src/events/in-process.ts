import type { Clock } from '../clock.js'
import type { Db } from '../db/database.js'
import { afterCommit } from '../db/after-commit.js'
import type { BusEvent, EventBus, PersistentEvent, PresenceEventData, Replay, TicketEventData } from './bus.js'

/** Epochs handed out in this process: two buses made in the same millisecond still differ. */
let lastEpoch = 0

/**
 * The event bus of one process. Persistent events get ids `epoch × 1000 + counter`, where the
 * epoch is the instance's start in ms (made unique within the process): they grow within the
 * instance and across restarts (unless an instance averaged over a million events a second), and
 * an id from before a restart is not in the ring, so its reconnect is answered with "reload".
 * Ids within an epoch are consecutive, so an id's place in the ring is a subtraction. The ring
 * keeps the last `replayMax` events for at most `replayMinutes`, in memory: no database write per
 * event.
 */
export class InProcessEventBus implements EventBus {
  private readonly listeners = new Set<(event: BusEvent) => void>()
  /** The ring is `events[head…]`: dropping from the front moves `head`, and the array is compacted now and then (one splice per event was 3 % of ingestion's CPU). */
  private readonly events: PersistentEvent[] = []
  private head = 0
  /** The number of the ring's first event (when it holds one): `epoch × 1000 + counter`. */
  private first: number
  /** The id a client that has seen nothing newer resumes from: the epoch's start, or the last event dropped. */
  private baseId: string
  private epoch: number
  /** The `at` of the newest event dropped from the ring by size or age (-Infinity while none was). */
  private droppedAt = -Infinity
  private counter = 0
  private closed = false

  constructor (private readonly deps: { db: Db, clock: Clock, replayMax: number, replayMinutes: number }) {
    this.epoch = lastEpoch = Math.max(deps.clock.now().getTime(), lastEpoch + 1)
    this.first = this.epoch * 1000 + 1
    this.baseId = String(this.epoch * 1000)
  }

  publish (data: TicketEventData, opts: { audience?: number } = {}): void {
    if (this.closed) return
    const at = this.deps.clock.now().getTime()
    const event: PersistentEvent = { id: String(this.epoch * 1000 + ++this.counter), name: 'ticket', data, audience: opts.audience ?? null, at }
    this.events.push(event)
    this.forget(at)
    this.emit(event)
  }

  async publishInTransaction (_trx: unknown, data: TicketEventData, opts: { audience?: number } = {}): Promise<void> {
    afterCommit(this.deps.db, () => this.publish(data, opts))
  }

  /**
   * Starts a new epoch: no id given before is replayed, and every open page is told to reload.
   * For a bus fed from outside (postgres.ts) that may have missed events.
   */
  restart (): void {
    this.epoch = lastEpoch = Math.max(this.deps.clock.now().getTime(), lastEpoch + 1)
    this.counter = 0
    this.events.length = 0
    this.head = 0
    this.first = this.epoch * 1000 + 1
    this.baseId = String(this.epoch * 1000)
    this.droppedAt = -Infinity
    this.emit({ name: 'reload', data: {}, audience: null })
  }

  /** True when `id` was numbered in this ring's current epoch (the canonical spelling only). */
  ownsId (id: string): boolean {
    return /^[1-9][0-9]{0,17}$/.test(id) && Math.floor(Number(id) / 1000) === this.epoch
  }

  /**
   * Replay by time, for a resume point this ring did not number (a page of another instance,
   * postgres.ts): every event received at or after `since` (ms, the injected clock), then every
   * later one; `ok: false` when the ring has dropped an event from that span. The caller decides
   * whether this ring was receiving events all along since then.
   */
  subscribeSince (since: number, listener: (event: BusEvent) => void): { replay: Replay, unsubscribe: () => void } {
    this.forget(this.deps.clock.now().getTime())
    if (this.droppedAt >= since) return { replay: { ok: false }, unsubscribe: () => {} }
    const events = this.events.slice(this.head).filter((e) => e.at >= since)
    return { replay: { ok: true, events }, unsubscribe: this.subscribe(listener) }
  }

  publishEphemeral (data: PresenceEventData): void {
    if (this.closed) return
    this.emit({ name: 'presence', data, audience: null })
  }

  subscribe (listener: (event: BusEvent) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  subscribeAfter (lastId: string | null, listener: (event: BusEvent) => void): { replay: Replay, unsubscribe: () => void } {
    // Synchronous: nothing can be published between the replay and the subscription.
    const replay = lastId === null ? { ok: true as const, events: [] } : this.after(lastId)
    return { replay, unsubscribe: replay.ok ? this.subscribe(listener) : () => {} }
  }

  lastId (): string {
    return this.events.length > this.head ? this.events[this.events.length - 1].id : this.baseId
  }

  /** How many listeners are subscribed (the stream route's cleanup is tested with it). */
  listenerCount (): number {
    return this.listeners.size
  }

  async close (): Promise<void> {
    this.closed = true
    this.listeners.clear()
  }

  private after (lastId: string): Replay {
    this.forget(this.deps.clock.now().getTime())
    if (lastId === this.baseId) return { ok: true, events: this.events.slice(this.head) }
    // Only the canonical spelling of a number in the ring: "007", "7.0" or "1e3" are not ids we sent.
    if (!/^[1-9][0-9]{0,17}$/.test(lastId)) return { ok: false }
    const offset = Number(lastId) - this.first
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= this.events.length - this.head) return { ok: false }
    const at = this.head + offset
    if (this.events[at].id !== lastId) return { ok: false }
    return { ok: true, events: this.events.slice(at + 1) }
  }

  /** Drops events beyond the ring's size or age. */
  private forget (now: number): void {
    const oldest = now - this.deps.replayMinutes * 60_000
    const { events } = this
    let head = this.head
    while (head < events.length && (events.length - head > this.deps.replayMax || events[head].at < oldest)) head++
    if (head === this.head) return
    this.baseId = events[head - 1].id
    this.droppedAt = events[head - 1].at
    this.first += head - this.head
    this.head = head
    if (head >= 1024 && head * 2 >= events.length) {
      events.splice(0, head)
      this.head = 0
    }
  }

  private emit (event: BusEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event)
      } catch (err) {
        // One broken subscriber must neither starve the others nor fail the committed change that published.
        process.emitWarning(err as Error)
      }
    }
  }
}
