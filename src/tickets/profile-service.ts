import type { Clock } from '../clock.js'
import type { Db } from '../db/database.js'
import { invalid, notFound, UserError } from '../errors.js'
import type { EventBus } from '../events/bus.js'
import { normaliseLineBreaks } from '../messaging/sms-parts.js'
import { contactAddresses, setAsideAddresses } from './contact-service.js'
import { ticketRef } from './conversations.js'
import * as repo from './profile-repository.js'
import { findTicketOfContact } from './ticket-repository.js'
import { addressLabel } from '../messaging/address.js'

export const MAX_CONTACT_NAME_LENGTH = 100
export const MAX_CONTACT_NOTES_LENGTH = 4000

/** `/contacts/42` → 42; anything else is a customer that does not exist, said in words. */
export function contactIdOf (raw: string): number {
  if (!/^[1-9]\d{0,8}$/.test(raw)) throw new UserError(404, `There is no customer ${raw.slice(0, 40)}. Customer numbers are whole numbers, like 42.`, 'NOT_FOUND')
  return Number(raw)
}

// Control characters (C0, DEL, C1) and the line and paragraph separators: none belongs in a name.
const NAME_CONTROL = /[\p{Cc}\u2028\u2029]/u
// Notes are free text over several lines: tabs and line breaks are fine, other control characters are not.
const NOTES_CONTROL = /[\p{Cc}\u2028\u2029]/u

function describeControl (s: string): string {
  const c = /[\p{Cc}\u2028\u2029]/u.exec(s)?.[0] ?? ''
  return `U+${c.codePointAt(0)?.toString(16).toUpperCase().padStart(4, '0') ?? '????'}`
}

/** The name as stored: trimmed, null when empty. Refuses what a person cannot have meant. */
export function cleanName (input: string): string | null {
  const name = input.trim()
  if (NAME_CONTROL.test(name)) {
    throw invalid(`The name contains a control character (${describeControl(name)}), such as a line break or tab; names are one line of plain text. Nothing was saved.`, [{ field: 'name', message: 'no control characters' }])
  }
  if (name.length > MAX_CONTACT_NAME_LENGTH) {
    throw invalid(`The name is ${name.length} characters long; the limit is ${MAX_CONTACT_NAME_LENGTH}. Shorten it; nothing was saved.`, [{ field: 'name', message: `at most ${MAX_CONTACT_NAME_LENGTH} characters` }])
  }
  return name === '' ? null : name
}

export function cleanNotes (input: string): string | null {
  const notes = normaliseLineBreaks(input).trim()
  if (NOTES_CONTROL.test(notes.replace(/[\n\t]/g, ''))) {
    throw invalid(`The notes contain a control character (${describeControl(notes.replace(/[\n\t]/g, ''))}); only text, tabs and line breaks are kept. Nothing was saved.`, [{ field: 'notes', message: 'no control characters but tabs and line breaks' }])
  }
  if (notes.length > MAX_CONTACT_NOTES_LENGTH) {
    throw invalid(`The notes are ${notes.length} characters long; the limit is ${MAX_CONTACT_NOTES_LENGTH}. Shorten them; nothing was saved.`, [{ field: 'notes', message: `at most ${MAX_CONTACT_NOTES_LENGTH} characters` }])
  }
  return notes === '' ? null : notes
}

/** Customer profiles: who the customer is, what the team knows about them, their consent and tickets. */
export class ProfileService {
  constructor (private readonly deps: { db: Db, clock: Clock, events: EventBus }) {}

  async profile (contactId: number) {
    const { db } = this.deps
    const contact = await repo.findProfileContact(db, contactId)
    if (contact === undefined) throw new UserError(404, `There is no customer ${contactId}.`, 'NOT_FOUND')
    const [addresses, setAside, consent, tickets, changes] = await Promise.all([
      contactAddresses(db, contactId),
      setAsideAddresses(db, contactId),
      repo.listConsentEvents(db, contactId),
      repo.listContactTickets(db, contactId),
      repo.listContactChanges(db, contactId)
    ])
    return {
      contact: { ...contact, customer: contact.name ?? addressLabel(contact.phone), address: addressLabel(contact.phone) },
      addresses,
      setAside,
      consent: consent.map((e) => ({ ...e, ref: ticketRef(e.ticket_id), text: e.kind === 'opt_out' ? 'Texted STOP: opted out' : 'Texted START: opted back in' })),
      tickets: tickets.map((t) => ({ ...t, ref: ticketRef(t.id), statusWord: t.status.charAt(0).toUpperCase() + t.status.slice(1) })),
      changes: changes.map((c) => ({ ...c, text: changeText(c) }))
    }
  }

  /**
   * Saves the name and the notes from the profile form; each one that changed is recorded in the
   * contact's history with who and when. Returns which changed.
   */
  async update (contactId: number, agentId: number, input: { name: string, notes: string }): Promise<{ name: boolean, notes: boolean }> {
    const name = cleanName(input.name)
    const notes = cleanNotes(input.notes)
    const result = await this.deps.db.transaction().execute(async (trx) => {
      const contact = await repo.findProfileContact(trx, contactId)
      if (contact === undefined) throw notFound(`Customer ${contactId}`)
      const now = this.deps.clock.now().toISOString()
      const changed = { name: contact.name !== name, notes: contact.notes !== notes }
      if (changed.name) {
        await repo.updateContactName(trx, contactId, name, now)
        await repo.insertContactChange(trx, { contactId, field: 'name', value: name, agentId }, now)
      }
      if (changed.notes) {
        await repo.updateContactNotes(trx, contactId, notes, agentId, now)
        await repo.insertContactChange(trx, { contactId, field: 'notes', value: notes, agentId }, now)
      }
      return { changed, ticketId: changed.name ? await findTicketOfContact(trx, contactId) : undefined }
    })
    // The name is what the lists show: open pages refetch their list (any ticket event does that).
    if (result.ticketId !== undefined) await this.deps.events.publish({ ticketId: result.ticketId, change: 'contact' })
    return result.changed
  }

  async pickerContacts () {
    const rows = await repo.listContactsForPicker(this.deps.db)
    return rows.map((c) => ({ ...c, label: c.name === null ? addressLabel(c.phone) : `${c.name} (${addressLabel(c.phone)})` }))
  }
}

function changeText (c: { field: string, value: string | null, agent_name: string }): string {
  if (c.field === 'name') return c.value === null ? `${c.agent_name} removed the name` : `${c.agent_name} set the name to “${c.value}”`
  return c.value === null ? `${c.agent_name} cleared the notes` : `${c.agent_name} edited the notes`
}
