import type { Clock } from '../clock.js'
import { isUniqueViolation, type Db, type Executor } from '../db/database.js'
import type { Channel } from '../db/schema.js'
import { conflict, invalid, notFound } from '../errors.js'
import { primaryChannel } from '../messaging/address.js'
import type { StepSpec } from '../messaging/failover.js'
import * as addresses from './contact-repository.js'
import { describeOwner } from './conversations.js'
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

/** The contact's addresses in failover order: their own first (a phone by SMS, a Messenger id on Messenger), then the extra ones. */
export async function contactAddresses (db: Executor, contactId: number): Promise<ContactAddress[]> {
  const contact = await findContactById(db, contactId)
  if (contact === undefined) return []
  const extra = await addresses.listContactAddresses(db, contactId)
  return [
    { id: null, channel: primaryChannel(contact.phone), address: contact.phone, primary: true },
    ...extra.map((a) => ({ id: a.id, channel: a.channel, address: a.address, primary: false }))
  ]
}

/**
 * Extra addresses another customer already had when one number became one customer (the
 * migration set them aside rather than drop them), with who has the number now.
 */
export async function setAsideAddresses (db: Executor, contactId: number): Promise<Array<{ channel: Channel, address: string, owner: string }>> {
  const rows = await addresses.listSetAsideAddresses(db, contactId)
  const out = []
  for (const r of rows) out.push({ channel: r.channel, address: r.address, owner: await describeOwner(db, r.owner_contact_id) })
  return out
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
    const list = channel === 'sms' ? 'SMS' : 'WhatsApp'
    try {
      await this.deps.db.transaction().execute(async (trx) => {
        const ticket = await findTicket(trx, ticketId)
        if (ticket === undefined) throw notFound(`Ticket ${ticketId}`)
        const current = await contactAddresses(trx, ticket.contact_id)
        if (current.some((a) => a.channel === channel && a.address === address)) {
          throw conflict(`${address} is already on this customer's ${list} list.`)
        }
        if (current.length - 1 >= MAX_EXTRA_ADDRESSES) throw conflict(`A customer can have at most ${MAX_EXTRA_ADDRESSES} extra addresses; remove one first.`)
        // One number, one customer: the registry decides, and its unique key holds under concurrent adds.
        const owner = await addresses.claimNumber(trx, address, ticket.contact_id, now)
        if (owner !== ticket.contact_id) throw conflict(`${address} already belongs to ${await describeOwner(trx, owner)}.`)
        await addresses.insertContactAddress(trx, { contactId: ticket.contact_id, channel, address }, now)
      })
    } catch (err) {
      // Only a concurrent add of the same address to this customer gets here (the number is theirs).
      if (isUniqueViolation(err)) throw conflict(`${address} is already on this customer's ${list} list.`)
      throw err
    }
  }

  async remove (ticketId: number, addressId: number): Promise<void> {
    await this.deps.db.transaction().execute(async (trx) => {
      const ticket = await findTicket(trx, ticketId)
      if (ticket === undefined) throw notFound(`Ticket ${ticketId}`)
      const removed = await addresses.deleteContactAddress(trx, ticket.contact_id, addressId)
      if (removed === undefined) throw notFound('That address')
      // The number stays theirs while their phone or an address on the other channel uses it.
      await addresses.releaseNumber(trx, ticket.contact_id, removed.address)
    })
  }
}
