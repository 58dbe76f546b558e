import { DateTime } from 'luxon'
import type { Message } from '../db/schema.js'
import type { QuietHours } from '../messaging/quiet-hours.js'

/** What a message's bubble says about its schedule; null for a message that is not a scheduled reply. */
export function scheduleView (m: Pick<Message, 'status' | 'send_at' | 'to_address' | 'direction'>, quiet: QuietHours, now: Date) {
  if (m.direction !== 'outbound' || m.send_at === null) return null
  const waiting = m.status === 'queued'
  const zone = quiet.zoneOf(m.to_address)
  const their = zone.fromNumber ? 'their time' : zone.zone
  const due = new Date(Math.max(Date.parse(m.send_at), now.getTime()))
  const release = waiting ? quiet.releaseAt(due, m.to_address) : null
  const sendsAt = release ?? due
  const local = DateTime.fromISO(m.send_at, { zone: zone.zone })
  return {
    waiting,
    words: waiting
      ? `Scheduled: will send at ${quiet.localTime(sendsAt, m.to_address, now)} ${their}${release !== null ? ` (held by quiet hours, ${quiet.describe()}; scheduled for ${quiet.localTime(new Date(m.send_at), m.to_address, now)})` : ''}`
      : `Was scheduled for ${quiet.localTime(new Date(m.send_at), m.to_address, now)} ${their}`,
    sendsAt: sendsAt.toISOString(),
    // The edit form's fields, in the customer's zone.
    localValue: local.toFormat("yyyy-MM-dd'T'HH:mm"),
    zone: zone.zone
  }
}

/** The composer's "Send later" controls: the customer's zone and the quiet hours, as words. */
export function sendLaterView (phone: string, quiet: QuietHours) {
  const zone = quiet.zoneOf(phone)
  return { theirZone: zone.zone, fromNumber: zone.fromNumber, quiet: quiet.window === null ? null : quiet.describe() }
}
