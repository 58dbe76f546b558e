import type { Clock } from '../clock.js'
import { isUniqueViolation, type Db, type Executor } from '../db/database.js'
import type { Channel } from '../db/schema.js'
import { conflict, invalid, notFound } from '../errors.js'
import type { StepSpec } from '../messaging/failover.js'
import * as addresses from './contact-repository.js'
import { InvalidPhoneNumber, toE164 } from './phone.js'
import { findContactById, findTicket } from './ticket-repository.js'

export const ADDRESS_CHANNELS: readonly Channel[] = ['sms', 'whatsapp']
export const MAX_EXTRA_ADDRESSES = 5

export interface ContactAddress {
  /** null for the contact's own phone number, which cannot be removed. */
  id: number | null
  channel: Channel
  address: string
  primary: boolean
}

/** The contact's addresses in failover order: their own phone by SMS first, then the extra ones. */
export async function contactAddresses (db: Executor, contactId: number): Promise<ContactAddress[]> {
  const contact = await findContactById(db, contactId)
  if (contact === undefined) return []
  const extra = await addresses.listContactAddresses(db, contactId)
  return [
    { id: null, channel: 'sms', address: contact.phone, primary: true },
    ...extra.map((a) => ({ id: a.id, channel: a.channel, address: a.address, primary: false }))
  ]
}

/** One failover step per address; every step but the last waits `expirySeconds` for delivery. */
export function failoverSteps (list: ContactAddress[], body: string, expirySeconds: number): StepSpec[] {
  return list.map((a, i) => ({
    channel: a.channel,
    to: a.address,
    body,
    failover: i < list.length - 1 ? { condition: 'delivered' as const, expirySeconds } : null
  }))
}

/** A contact's extra addresses, managed from the ticket page. */
export class ContactService {
  constructor (private readonly deps: { db: Db, clock: Clock }) {}

  async forTicket (ticketId: number): Promise<ContactAddress[]> {
    const ticket = await findTicket(this.deps.db, ticketId)
    if (ticket === undefined) throw notFound(`Ticket ${ticketId}`)
    return await contactAddresses(this.deps.db, ticket.contact_id)
  }

  async add (ticketId: number, channelInput: string, addressInput: string): Promise<void> {
    const channel = ADDRESS_CHANNELS.find((c) => c === channelInput)
    if (channel === undefined) throw invalid(`Choose SMS or WhatsApp for the new address (got "${channelInput.slice(0, 20)}").`, [{ field: 'channel', message: 'must be sms or whatsapp' }])
    let address: string
    try {
      // Agents type numbers as they are written down, international prefix 00 included.
      address = toE164(addressInput.trim().replace(/^00/, '+'))
    } catch (err) {
      if (err instanceof InvalidPhoneNumber) throw invalid(err.message, [{ field: 'address', message: 'must be a phone number in international format' }])
      throw err
    }
    const now = this.deps.clock.now().toISOString()
    try {
      await this.deps.db.transaction().execute(async (trx) => {
        const ticket = await findTicket(trx, ticketId)
        if (ticket === undefined) throw notFound(`Ticket ${ticketId}`)
        const current = await contactAddresses(trx, ticket.contact_id)
        if (current.some((a) => a.channel === channel && a.address === address)) {
          throw conflict(`${address} is already on this customer's ${channel === 'sms' ? 'SMS' : 'WhatsApp'} list.`)
        }
        if (current.length - 1 >= MAX_EXTRA_ADDRESSES) throw conflict(`A customer can have at most ${MAX_EXTRA_ADDRESSES} extra addresses; remove one first.`)
        const other = await addresses.findContactAddress(trx, channel, address)
        if (other !== undefined) throw conflict(`${address} (${channel}) already belongs to another customer.`)
        await addresses.insertContactAddress(trx, { contactId: ticket.contact_id, channel, address }, now)
      })
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict(`${address} (${channel}) already belongs to another customer.`)
      throw err
    }
  }

  async remove (ticketId: number, addressId: number): Promise<void> {
    const ticket = await findTicket(this.deps.db, ticketId)
    if (ticket === undefined) throw notFound(`Ticket ${ticketId}`)
    const removed = await addresses.deleteContactAddress(this.deps.db, ticket.contact_id, addressId)
    if (!removed) throw notFound('That address')
  }
}
