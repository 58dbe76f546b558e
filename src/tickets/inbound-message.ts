import type { NewMessage } from '../db/schema.js'
import type { InboundSms } from './ticket-service.js'

/**
 * The stored row of a customer's text: `body` as agents see it, `statusReason` a note on it (why
 * no automatic answer went out, a rating), `ref` when it named one of their tickets (`#<ref>`) and
 * so keeps the text as written beside the body.
 */
export function customerMessage (sms: Omit<InboundSms, 'text'>, m: { id: string, ticketId: number, body: string, statusReason: string | null, now: string, ref?: { ticketId: number, originalBody: string } }): NewMessage {
  return {
    id: m.id,
    ticket_id: m.ticketId,
    direction: 'inbound',
    kind: 'customer',
    channel: sms.channel,
    from_address: sms.from,
    to_address: sms.to ?? '',
    body: m.body,
    ref_ticket_id: m.ref?.ticketId ?? null,
    original_body: m.ref?.originalBody ?? null,
    provider: sms.provider,
    provider_message_id: sms.providerMessageId,
    status: 'received',
    status_at: m.now,
    status_reason: m.statusReason,
    error_code: null,
    price_amount: null,
    price_currency: null,
    segments: null,
    attempts: 0,
    agent_id: null,
    dispatch_id: null,
    created_at: m.now,
    updated_at: m.now
  }
}
