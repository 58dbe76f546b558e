import type { Clock } from '../clock.js'
import type { EventBus, Viewer } from './bus.js'
import type { PresenceBoard, PresenceState } from './presence.js'

/** A page reports `viewing` every 20 s; without a report for this long, the agent has left. */
export const VIEWING_TTL_MS = 45_000
/** A page reports `typing` at most every 3 s while the agent types; typing ends this long after the last. */
export const TYPING_TTL_MS = 6_000

interface Entry { name: string, seenAt: number, typingAt: number | null }

/**
 * The presence board of one process, in memory, timed by the injected clock. Reports broadcast
 * at once; expiries broadcast when `sweep()` runs (the app runs it every second), so another
 * agent's page learns that Bo left or stopped typing at most a second late. An agent is one
 * entry per ticket whatever the number of tabs: a `left` from one tab hides them until another
 * tab's next `viewing` (at most 20 s).
 */
export class InProcessPresenceBoard implements PresenceBoard {
  private readonly tickets = new Map<number, Map<number, Entry>>()
  /** What the last broadcast said per ticket, so that only changes go out. */
  private readonly announced = new Map<number, string>()

  constructor (private readonly deps: { clock: Clock, events: Pick<EventBus, 'publishEphemeral'> }) {}

  viewers (ticketId: number): Viewer[] {
    const entries = this.tickets.get(ticketId)
    if (entries === undefined) return []
    const now = this.deps.clock.now().getTime()
    const viewers: Viewer[] = []
    for (const [agentId, entry] of entries) {
      if (now - entry.seenAt >= VIEWING_TTL_MS) continue
      viewers.push({ agentId, name: entry.name, typing: entry.typingAt !== null && now - entry.typingAt < TYPING_TTL_MS })
    }
    return viewers.sort((a, b) => a.agentId - b.agentId)
  }

  report (ticketId: number, agent: { id: number, name: string }, state: PresenceState): void {
    const now = this.deps.clock.now().getTime()
    let entries = this.tickets.get(ticketId)
    if (state === 'left') {
      entries?.delete(agent.id)
    } else {
      if (entries === undefined) this.tickets.set(ticketId, entries = new Map())
      const previous = entries.get(agent.id)
      entries.set(agent.id, { name: agent.name, seenAt: now, typingAt: state === 'typing' ? now : (previous?.typingAt ?? null) })
    }
    this.announce(ticketId)
  }

  sweep (): void {
    for (const ticketId of [...this.tickets.keys()]) this.announce(ticketId)
  }

  /** Drops expired entries of a ticket and broadcasts its viewers if they changed since the last broadcast. */
  private announce (ticketId: number): void {
    const viewers = this.viewers(ticketId)
    const entries = this.tickets.get(ticketId)
    if (entries !== undefined) {
      const now = this.deps.clock.now().getTime()
      for (const [agentId, entry] of entries) if (now - entry.seenAt >= VIEWING_TTL_MS) entries.delete(agentId)
      if (entries.size === 0) this.tickets.delete(ticketId)
    }
    const said = JSON.stringify(viewers)
    if (said === (this.announced.get(ticketId) ?? '[]')) return
    if (viewers.length === 0) this.announced.delete(ticketId)
    else this.announced.set(ticketId, said)
    this.deps.events.publishEphemeral({ ticketId, viewers })
  }
}
