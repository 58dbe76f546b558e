import type { TicketPort } from '../messaging/ports.js'
import { findOptedOutAtForTicket, touchTicket } from './ticket-repository.js'

/** The tickets room's side of messaging's port (wired in app.ts). */
export const ticketPort: TicketPort = {
  touch: touchTicket,
  optedOutAt: async (trx, ticketId) => await findOptedOutAtForTicket(trx, ticketId)
}
