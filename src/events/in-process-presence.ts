import type { Clock } from '../clock.js'
import type { EventBus, Viewer } from './bus.js'
import type { PresenceBoard } from './presence.js'

/** A page reports `viewing` every 20 s; without a report for this long, the agent has left. */
export const VIEWING_TTL_MS = 45_000
/** A page reports `typing` at most every 3 s while the agent types; typing ends this long after the last. */
export const TYPING_TTL_MS = 6_000

interface Entry { name: string, seenAt: number, typingAt: number | null }

/** The presence board of one process: in memory, expired lazily against the injected clock. */
export class InProcessPresenceBoard implements PresenceBoard {
  private readonly tickets = new Map<number, Map<number, Entry>>()

  constructor (private readonly deps: { clock: Clock, events: EventBus }) {}

  viewers (ticketId: number): Viewer[] {
    const entries = this.tickets.get(ticketId)
    if (entries === undefined) return []
    const now = this.deps.clock.now().getTime()
    const viewers: Viewer[] = []
    for (const [agentId, entry] of entries) {
      if (now - entry.seenAt >= VIEWING_TTL_MS) {
        entries.delete(agentId)
        continue
      }
      viewers.push({ agentId, name: entry.name, typing: entry.typingAt !== null && now - entry.typingAt < TYPING_TTL_MS })
    }
    if (entries.size === 0) this.tickets.delete(ticketId)
    return viewers.sort((a, b) => a.agentId - b.agentId)
  }

  report (ticketId: number, agent: { id: number, name: string }, state: 'viewing' | 'typing' | 'left'): void {
    const before = JSON.stringify(this.viewers(ticketId))
    const now = this.deps.clock.now().getTime()
    let entries = this.tickets.get(ticketId)
    if (state === 'left') {
      entries?.delete(agent.id)
    } else {
      if (entries === undefined) this.tickets.set(ticketId, entries = new Map())
      const previous = entries.get(agent.id)
      entries.set(agent.id, { name: agent.name, seenAt: now, typingAt: state === 'typing' ? now : (previous?.typingAt ?? null) })
    }
    const viewers = this.viewers(ticketId)
    if (JSON.stringify(viewers) !== before) this.deps.events.publishEphemeral({ ticketId, viewers })
  }
}
