import { parsePhoneNumberFromString } from 'libphonenumber-js/max'
import { initClient } from 'messagebird'
import type { Channel } from '../db/schema.js'
import { isMessengerAddress, providerRecipient } from './address.js'
import type { ChannelAdapter, OutboundRequest, SendOutcome } from './channel.js'

export interface MessageBirdOptions {
  apiKey: string
  /** Digits of our virtual mobile number, or an alphanumeric sender of up to 11 characters. */
  originator: string
  /** Every sender a message may name (MESSAGEBIRD_ORIGINATORS); defaults to `originator` alone. */
  originators?: readonly string[]
  /** Conversations API channel id for WhatsApp; WhatsApp sends are refused without it. */
  whatsappChannelId: string | null
  /** Conversations API channel id of the Facebook page; Messenger sends are refused without it. */
  messengerChannelId?: string | null
  timeoutMs: number
}

type Callback<T> = (err: SdkError | null, res: T | null) => void
interface SdkError extends Error {
  statusCode?: number
  errors?: Array<{ code?: number, description?: string, parameter?: string | null }>
  error?: { code?: string, message?: string }
}
interface SdkClient {
  messages: { create: (params: Record<string, unknown>, cb: Callback<{ id?: unknown }>) => void }
  mms: { create: (params: Record<string, unknown>, cb: Callback<{ id?: unknown }>) => void }
  conversations: { send: (params: Record<string, unknown>, cb: Callback<{ id?: unknown, message?: { id?: unknown } }>) => void }
}

// Network errors that happen before MessageBird can have read the request: safe to retry.
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'CERT_HAS_EXPIRED'])

/**
 * Sends through the `messagebird` SDK (v4, callback style). The SDK's quirks, each handled here:
 * it mutates the params object (we build a fresh one per call), it reports a 5xx without an
 * `errors` array as success (we require an `id` in the answer), and a timeout surfaces as
 * "socket hang up" after the request may already have been accepted (ambiguous, never retried blindly).
 */
export class MessageBirdChannel implements ChannelAdapter {
  readonly provider = 'messagebird'
  private readonly client: SdkClient

  constructor (private readonly opts: MessageBirdOptions) {
    this.client = initClient(opts.apiKey, opts.timeoutMs) as unknown as SdkClient
  }

  supports (channel: Channel): boolean {
    return channel === 'sms' || channel === 'mms' || this.conversationChannelId(channel) !== null
  }

  /** The Conversations API channel a message on `channel` goes out from, or null when not configured. */
  private conversationChannelId (channel: Channel): string | null {
    if (channel === 'whatsapp') return this.opts.whatsappChannelId
    if (channel === 'messenger') return this.opts.messengerChannelId ?? null
    return null
  }

  async send (req: OutboundRequest): Promise<SendOutcome> {
    if (req.channel === 'mms') return await this.sendMms(req)
    return req.channel === 'sms' ? await this.sendSms(req) : await this.sendConversation(req)
  }

  /**
   * MMS API (`mms.create`): US and Canadian numbers only, from an MMS-enabled number. It takes a
   * `reference` like SMS, and its status reports come the same way (GET with id, reference, status).
   */
  private async sendMms (req: OutboundRequest): Promise<SendOutcome> {
    const outside = mmsOutsideNorthAmerica(req.to)
    if (outside !== null) return outside
    const originator = req.from ?? this.opts.originator
    if (!(this.opts.originators ?? [this.opts.originator]).includes(originator)) return notOwned(`the sender ${originator} is no longer one of MESSAGEBIRD_ORIGINATORS`)
    const params: Record<string, unknown> = {
      originator,
      recipients: [req.to.replace(/^\+/, '')],
      reference: req.messageId
    }
    if (req.body.trim() !== '') params.body = req.body
    if (req.mediaUrls !== undefined && req.mediaUrls.length > 0) params.mediaUrls = [...req.mediaUrls]
    if (params.body === undefined && params.mediaUrls === undefined) {
      return { ok: false, failure: 'permanent', reason: 'An MMS needs a text or a media URL', code: 'MMS_EMPTY' }
    }
    const { err, res } = await call<{ id?: unknown }>((cb) => this.client.mms.create(params, cb))
    if (err !== null) return classify(err)
    if (res !== null && typeof res.id === 'string' && res.id !== '') return { ok: true, providerMessageId: res.id }
    return { ok: false, failure: 'transient', reason: 'MessageBird answered without a message id (an upstream error page); will retry', code: null }
  }

  private async sendSms (req: OutboundRequest): Promise<SendOutcome> {
    if (isMessengerAddress(req.to)) return { ok: false, failure: 'permanent', reason: 'A Messenger id is not a phone number: it cannot be sent an SMS', code: 'NOT_A_PHONE_NUMBER' }
    const originator = req.from ?? this.opts.originator
    // The sender was checked when the message was accepted; configuration may have changed since.
    if (!(this.opts.originators ?? [this.opts.originator]).includes(originator)) return notOwned(`the sender ${originator} is no longer one of MESSAGEBIRD_ORIGINATORS`)
    const params: Record<string, unknown> = {
      originator,
      recipients: [req.to.replace(/^\+/, '')],
      body: req.body,
      // MessageBird only sends delivery reports for messages created with a reference.
      reference: req.messageId,
      // `plain` would replace every non-GSM character (ç, emoji, curly quotes) in free text.
      datacoding: 'auto'
    }
    if (req.reportUrl !== null) params.reportUrl = req.reportUrl
    const { err, res } = await call<{ id?: unknown }>((cb) => this.client.messages.create(params, cb))
    if (err !== null) return classify(err)
    if (res !== null && typeof res.id === 'string' && res.id !== '') return { ok: true, providerMessageId: res.id }
    return { ok: false, failure: 'transient', reason: 'MessageBird answered without a message id (an upstream error page); will retry', code: null }
  }

  private async sendConversation (req: OutboundRequest): Promise<SendOutcome> {
    const from = this.conversationChannelId(req.channel)
    if (from === null) {
      const [name, variable] = req.channel === 'messenger' ? ['Messenger', 'MESSAGEBIRD_MESSENGER_CHANNEL_ID'] : ['WhatsApp', 'MESSAGEBIRD_WHATSAPP_CHANNEL_ID']
      return { ok: false, failure: 'permanent', reason: `${name} is not configured (set ${variable})`, code: 'CHANNEL_NOT_CONFIGURED' }
    }
    if (req.from != null && req.from !== from) return notOwned(`the sender ${req.from} is no longer the ${req.channel === 'messenger' ? 'Messenger channel (MESSAGEBIRD_MESSENGER_CHANNEL_ID)' : 'WhatsApp channel (MESSAGEBIRD_WHATSAPP_CHANNEL_ID)'}`)
    const params: Record<string, unknown> = {
      // WhatsApp: the customer's number; Messenger: their page-scoped id (MessageBird `to`).
      to: providerRecipient(req.to),
      from: req.from ?? from,
      ...content(req),
      // Conversations API has no `reference`; we match its webhooks by the returned message id.
      ...(req.reportUrl !== null ? { reportUrl: req.reportUrl } : {})
    }
    const { err, res } = await call<{ id?: unknown, message?: { id?: unknown } }>((cb) => this.client.conversations.send(params, cb))
    if (err !== null) return classify(err)
    // The Go/Java SDKs model a flat `{ id, status }`, the Node typings `{ message: { id, status } }`.
    const id = res?.id ?? res?.message?.id
    if (typeof id === 'string' && id !== '') return { ok: true, providerMessageId: id }
    return { ok: false, failure: 'transient', reason: 'MessageBird answered without a message id (an upstream error page); will retry', code: null }
  }
}

function notOwned (why: string): SendOutcome {
  return { ok: false, failure: 'permanent', reason: `Not sent: ${why}`, code: 'SENDER_NOT_CONFIGURED' }
}

/**
 * Free text, or an approved template: Conversations API `type: 'hsm'` with `content.hsm`
 * {namespace, templateName, language {policy, code}, params [{default}]} (the SDK's HSMContent).
 * `deterministic`: the template goes out in the language it was approved in, never a fallback.
 */
function content (req: OutboundRequest): { type: 'text' | 'hsm', content: Record<string, unknown> } {
  const t = req.template
  if (t == null) return { type: 'text', content: { text: req.body } }
  return {
    type: 'hsm',
    content: {
      hsm: {
        namespace: t.namespace,
        templateName: t.templateName,
        language: { policy: 'deterministic', code: t.language },
        params: t.params.map((value) => ({ default: value }))
      }
    }
  }
}

/** MessageBird's refusal of an MMS to a number outside the US and Canada; null when the number is one. */
export function mmsOutsideNorthAmerica (to: string): SendOutcome | null {
  if (isNorthAmerican(to)) return null
  return { ok: false, failure: 'permanent', reason: `MMS reaches US and Canadian numbers only (+1); ${to} is not one`, code: 'MMS_NOT_OFFERED' }
}

/** MessageBird's MMS API sends within the US and Canada only (not the rest of +1: Jamaica, Puerto Rico …). */
export function isNorthAmerican (e164: string): boolean {
  const country = parsePhoneNumberFromString(e164.startsWith('+') ? e164 : `+${e164}`)?.country
  return country === 'US' || country === 'CA'
}

async function call<T> (fn: (cb: Callback<T>) => void): Promise<{ err: SdkError | null, res: T | null }> {
  return await new Promise((resolve) => {
    fn((err, res) => resolve({ err, res }))
  })
}

export function classify (err: SdkError): SendOutcome {
  const status = err.statusCode
  const first = err.errors?.[0]
  const code = first?.code !== undefined ? String(first.code) : (err.error?.code ?? null)
  if (status !== undefined) {
    const reason = err.errors !== undefined
      ? err.errors.map((e) => e.description ?? 'unknown error').join('; ')
      : `MessageBird answered HTTP ${status}`
    if (status === 429 || status >= 500 || status === 408) return { ok: false, failure: 'transient', reason, code }
    if (status === 401 || status === 403) return { ok: false, failure: 'permanent', reason: `${reason} (check MESSAGEBIRD_API_KEY)`, code }
    return { ok: false, failure: 'permanent', reason, code }
  }
  const netCode = err.error?.code
  if (netCode !== undefined && NOT_SENT_CODES.has(netCode)) {
    return { ok: false, failure: 'transient', reason: `Could not reach MessageBird (${netCode})`, code: netCode }
  }
  return { ok: false, failure: 'ambiguous', reason: `No answer from MessageBird (${err.message}); it may have accepted the message`, code: netCode ?? null }
}
