import type { Clock } from '../clock.js'
import type { Db } from '../db/database.js'
import { afterCommit } from '../db/after-commit.js'
import type { BusEvent, EventBus, PersistentEvent, PresenceEventData, Replay, TicketEventData } from './bus.js'

/**
 * The event bus of one process. Persistent events get ids `epoch × 1000 + counter`, where the
 * epoch is the instance's start in ms: they grow within the instance and across restarts (unless
 * an instance averaged over a million events a second), and an id from before a restart is not in
 * the ring, so its reconnect is answered with "reload". The ring keeps the last `replayMax`
 * events for at most `replayMinutes`, in memory: no database write per event.
 */
export class InProcessEventBus implements EventBus {
  private readonly listeners = new Set<(event: BusEvent) => void>()
  private readonly ring: PersistentEvent[] = []
  /** Ring position of each id; positions only grow (`dropped` is the first one still kept). */
  private readonly positions = new Map<string, number>()
  private dropped = 0
  /** The id a client that has seen nothing newer resumes from: the epoch's start, or the last event dropped. */
  private baseId: string
  private readonly epoch: number
  private counter = 0

  constructor (private readonly deps: { db: Db, clock: Clock, replayMax: number, replayMinutes: number }) {
    this.epoch = deps.clock.now().getTime()
    this.baseId = String(this.epoch * 1000)
  }

  publish (data: TicketEventData, opts: { audience?: number } = {}): void {
    const at = this.deps.clock.now().getTime()
    const event: PersistentEvent = { id: String(this.epoch * 1000 + ++this.counter), name: 'ticket', data, audience: opts.audience ?? null, at }
    this.positions.set(event.id, this.dropped + this.ring.length)
    this.ring.push(event)
    this.forget(at)
    this.emit(event)
  }

  publishInTransaction (_trx: unknown, data: TicketEventData, opts: { audience?: number } = {}): void {
    afterCommit(this.deps.db, () => this.publish(data, opts))
  }

  publishEphemeral (data: PresenceEventData): void {
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
    return this.ring.length > 0 ? this.ring[this.ring.length - 1].id : this.baseId
  }

  async close (): Promise<void> {
    this.listeners.clear()
  }

  private after (lastId: string): Replay {
    this.forget(this.deps.clock.now().getTime())
    if (lastId === this.baseId) return { ok: true, events: this.ring.slice() }
    const position = this.positions.get(lastId)
    if (position === undefined) return { ok: false }
    return { ok: true, events: this.ring.slice(position - this.dropped + 1) }
  }

  /** Drops events beyond the ring's size or age. */
  private forget (now: number): void {
    const oldest = now - this.deps.replayMinutes * 60_000
    while (this.ring.length > 0 && (this.ring.length > this.deps.replayMax || this.ring[0].at < oldest)) {
      const gone = this.ring.shift() as PersistentEvent
      this.positions.delete(gone.id)
      this.dropped++
      this.baseId = gone.id
    }
  }

  private emit (event: BusEvent): void {
    for (const listener of this.listeners) listener(event)
  }
}
