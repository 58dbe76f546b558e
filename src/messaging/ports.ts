import type { Executor } from '../db/database.js'
import type { Direction, SenderKind } from '../db/schema.js'

/**
 * What messaging needs to know about, or do to, the ticket a message belongs to. Dependencies point
 * tickets → messaging, so messaging never imports the tickets room: app.ts wires the tickets room's
 * implementation in (tickets/ticket-port.ts). Every call runs in the caller's transaction.
 */
/** The message a ticket's list row previews: what it says and who wrote it. */
export interface LastMessage {
  preview: string
  direction: Direction
  sender: SenderKind
  /** The agent, when `sender` is `agent`. */
  agentId?: number | null
}

export interface TicketPort {
  /**
   * Keeps the ticket's list columns in step with a new message; `null` counts it but keeps the
   * preview. An agent's reply answers the customer (their waiting time ends).
   */
  touch: (trx: Executor, ticketId: number, at: string, last: LastMessage | null) => Promise<void>
  /** When the customer of the ticket opted out (texted STOP), or null while they may be messaged. */
  optedOutAt: (trx: Executor, ticketId: number) => Promise<string | null>
}
