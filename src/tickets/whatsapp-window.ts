import type { Executor } from '../db/database.js'
import type { Channel } from '../db/schema.js'
import { invalid, UserError } from '../errors.js'
import { CHANNEL_LABELS, TEXT_LIMITS } from '../messaging/channel.js'
import { contactAddresses } from './contact-service.js'
import { findConversation } from './conversations.js'
import { ageInbound, lastInboundByAddress } from './window-repository.js'

/** WhatsApp delivers free text only this long after the customer's last WhatsApp message. */
export const WHATSAPP_WINDOW_HOURS = 24
const WINDOW_MS = WHATSAPP_WINDOW_HOURS * 3600_000

export interface ReplyTarget { channel: Channel, address: string }

export interface WhatsAppWindow {
  address: string
  /** The customer's last WhatsApp message from this address; null: they never wrote on WhatsApp. */
  lastInboundAt: string | null
  closesAt: string | null
  open: boolean
}

/** 409 on free text to WhatsApp outside the window: a template or SMS is the way to reach them. */
export class WindowClosed extends UserError {
  constructor (readonly window: WhatsAppWindow) {
    super(409, `${describeWindow(window, null)}. WhatsApp refuses free text more than ${WHATSAPP_WINDOW_HOURS} h after the customer's last WhatsApp message${window.lastInboundAt === null ? ' (this customer has not written on WhatsApp)' : ''}. Send an approved template, or send it as SMS instead. Nothing was sent.`, 'WHATSAPP_WINDOW_CLOSED', [{ field: 'to', message: 'the WhatsApp window is closed' }])
  }
}

export function windowOf (address: string, lastInboundAt: string | null, now: Date): WhatsAppWindow {
  const closesAt = lastInboundAt === null ? null : new Date(Date.parse(lastInboundAt) + WINDOW_MS).toISOString()
  return { address, lastInboundAt, closesAt, open: closesAt !== null && Date.parse(closesAt) > now.getTime() }
}

/** "WhatsApp window open for 3 h 12 min" / "WhatsApp window closed: free text cannot be sent". */
export function describeWindow (w: WhatsAppWindow, now: Date | null): string {
  if (!w.open || w.closesAt === null || now === null) return w.open ? 'WhatsApp window open' : 'WhatsApp window closed: free text cannot be sent'
  const minutes = Math.max(1, Math.floor((Date.parse(w.closesAt) - now.getTime()) / 60_000))
  const h = Math.floor(minutes / 60)
  return `WhatsApp window open for ${h > 0 ? `${h} h ` : ''}${minutes % 60} min`
}

/** The contact's WhatsApp windows, one per address they wrote from on WhatsApp. */
export async function whatsappWindows (db: Executor, contactId: number, now: Date): Promise<Map<string, WhatsAppWindow>> {
  const rows = await lastInboundByAddress(db, contactId, 'whatsapp')
  return new Map(rows.map((r) => [r.address, windowOf(r.address, r.last_at, now)]))
}

/** The window of whoever owns `address` (any channel's number), for the simulated provider. */
export async function windowForAddress (db: Executor, address: string, now: Date): Promise<WhatsAppWindow> {
  const owner = await findConversation(db, address)
  if (owner === undefined) return windowOf(address, null, now)
  return (await whatsappWindows(db, owner.contactId, now)).get(address) ?? windowOf(address, null, now)
}

/**
 * Where an agent may reply: the contact's addresses (their phone by SMS first, then the profile's
 * extra ones), plus every WhatsApp number they wrote from that the list does not hold yet.
 */
export async function replyTargets (db: Executor, contactId: number): Promise<ReplyTarget[]> {
  const listed = (await contactAddresses(db, contactId)).map((a) => ({ channel: a.channel, address: a.address }))
  const wrote = await lastInboundByAddress(db, contactId, 'whatsapp')
  const extra = wrote.filter((w) => !listed.some((a) => a.channel === 'whatsapp' && a.address === w.address))
    .map((w) => ({ channel: 'whatsapp' as const, address: w.address }))
  return [...listed, ...extra]
}

/** `sms:+31612345678`, `whatsapp:+31612345678`: the composer's and the retry form's address choice. */
export function parseTarget (raw: string): ReplyTarget | null {
  const m = /^([a-z]+):(\S{1,200})$/.exec(raw.trim())
  if (m === null || !(m[1] in CHANNEL_LABELS)) return null
  return { channel: m[1] as Channel, address: m[2] }
}

/** A `to` choice checked against the contact's addresses; 422 when it is not one of them. */
export async function chooseTarget (db: Executor, contactId: number, raw: string): Promise<ReplyTarget> {
  const target = parseTarget(raw)
  const targets = await replyTargets(db, contactId)
  if (target === null || !targets.some((t) => t.channel === target.channel && t.address === target.address)) {
    throw invalid(`${target === null ? `"${raw.slice(0, 40)}"` : `${CHANNEL_LABELS[target.channel]} ${target.address.slice(0, 40)}`} is not one of this customer's addresses; pick one from "Send to". Nothing was sent.`, [{ field: 'to', message: 'must be one of the contact\'s addresses' }])
  }
  return target
}

/** Free text to WhatsApp is refused (409) before anything is queued when the window is closed. */
export async function assertWindowOpen (db: Executor, contactId: number, target: ReplyTarget, now: Date): Promise<void> {
  if (target.channel !== 'whatsapp') return
  const w = (await whatsappWindows(db, contactId, now)).get(target.address) ?? windowOf(target.address, null, now)
  if (!w.open) throw new WindowClosed(w)
}

/** 422 for a reply longer than its channel takes (SMS keeps its own wording in the reply). */
export function assertTextFits (target: ReplyTarget, text: string): void {
  const limit = TEXT_LIMITS[target.channel]
  if (text.length > limit) {
    throw invalid(`The reply is ${text.length} characters long; ${CHANNEL_LABELS[target.channel]} takes at most ${limit.toLocaleString('en-US')}. Shorten it; nothing was sent.`, [{ field: 'body', message: `at most ${limit} characters on ${target.channel}` }])
  }
}

/**
 * Simulator only: the customer's WhatsApp messages from `address` are moved back to just over
 * 24 h ago, so the window closes now. Returns how many messages moved.
 */
export async function ageWhatsAppWindow (db: Executor, address: string, now: Date): Promise<number> {
  return await ageInbound(db, 'whatsapp', address, new Date(now.getTime() - WINDOW_MS - 60_000).toISOString())
}
