import type { Viewer } from './bus.js'

/**
 * Who is viewing or typing in which ticket, as agents' pages report it (POST /tickets/:id/presence).
 * The ticket page renders the current viewers; changes go out as ephemeral `presence` events.
 * Kept per process: the multi-instance implementation shares it between instances.
 */
export interface PresenceBoard {
  /** The agents viewing the ticket now (expired entries left out), `typing` while they type. */
  viewers: (ticketId: number) => Viewer[]
  /** An agent's page reports a state; a change is broadcast to every agent. */
  report: (ticketId: number, agent: { id: number, name: string }, state: 'viewing' | 'typing' | 'left') => void
}
