import type { MessageStatus } from '../db/schema.js'

const WHATSAPP_WINDOW = 'WhatsApp refused free text: the customer last wrote on WhatsApp more than 24 hours ago. Only an approved template, or an SMS, reaches them now.'

// Carrier and MessageBird wording, as it arrives in `statusReason` and API error codes, turned into
// what an agent can act on. The original text stays visible next to it.
const CARRIER_REASONS: Array<[RegExp, string]> = [
  [/^unknown subscriber$/i, 'The number does not exist or is no longer in service. Check it with the customer.'],
  [/^unavailable subscriber$/i, 'The phone was switched off or out of coverage for too long.'],
  [/^absent subscriber$/i, 'The phone was switched off or out of coverage for too long.'],
  [/^received network error$/i, 'The mobile network reported an error. Sending again later may work.'],
  [/^capacity limit reached$/i, 'The carrier was too busy to take the message. Sending again later may work.'],
  [/^carrier rejected$/i, 'The customer\'s mobile carrier refused the message.'],
  [/^(expired|dlr not received)$/i, 'The carrier could not deliver it in time (the phone may have been off the whole time).'],
  [/^pending dlr$/i, 'Handed to the carrier; waiting for its delivery report.'],
  [/^rejected$/i, 'The provider refused the message.'],
  [/24 hours have passed|outside the (allowed|customer care|24.hour) window|re-engagement/i, WHATSAPP_WINDOW]
]

// MessageBird REST API error codes (errors[].code), and the WhatsApp Business API's own codes for
// free text outside the 24-hour window that the Conversations API passes on (470 on-premises,
// 131047 Cloud API).
const PROVIDER_CODES: Record<string, string> = {
  2: 'MessageBird refused the API key. Check MESSAGEBIRD_API_KEY.',
  9: 'MessageBird found no valid recipient in the number.',
  25: 'The MessageBird balance is too low to send.',
  470: WHATSAPP_WINDOW,
  131047: WHATSAPP_WINDOW
}

const SUCCESS: ReadonlySet<MessageStatus> = new Set(['delivered', 'read'])

/**
 * The reason to show under a message, in plain words, or null when there is nothing to explain
 * (a delivered message's "successfully delivered" says nothing the status does not).
 */
export function plainReason (m: { status: MessageStatus, status_reason: string | null, error_code: string | null }): string | null {
  if (SUCCESS.has(m.status)) return null
  const raw = m.status_reason?.trim() ?? ''
  for (const [pattern, text] of CARRIER_REASONS) {
    if (pattern.test(raw)) return text
  }
  if (m.error_code !== null && PROVIDER_CODES[m.error_code] !== undefined && (m.status === 'failed' || m.status === 'queued')) {
    return PROVIDER_CODES[m.error_code]
  }
  if (raw !== '') return raw
  switch (m.status) {
    case 'failed': return 'The provider reported a failure without a reason.'
    case 'expired': return 'The carrier could not deliver it in time.'
    default: return null
  }
}
