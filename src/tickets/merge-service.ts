import type { Clock } from '../clock.js'
import type { Db, TxExecutor } from '../db/database.js'
import type { TicketStatus } from '../db/schema.js'
import { conflict, invalid, UserError } from '../errors.js'
import type { EventBus } from '../events/bus.js'
import type { OutboundQueue } from '../messaging/outbound.js'
import { ticketRef } from './conversations.js'
import * as inbox from './inbox-repository.js'
import * as repo from './merge-repository.js'
import { insertContactChange } from './profile-repository.js'
import { findOpenTicketForContact, findTicketOfContact } from './ticket-repository.js'
import { addressLabel } from '../messaging/address.js'

/** `12`, `#12` or ` #12 `: a ticket or customer number as a form sends it; null for anything else. */
function idOf (raw: string | undefined): number | null {
  const m = /^\s*#?([1-9]\d{0,8})\s*$/.exec(raw ?? '')
  return m === null ? null : Number(m[1])
}

const noTicket = (id: number, what = ''): UserError => new UserError(404, `There is no ticket #${ticketRef(id)}${what}.`, 'NOT_FOUND')

export interface TicketMergeResult {
  /** The ticket that holds everything now. */
  targetId: number
  /** False when the ticket had already been merged into that target (a double submit): nothing changed. */
  changed: boolean
}

/**
 * Merging: a ticket into another ticket of the same customer, and a customer into another one
 * (two phones, one person). Each merge is one transaction, recorded in the timeline (ticket_events)
 * and for customers in contact_merges; live events go out after commit.
 */
export class MergeService {
  constructor (private readonly deps: { db: Db, clock: Clock, events: EventBus, outbound: OutboundQueue }) {}

  /** The customer's other tickets a ticket can be merged into, for the ticket page. */
  async targetsFor (ticketId: number) {
    const t = await repo.findMergeTicket(this.deps.db, ticketId)
    if (t === undefined || t.merged_into !== null) return []
    const rows = await repo.listMergeTargets(this.deps.db, t.contact_id, ticketId)
    return rows.map((r) => ({ ...r, ref: ticketRef(r.id) }))
  }

  /**
   * Merges ticket `sourceId` into the ticket the form names. Refuses (422) the ticket itself,
   * another customer's ticket and a ticket that was itself merged; 404 when either does not exist.
   * A repeat of a merge that already happened (a double submit) changes nothing.
   */
  async mergeTicket (sourceId: number, into: string | undefined, agentId: number): Promise<TicketMergeResult> {
    const targetId = idOf(into)
    if (targetId === null) throw invalid('Choose the ticket to merge this one into (a ticket number, like 42).', [{ field: 'into', message: 'must be a ticket number' }])
    if (targetId === sourceId) throw invalid(`A ticket cannot be merged into itself: choose another ticket of this customer than #${ticketRef(sourceId)}.`, [{ field: 'into', message: 'must be another ticket' }])
    const result = await this.deps.db.transaction().execute(async (trx) => {
      await repo.lockRows(trx, 'tickets', [sourceId, targetId])
      const source = await repo.findMergeTicket(trx, sourceId)
      if (source === undefined) throw noTicket(sourceId)
      if (source.merged_into !== null) {
        if (source.merged_into === targetId) return { targetId, changed: false }
        throw conflict(`Ticket #${ticketRef(sourceId)} was already merged into #${ticketRef(source.merged_into)}; nothing was changed.`)
      }
      const target = await repo.findMergeTicket(trx, targetId)
      if (target === undefined) throw noTicket(targetId, ' to merge into')
      if (target.merged_into !== null) throw invalid(`Ticket #${ticketRef(targetId)} was itself merged into #${ticketRef(target.merged_into)}; merge into #${ticketRef(target.merged_into)} instead.`, [{ field: 'into', message: 'was merged' }])
      if (target.contact_id !== source.contact_id) {
        throw invalid(`Ticket #${ticketRef(targetId)} belongs to another customer; only tickets of the same customer can be merged. If both are the same person, merge the customers on the profile first.`, [{ field: 'into', message: 'another customer\'s ticket' }])
      }
      await this.mergeInTransaction(trx, source, target, agentId, this.deps.clock.now().toISOString())
      return { targetId, changed: true }
    })
    if (result.changed) await this.publishMerge(sourceId, targetId)
    return result
  }

  private async publishMerge (sourceId: number, targetId: number): Promise<void> {
    await this.deps.events.publish({ ticketId: sourceId, change: 'status' })
    await this.deps.events.publish({ ticketId: targetId, change: 'status' })
  }

  /**
   * The merge itself, in the caller's transaction with both tickets locked and checked. The
   * source closes as merged and leaves every view counter; a closed target takes the source's
   * status and assignee when the source was still open or pending (the customer's work goes on
   * there). Messages, notes and timeline move; the target's list columns become the newer of the two.
   */
  private async mergeInTransaction (trx: TxExecutor, source: repo.MergeTicket, target: repo.MergeTicket, by: number, now: string): Promise<void> {
    const from = { status: source.status, assigneeId: source.assignee_id }
    if (!await repo.markMerged(trx, source.id, target.id, from, by, now)) {
      throw conflict(`Ticket #${ticketRef(source.id)} changed while it was being merged; reload and try again.`)
    }
    await inbox.adjustCounts(trx, from, null)
    // The source is closed now, so the target may open: one ticket that is not closed per customer.
    if (target.status === 'closed' && source.status !== 'closed') {
      const before = { status: target.status as TicketStatus, assigneeId: target.assignee_id }
      const after = { status: source.status, assigneeId: source.assignee_id }
      if (!await inbox.updateTicketState(trx, target.id, before, after, by, now)) {
        throw conflict(`Ticket #${ticketRef(target.id)} changed while #${ticketRef(source.id)} was being merged into it; reload and try again.`)
      }
      await inbox.adjustCounts(trx, before, after)
      await inbox.insertTicketEvent(trx, { ticketId: target.id, kind: 'status', agentId: by, fromStatus: before.status, toStatus: after.status }, now)
      if (before.assigneeId !== after.assigneeId) await inbox.insertTicketEvent(trx, { ticketId: target.id, kind: 'assigned', agentId: by, targetAgentId: after.assigneeId }, now)
    }
    await repo.moveTicketContents(trx, source.id, target.id)
    const newer = source.last_message_at > target.last_message_at ? source : target
    const waiting = [source.awaiting_reply_since, target.awaiting_reply_since].filter((w): w is string => w !== null).sort()
    const customerAt = [source.last_customer_message_at, target.last_customer_message_at].filter((w): w is string => w !== null).sort()
    await repo.setMergedListColumns(trx, target.id, {
      message_count: source.message_count + target.message_count,
      last_message_at: newer.last_message_at,
      last_message_preview: newer.last_message_preview,
      last_message_direction: newer.last_message_direction,
      last_sender: newer.last_sender,
      last_sender_agent_id: newer.last_sender_agent_id,
      last_customer_message_at: customerAt.at(-1) ?? null,
      // Still waiting when the newer ticket was: since the oldest unanswered text of either.
      awaiting_reply_since: newer.awaiting_reply_since === null ? null : waiting[0] ?? null
    }, now)
    await repo.insertMergeEvent(trx, { ticketId: source.id, kind: 'merged_into', agentId: by, otherTicketId: target.id }, now)
    await repo.insertMergeEvent(trx, { ticketId: target.id, kind: 'merged_from', agentId: by, otherTicketId: source.id }, now)
  }

  /** Where a merged ticket's address leads: the ticket it was merged into, or undefined. */
  async ticketMergedInto (ticketId: number): Promise<number | undefined> {
    const t = await repo.findMergeTicket(this.deps.db, ticketId)
    return t?.merged_into ?? undefined
  }

  /** Where a merged customer's address leads: the customer they were merged into, or undefined. */
  async contactMergedInto (contactId: number): Promise<number | undefined> {
    if (await repo.findMergeContact(this.deps.db, contactId) !== undefined) return undefined
    return await repo.findContactMergedInto(this.deps.db, contactId)
  }

  /** The other customers for the profile's merge picker, and the customers merged into this one. */
  async contactMergeData (contactId: number) {
    const [candidates, merged] = await Promise.all([repo.listMergeCandidates(this.deps.db, contactId), repo.listContactMerges(this.deps.db, contactId)])
    return {
      candidates: candidates.map((c) => ({ ...c, label: c.name === null ? addressLabel(c.phone) : `${c.name} (${addressLabel(c.phone)})` })),
      merged: merged.map((m) => ({ ...m, text: `${m.agent_name} merged ${m.from_name === null ? m.from_phone : `${m.from_name} (${m.from_phone})`} into this customer` }))
    }
  }

  /**
   * Merges the customer the form names into `keepId` (the same person with another phone): their
   * numbers, addresses, tickets, history and notes become keepId's, and their row is removed.
   * Consent combines to the stricter: opted out if either was, and every STOP and START of both
   * stays in the ledger (the events move with their tickets). When both have a ticket that is not
   * closed, the other's is merged into keepId's. A repeat of a merge that already happened (a
   * double submit) changes nothing.
   */
  async mergeContact (keepId: number, other: string | undefined, agentId: number): Promise<{ changed: boolean }> {
    const otherId = idOf(other)
    if (otherId === null) throw invalid('Choose the customer to merge into this one.', [{ field: 'other', message: 'must be a customer number' }])
    if (otherId === keepId) throw invalid('A customer cannot be merged with themselves: choose another customer.', [{ field: 'other', message: 'must be another customer' }])
    const result = await this.deps.db.transaction().execute(async (trx) => {
      await repo.lockRows(trx, 'contacts', [keepId, otherId])
      const keep = await repo.findMergeContact(trx, keepId)
      if (keep === undefined) throw new UserError(404, `There is no customer ${keepId}.`, 'NOT_FOUND')
      const gone = await repo.findMergeContact(trx, otherId)
      if (gone === undefined) {
        if (await repo.findContactMergedInto(trx, otherId) === keepId) return { changed: false, tickets: [] as number[] }
        throw new UserError(404, `There is no customer ${otherId} to merge into this one.`, 'NOT_FOUND')
      }
      // An erasure is recorded against the customer it erased (the audit log) and left nothing to
      // combine: refused, never half done.
      const erased = [keep, gone].find((c) => c.erased_at !== null)
      if (erased !== undefined) throw invalid(`Customer ${erased.id} was erased: an erased customer cannot be merged.`, [{ field: 'other', message: 'must not be an erased customer' }])
      const now = this.deps.clock.now().toISOString()
      const touched = await this.mergeOpenTickets(trx, keep.id, gone.id, agentId, now)
      await repo.moveContact(trx, gone, keep.id, now)
      const merged = {
        name: keep.name ?? gone.name,
        notes: keep.notes !== null && gone.notes !== null ? `${keep.notes}\n\n${gone.notes}` : keep.notes ?? gone.notes,
        // Opted out if either was, since the earlier STOP.
        opted_out_at: [keep.opted_out_at, gone.opted_out_at].filter((o): o is string => o !== null).sort()[0] ?? null
      }
      await repo.updateMergedContact(trx, keep.id, merged, now)
      if (merged.name !== keep.name) await insertContactChange(trx, { contactId: keep.id, field: 'name', value: merged.name, agentId }, now)
      if (merged.notes !== keep.notes) await insertContactChange(trx, { contactId: keep.id, field: 'notes', value: merged.notes, agentId }, now)
      // Whatever waits in the outbox for either of them must not go out to someone who texted STOP.
      if (merged.opted_out_at !== null) await this.deps.outbound.blockQueued(trx, keep.id, now)
      await repo.insertContactMerge(trx, { from: gone, intoId: keep.id, agentId }, now)
      const ticketOfContact = await findTicketOfContact(trx, keep.id)
      return { changed: true, tickets: [...touched, ...(ticketOfContact === undefined ? [] : [ticketOfContact])] }
    })
    for (const ticketId of new Set(result.tickets)) await this.deps.events.publish({ ticketId, change: 'status' })
    return { changed: result.changed }
  }

  /** Both customers have a ticket that is not closed: the other's is merged into keepId's. Returns the tickets it changed. */
  private async mergeOpenTickets (trx: TxExecutor, keepId: number, goneId: number, agentId: number, now: string): Promise<number[]> {
    const kept = await findOpenTicketForContact(trx, keepId)
    const gone = await findOpenTicketForContact(trx, goneId)
    if (kept === undefined || gone === undefined) return []
    await repo.lockRows(trx, 'tickets', [kept.id, gone.id])
    const target = await repo.findMergeTicket(trx, kept.id)
    const source = await repo.findMergeTicket(trx, gone.id)
    if (target === undefined || source === undefined) throw conflict('A ticket of these customers changed during the merge; reload and try again.')
    await this.mergeInTransaction(trx, source, target, agentId, now)
    return [source.id, target.id]
  }
}
