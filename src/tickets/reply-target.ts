import type { Executor } from '../db/database.js'
import type { Channel } from '../db/schema.js'
import { addressLabel, primaryChannel } from '../messaging/address.js'
import { CHANNEL_LABELS } from '../messaging/channel.js'
import { latestInboundAddress } from '../messaging/message-repository.js'
import { contactAddresses } from './contact-service.js'

export interface ReplyTarget {
  channel: Channel
  address: string
  /** "Messenger 6011234567890123", "WhatsApp +31612345678", "SMS +31612345678". */
  label: string
}

/**
 * Where an agent's reply goes: back on the channel and to the address the customer last wrote
 * from on this ticket (a Messenger customer is answered on Messenger, a WhatsApp customer on
 * WhatsApp), as long as that address is still the contact's (a merge or an erasure may have
 * moved it); otherwise their own first address on its channel.
 */
export async function replyTarget (db: Executor, ticket: { id: number, contact_id: number, phone: string }): Promise<ReplyTarget> {
  const last = await latestInboundAddress(db, ticket.id)
  const from = last?.from_address ?? null
  if (last !== undefined && from !== null) {
    const theirs = from === ticket.phone || (await contactAddresses(db, ticket.contact_id)).some((a) => a.address === from)
    if (theirs) return target(last.channel, from)
  }
  return target(primaryChannel(ticket.phone), ticket.phone)
}

function target (channel: Channel, address: string): ReplyTarget {
  const label = addressLabel(address)
  return { channel, address, label: label.startsWith(CHANNEL_LABELS[channel]) ? label : `${CHANNEL_LABELS[channel]} ${label}` }
}
