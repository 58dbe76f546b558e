import type { Dispatch, DispatchStep, Message } from '../db/schema.js'
import type { DispatchView } from '../messaging/failover.js'
import { plainReason } from '../messaging/status-wording.js'
import { providerRecipient } from '../messaging/address.js'

// The JSON shapes of the notifications API, shared by the GET endpoints and the status callbacks.
// Field names follow Nexmo's Messages and Dispatch APIs (message_uuid, dispatch_uuid, usage, _links).

/** Absolute links when PUBLIC_URL is known (a callback receiver needs them), paths otherwise. */
export type LinkFn = (path: string) => string

export function linker (publicUrl: string | null): LinkFn {
  return (path) => (publicUrl ?? '') + path
}

export const messagePath = (id: string): string => `/api/v1/messages/${id}`
export const dispatchPath = (id: string): string => `/api/v1/dispatch/${id}`

type Usage = { price: string, currency: string } | null

function usage (m: { price_amount: string | null, price_currency: string | null }): Usage {
  return m.price_amount !== null && m.price_currency !== null ? { price: m.price_amount, currency: m.price_currency } : null
}

export function messageView (m: Message, link: LinkFn) {
  return {
    message_uuid: m.id,
    status: m.status,
    status_at: m.status_at,
    channel: m.channel,
    to: providerRecipient(m.to_address),
    text: m.body,
    reason: plainReason(m),
    provider_reason: m.status_reason,
    error_code: m.error_code,
    usage: usage(m),
    ticket_id: m.ticket_id,
    dispatch_uuid: m.dispatch_id,
    created_at: m.created_at,
    _links: {
      self: { href: link(messagePath(m.id)) },
      ...(m.dispatch_id !== null ? { dispatch: { href: link(dispatchPath(m.dispatch_id)) } } : {})
    }
  }
}

type DispatchMessage = DispatchView['messages'][number]

function stepView (s: DispatchStep, m: DispatchMessage | undefined, link: LinkFn) {
  return {
    position: s.position,
    channel: s.channel,
    to: providerRecipient(s.to_address),
    condition_status: s.condition_status,
    expiry_time: s.expiry_seconds,
    status: s.status,
    started_at: s.started_at,
    deadline_at: s.deadline_at,
    ended_at: s.ended_at,
    message_uuid: s.message_id,
    message_status: m?.status ?? null,
    ...(s.message_id !== null ? { _links: { message: { href: link(messagePath(s.message_id)) } } } : {})
  }
}

function linkedMessages (messages: DispatchMessage[], link: LinkFn) {
  return messages.map((m) => ({ message_uuid: m.id, href: link(messagePath(m.id)), channel: m.channel, status: m.status, usage: usage(m) }))
}

export function dispatchView (v: DispatchView, link: LinkFn) {
  const byPosition = new Map(v.messages.map((m) => [m.position, m]))
  return {
    dispatch_uuid: v.dispatch.id,
    template: v.dispatch.template,
    status: v.dispatch.status,
    current_step: v.dispatch.current_step,
    ticket_id: v.dispatch.ticket_id,
    created_at: v.dispatch.created_at,
    updated_at: v.dispatch.updated_at,
    ended_at: v.dispatch.ended_at,
    workflow: v.steps.map((s) => stepView(s, byPosition.get(s.position), link)),
    _links: { self: { href: link(dispatchPath(v.dispatch.id)) }, messages: linkedMessages(v.messages, link) }
  }
}

/**
 * The final report of a dispatch, in the shape of Dispatch's own: its status in the Dispatch
 * spec's words (`completed`, or `error` for what GET calls `failed`) and the summed usage.
 */
export function dispatchReport (d: Dispatch, messages: DispatchMessage[], link: LinkFn) {
  return {
    dispatch_uuid: d.id,
    template: d.template,
    status: d.status === 'failed' ? 'error' : d.status,
    ended_at: d.ended_at,
    usage: totalUsage(messages),
    _links: { self: { href: link(dispatchPath(d.id)) }, messages: linkedMessages(messages, link) }
  }
}

/**
 * The sum of the messages' prices, added as exact decimals (prices are strings such as "0.0333";
 * floating point would turn 0.1 + 0.2 into 0.30000000000000004). Null when no message has a price,
 * or when the prices are in more than one currency.
 */
export function totalUsage (messages: Array<{ price_amount: string | null, price_currency: string | null }>): Usage {
  const priced = messages.filter((m) => m.price_amount !== null && m.price_currency !== null && /^-?\d+(\.\d+)?$/.test(m.price_amount))
  if (priced.length === 0) return null
  const currency = priced[0].price_currency as string
  if (priced.some((m) => m.price_currency !== currency)) return null
  const amounts = priced.map((m) => m.price_amount as string)
  const scale = Math.max(...amounts.map((a) => (a.split('.')[1] ?? '').length))
  const units = (a: string): bigint => {
    const negative = a.startsWith('-')
    const [whole, fraction = ''] = a.replace(/^-/, '').split('.')
    const n = BigInt(whole + fraction.padEnd(scale, '0'))
    return negative ? -n : n
  }
  const sum = amounts.reduce((acc, a) => acc + units(a), 0n)
  const digits = (sum < 0n ? -sum : sum).toString().padStart(scale + 1, '0')
  const price = `${sum < 0n ? '-' : ''}${scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`}`
  return { price, currency }
}
