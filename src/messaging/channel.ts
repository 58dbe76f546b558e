import type { Channel } from '../db/schema.js'
import { MAX_SMS_TEXT_LENGTH } from './sms-parts.js'

/** How a channel is named to people (inbox, reports). */
export const CHANNEL_LABELS: Record<Channel, string> = { sms: 'SMS', whatsapp: 'WhatsApp', messenger: 'Messenger', mms: 'MMS' }

/** Per-channel text limits: ours for SMS (about ten parts), each platform's own for the others. */
export const TEXT_LIMITS: Record<Channel, number> = { sms: MAX_SMS_TEXT_LENGTH, whatsapp: 4096, messenger: 640, mms: 2000 }

/**
 * The channel for a text-only answer to a customer who wrote on `channel` (a confirmation, a
 * keyword's answer, a CSAT thanks): an MMS sender gets an SMS at the same number, since an MMS
 * without a picture costs more and carries nothing more.
 */
export function textChannelFor (channel: Channel): Channel {
  return channel === 'mms' ? 'sms' : channel
}

/**
 * A WhatsApp template message (MessageBird Conversations API `type: 'hsm'`): an approved template,
 * the only thing WhatsApp delivers more than 24 h after the customer's last message.
 */
export interface HsmTemplate {
  namespace: string
  templateName: string
  /** A language or locale code as the template was approved in (`en`, `en_US`). */
  language: string
  /** The values of the template's parameters, in order. */
  params: string[]
}

/** What the outbox worker asks a provider adapter to send. */
export interface OutboundRequest {
  /** Our message id; providers echo it back as the `reference` on delivery reports. */
  messageId: string
  channel: Channel
  /** E.164 for SMS, the provider's contact id or number for other channels. */
  to: string
  body: string
  /**
   * The sender chosen for this message (an originator, or a channel id), stored on it so a retry
   * or a restart sends from the same one; null or absent: the default sender.
   */
  from?: string | null
  /** WhatsApp only: send this approved template instead of `body` as free text. */
  template?: HsmTemplate | null
  /** MMS only: the https URLs of the media to attach, in order. */
  mediaUrls?: readonly string[]
  /** Where the provider should send delivery reports, when we know our public URL. */
  reportUrl: string | null
}

/**
 * `transient`: the provider did not take the message (network refused, 429, 5xx): safe to retry.
 * `permanent`: the provider refused it for good (invalid recipient, bad key): do not retry.
 * `ambiguous`: the provider may have taken it (timeout after the request was written): retrying
 * could send it twice, so we wait for a delivery report instead.
 */
export type SendOutcome =
  | { ok: true, providerMessageId: string }
  | { ok: false, failure: 'transient' | 'permanent' | 'ambiguous', reason: string, code: string | null }

export interface ChannelAdapter {
  /** Stored in messages.provider and used to match delivery reports. */
  readonly provider: string
  supports: (channel: Channel) => boolean
  send: (req: OutboundRequest) => Promise<SendOutcome>
  close?: () => void
}

/** A delivery/status report from any provider, already parsed into our vocabulary. */
export interface StatusReport {
  provider: string
  /** Our message id, when the provider echoes our reference. */
  reference: string | null
  providerMessageId: string | null
  /** The provider's own status word (kept in the event log). */
  rawStatus: string
  statusAt: string
  reason: string | null
  errorCode: string | null
  priceAmount: string | null
  priceCurrency: string | null
  segments: number | null
  raw: unknown
}
