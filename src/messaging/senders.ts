import type { Channel } from '../db/schema.js'

/**
 * The senders this account owns, per channel: SMS (and MMS) go out from one of the originators,
 * WhatsApp and Messenger from a Conversations API channel id. A dispatch step's `from` must name
 * one of them; a step without `from` uses the default (the first originator, or the channel's id).
 */
export interface SenderDirectory {
  /** MESSAGEBIRD_ORIGINATORS without a leading +; empty with the simulator when none is configured. */
  originators: readonly string[]
  /** The configured Conversations API channel id of each id-addressed channel. */
  channelIds: Partial<Record<Channel, string>>
}

/** The channels whose sender is a number or sender name (`from.number`); the others use `from.id`. */
const NUMBER_SENDERS: ReadonlySet<Channel> = new Set(['sms', 'mms'])

export const usesNumberSender = (channel: Channel): boolean => NUMBER_SENDERS.has(channel)

export type SenderChoice = { ok: true, sender: string | null } | { ok: false, field: 'number' | 'id', message: string }

/**
 * The sender a step's `from` chooses, or why it may not. With nothing configured for a channel
 * (the simulator without MESSAGEBIRD_ORIGINATORS), any sender is taken as given: nothing leaves
 * the server, and a demonstration should accept the seeds' examples as written.
 */
export function chooseSender (senders: SenderDirectory, channel: Channel, from: { number?: unknown, id?: unknown } | undefined): SenderChoice {
  if (from === undefined) return { ok: true, sender: null }
  const number = typeof from.number === 'string' ? from.number.trim() : undefined
  const id = typeof from.id === 'string' ? from.id.trim() : undefined
  if (usesNumberSender(channel)) {
    if (number === undefined) {
      return id === undefined ? { ok: true, sender: null } : { ok: false, field: 'id', message: `${channel} is sent from a number or sender name: give from.number (one of MESSAGEBIRD_ORIGINATORS), not from.id` }
    }
    const wanted = number.replace(/^\+/, '')
    if (senders.originators.length === 0 || senders.originators.includes(wanted)) return { ok: true, sender: wanted }
    return { ok: false, field: 'number', message: `"${number}" is not one of this account's senders (MESSAGEBIRD_ORIGINATORS: ${senders.originators.join(', ')}); a message cannot be sent from a number you do not own` }
  }
  if (id === undefined) {
    return number === undefined ? { ok: true, sender: null } : { ok: false, field: 'number', message: `${channel} is sent from a MessageBird channel: give from.id, the channel id, not from.number` }
  }
  const owned = senders.channelIds[channel]
  if (owned === undefined || owned === id) return { ok: true, sender: id }
  return { ok: false, field: 'id', message: `"${id}" is not this account's ${channel} channel (its channel id is ${owned}); a message cannot be sent from a channel you do not own` }
}
