import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import type { Db } from '../db/database.js'
import { conflict, invalid, UserError } from '../errors.js'
import type { EventBus } from '../events/bus.js'
import { listContactAddresses } from './contact-repository.js'
import { findConversation, ticketRef } from './conversations.js'
import { numberHash } from './erased-numbers.js'
import { InvalidPhoneNumber, toE164 } from './phone.js'
import * as repo from './privacy-repository.js'
import { listConsentEvents } from './profile-repository.js'
import { findTicketOfContact } from './ticket-repository.js'

/** What the second confirmation of an erasure takes, besides the customer's number. */
export const ERASE_WORD = 'ERASE'

const noCustomer = (id: number): UserError => new UserError(404, `There is no customer ${id}.`, 'NOT_FOUND')

/**
 * Data and privacy: everything about one customer as JSON, erasing a customer's personal data
 * (recorded in the audit log), and retention of message texts (RETENTION_DAYS).
 */
export class PrivacyService {
  private retentionTimer: NodeJS.Timeout | null = null

  constructor (private readonly deps: { db: Db, clock: Clock, events: EventBus, log: FastifyBaseLogger, retentionDays: number }) {}

  /** Everything stored about one customer. An erased customer's export shows what is left: "[erased]". */
  async exportContact (contactId: number) {
    const { db } = this.deps
    const contact = await repo.findContactForExport(db, contactId)
    if (contact === undefined) throw noCustomer(contactId)
    const [numbers, changes, consent, tickets, messages, notes, events] = await Promise.all([
      repo.listContactNumbers(db, contactId),
      repo.listAllContactChanges(db, contactId),
      listConsentEvents(db, contactId),
      repo.listTicketsForExport(db, contactId),
      repo.listMessagesOfContact(db, contactId),
      repo.listNotesOfContact(db, contactId),
      repo.listEventsOfContact(db, contactId)
    ])
    const addresses = (await listContactAddresses(db, contactId)).map((a) => ({ channel: a.channel, address: a.address, position: a.position, created_at: a.created_at }))
    return {
      format: 'textdesk.contact-export.v1',
      exported_at: this.deps.clock.now().toISOString(),
      contact: { ...contact, erased: contact.erased_at !== null },
      numbers,
      addresses,
      consent: consent.map((e) => ({ kind: e.kind, at: e.created_at, ticket: ticketRef(e.ticket_id) })),
      profile_changes: changes,
      tickets: tickets.map((t) => ({
        ...t,
        ref: ticketRef(t.id),
        messages: messages.filter((m) => m.ticket_id === t.id).map(({ ticket_id: _, ...m }) => m),
        notes: notes.filter((n) => n.ticket_id === t.id).map(({ ticket_id: _, ...n }) => n),
        events: events.filter((e) => e.ticket_id === t.id).map(({ ticket_id: _, ...e }) => e)
      }))
    }
  }

  /**
   * The API's export: the customer who has `numberInput` (any of their numbers), when this API key
   * has sent them a message; otherwise 404, the same answer as for a number nobody has.
   */
  async exportForApiKey (apiKeyId: number, numberInput: string) {
    let number: string
    try {
      number = toE164(numberInput.trim().replace(/^00/, '+').replace(/^(?=\d)/, '+'))
    } catch (err) {
      if (err instanceof InvalidPhoneNumber) throw invalid(err.message, [{ field: 'number', message: 'must be a phone number in international format' }])
      throw err
    }
    const owner = await findConversation(this.deps.db, number)
    if (owner === undefined || !await repo.apiKeyMessagedContact(this.deps.db, apiKeyId, owner.contactId)) {
      throw new UserError(404, `No customer with ${number} has had a message from this API key.`, 'NOT_FOUND')
    }
    return { contactId: owner.contactId, data: await this.exportContact(owner.contactId) }
  }

  /** The file name of an export: no personal data in it, as it ends up in download folders and logs. */
  exportFileName (contactId: number): string {
    return `textdesk-customer-${contactId}-${this.deps.clock.now().toISOString().slice(0, 10)}.json`
  }

  /** What the confirmation page of an erasure shows. */
  async eraseSummary (contactId: number) {
    const contact = await repo.findContactForExport(this.deps.db, contactId)
    if (contact === undefined) throw noCustomer(contactId)
    const tickets = await repo.listTicketsForExport(this.deps.db, contactId)
    return { contact, tickets: tickets.length, messages: tickets.reduce((n, t) => n + t.message_count, 0) }
  }

  /**
   * Erases a customer's personal data, when `confirmation` is their number or ERASE: their numbers
   * become keyed hashes (a later text from, or message to, one of them still finds an opt-out),
   * name, notes and every text of their tickets become "[erased]". Tickets, messages, statuses
   * and prices stay, so counts and reports do not change. One transaction, with its audit entry.
   */
  async erase (contactId: number, agentId: number, confirmation: string): Promise<{ tickets: number, messages: number }> {
    const { db, clock } = this.deps
    const typed = confirmation.trim()
    const result = await db.transaction().execute(async (trx) => {
      const contact = await repo.findContactForExport(trx, contactId)
      if (contact === undefined) throw noCustomer(contactId)
      if (contact.erased_at !== null) throw conflict(`Customer ${contactId}'s data was already erased on ${contact.erased_at.slice(0, 16).replace('T', ' ')} UTC.`)
      if (typed !== ERASE_WORD && typed.replace(/[\s().-]/g, '') !== contact.phone) {
        throw new UserError(422, `To erase, type ${ERASE_WORD} or the customer's number (${contact.phone}) exactly. Nothing was erased.`, 'VALIDATION_FAILED', [{ field: 'confirm', message: `must be ${ERASE_WORD} or the customer's number` }])
      }
      const now = clock.now().toISOString()
      const key = await repo.privacyKey(trx)
      const numbers = await repo.listContactNumbers(trx, contactId)
      for (const n of numbers) await repo.upsertErasedNumber(trx, numberHash(key, n.number), contact.opted_out_at, now)
      // Per contact (a number erased twice must not collide); no digits at the end, so a search by
      // a number's last digits never finds it.
      const erasedPhone = `erased(${contactId}:${numberHash(key, contact.phone).slice(0, 32)})`
      const counts = await repo.eraseContactData(trx, contactId, erasedPhone, now)
      await repo.insertAudit(trx, { action: 'erase', agentId, contactId, ticketId: null, detail: `${counts.tickets} tickets, ${counts.messages} messages` }, now)
      return { ...counts, ticketId: await findTicketOfContact(trx, contactId) }
    })
    if (result.ticketId !== undefined) await this.deps.events.publish({ ticketId: result.ticketId, change: 'contact' })
    return { tickets: result.tickets, messages: result.messages }
  }

  async audit (opts: { contactId?: number, limit?: number } = {}) {
    const rows = await repo.listAudit(this.deps.db, { contactId: opts.contactId, limit: opts.limit ?? 200 })
    return rows.map((r) => ({
      ...r,
      who: r.agent_name ?? 'The system',
      text: r.action === 'erase'
        ? `erased customer ${r.contact_id ?? '?'} (${r.detail ?? ''})`
        : `erased the message texts of ticket #${r.ticket_id === null ? '?' : ticketRef(r.ticket_id)} (${r.detail ?? ''}), closed more than the retention period ago`
    }))
  }

  /**
   * RETENTION_DAYS: erases the message texts of tickets closed longer ago than that, oldest first,
   * each ticket in its own transaction with its audit entry (by the system). The state is in the
   * tickets (closed_at, texts_erased_at), so a restart loses nothing. Returns how many tickets.
   */
  async applyRetention (limit = 500): Promise<number> {
    const days = this.deps.retentionDays
    if (days === 0) return 0
    const { db, clock } = this.deps
    const cutoff = new Date(clock.now().getTime() - days * 86_400_000).toISOString()
    const due = await repo.listTicketsDueForRetention(db, cutoff, limit)
    let done = 0
    for (const t of due) {
      const erased = await db.transaction().execute(async (trx) => {
        const now = clock.now().toISOString()
        const n = await repo.eraseTicketTexts(trx, t.id, cutoff, now)
        if (n !== null) await repo.insertAudit(trx, { action: 'retention', agentId: null, contactId: t.contact_id, ticketId: t.id, detail: `${n} message texts, RETENTION_DAYS=${days}` }, now)
        return n
      })
      if (erased !== null) {
        done++
        await this.deps.events.publish({ ticketId: t.id, change: 'message' })
      }
    }
    return done
  }

  /** Runs applyRetention every `everyMs` (server.ts starts it with the outbox worker). */
  startRetention (everyMs = 15 * 60_000): void {
    if (this.deps.retentionDays === 0 || this.retentionTimer !== null) return
    this.retentionTimer = setInterval(() => {
      this.applyRetention().catch((err: unknown) => { this.deps.log.error({ err }, 'retention of message texts failed') })
    }, everyMs)
    this.retentionTimer.unref()
  }

  stopRetention (): void {
    if (this.retentionTimer !== null) clearInterval(this.retentionTimer)
    this.retentionTimer = null
  }
}
