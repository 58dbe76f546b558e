import { messengerAddress, PSID } from '../messaging/address.js'
import type { MediaKind } from '../db/schema.js'
import type { MediaItem } from '../media/media-repository.js'
import type { StatusReport } from '../messaging/channel.js'
import { InvalidPhoneNumber, senderToE164 } from '../tickets/phone.js'
import type { InboundSms } from '../tickets/ticket-service.js'
import { UserError } from '../errors.js'

// Parsing of MessageBird webhook payloads into our vocabulary. Field names and aliases follow
// MessageBird's Flow Builder "Forward to URL" step (form or JSON), its SMS delivery reports
// (GET query) and the Conversations API webhooks (JSON). Unknown fields are ignored.

type Fields = Record<string, unknown>

function text (f: Fields, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = f[n]
    if (typeof v === 'string') return v
    if (typeof v === 'number' && Number.isFinite(v)) return String(v)
  }
  return undefined
}

const MEDIA = ['image', 'video', 'audio', 'file'] as const

/**
 * A received message without text (a photo, a voice note, a file, a location) is still the
 * customer's message: stored as a line that says what they sent, with its caption, so it is never
 * acknowledged and dropped. The media itself is stored beside it (conversationMedia) and shown
 * through GET /media/:id.
 */
function describeMedia (content: Fields): string | undefined {
  for (const kind of MEDIA) {
    const media = content[kind] as Fields | undefined
    if (media !== undefined && media !== null && typeof media === 'object') {
      const caption = text(media, 'caption')?.trim()
      return caption === undefined || caption === '' ? `[${kind}]` : `[${kind}] ${caption}`
    }
  }
  const location = content.location as Fields | undefined
  if (location !== undefined && location !== null && typeof location === 'object') {
    const lat = text(location, 'latitude')
    const long = text(location, 'longitude')
    return lat === undefined || long === undefined ? '[location]' : `[location ${lat}, ${long}]`
  }
  return undefined
}

const MAX_MEDIA_ITEMS = 10
const MAX_MEDIA_URL = 2048

function mediaUrl (v: unknown): string | null {
  if (typeof v !== 'string' || v.length > MAX_MEDIA_URL) return null
  try {
    const u = new URL(v)
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null
  } catch {
    return null
  }
}

/** The media of a Conversations API message (`content.image.url` …); a URL that is not one is left out. */
export function conversationMedia (content: Fields | undefined): MediaItem[] {
  if (content === undefined || content === null || typeof content !== 'object') return []
  const items: MediaItem[] = []
  for (const kind of MEDIA) {
    const media = content[kind] as Fields | undefined
    if (media === undefined || media === null || typeof media !== 'object') continue
    const url = mediaUrl(media.url)
    if (url === null) continue
    const caption = text(media, 'caption')?.trim()
    items.push({ kind, url, caption: caption === undefined || caption === '' ? null : caption, contentType: nonEmpty(text(media, 'contentType', 'mimeType', 'mimetype')) })
  }
  return items
}

const IMAGE_EXT = /\.(jpe?g|png|gif|webp|bmp|heic)$/i
const VIDEO_EXT = /\.(mp4|3gp|mov|webm)$/i
const AUDIO_EXT = /\.(mp3|amr|m4a|ogg|wav|aac)$/i

/** What an MMS item is, from its content type when MessageBird gives one, else from the URL's file name. */
function mmsKind (url: string, contentType: string | null): MediaKind {
  const type = contentType?.toLowerCase() ?? ''
  for (const k of ['image', 'video', 'audio'] as const) if (type.startsWith(`${k}/`)) return k
  if (type !== '') return 'file'
  const path = new URL(url).pathname
  return IMAGE_EXT.test(path) ? 'image' : VIDEO_EXT.test(path) ? 'video' : AUDIO_EXT.test(path) ? 'audio' : 'file'
}

/** A list field as JSON (`[…]`), a flat form/query (`name[0]`, `name[]`, repeated `name`), or one string. */
function list (f: Fields, name: string): unknown[] {
  const v = f[name] ?? f[`${name}[]`]
  if (Array.isArray(v)) return v
  if (v !== undefined) return [v]
  const indexed: Array<[number, unknown]> = []
  for (const [k, value] of Object.entries(f)) {
    const m = new RegExp(`^${name}\\[(\\d{1,3})\\]$`).exec(k)
    if (m !== null) indexed.push([Number(m[1]), value])
  }
  return indexed.sort((a, b) => a[0] - b[0]).map(([, value]) => value)
}

/**
 * An inbound MMS, forwarded by MessageBird's MMS API to the number's URL (GET query, form or JSON
 * POST): `originator`, `recipient`, `subject`, `body`, `mediaUrls` and, when given,
 * `mediaContentTypes` in the same order. Stored like an SMS, on channel `mms`, with its media.
 */
export function parseInboundMms (f: Fields): InboundSms {
  const urls = list(f, 'mediaUrls')
  if (urls.length > MAX_MEDIA_ITEMS) throw new UserError(400, `An MMS carries at most ${MAX_MEDIA_ITEMS} media items (got ${urls.length})`, 'TOO_MANY_MEDIA')
  const types = list(f, 'mediaContentTypes')
  const media: MediaItem[] = urls.map((raw, i) => {
    const url = mediaUrl(raw)
    if (url === null) throw new UserError(400, `mediaUrls[${i}] must be an http(s) URL of at most ${MAX_MEDIA_URL} characters`, 'INVALID_MEDIA_URL')
    const contentType = typeof types[i] === 'string' ? nonEmpty(types[i] as string) : null
    return { kind: mmsKind(url, contentType), url, caption: null, contentType }
  })
  const body = text(f, 'body', 'payload', 'message')?.trim() ?? ''
  const subject = text(f, 'subject')?.trim() ?? ''
  const line = body !== '' ? body : subject !== '' ? subject : media.map((m) => `[${m.kind}]`).join(' ')
  if (line === '') throw new UserError(400, 'An MMS needs a body, a subject or mediaUrls', 'MISSING_FIELD')
  const sms = parseInboundSms({ ...f, originator: text(f, 'originator', 'sender', 'from'), receiver: text(f, 'recipient', 'receiver', 'to'), payload: line, body: undefined })
  return { ...sms, channel: 'mms', media }
}

export function parseInboundSms (f: Fields): InboundSms {
  const originator = text(f, 'originator', 'sender', 'from')
  const body = text(f, 'payload', 'body', 'message', 'text')
  const missing: string[] = []
  if (originator === undefined || originator.trim() === '') missing.push('originator (the sender\'s number)')
  if (body === undefined) missing.push('payload or body (the message text)')
  if (missing.length > 0) throw new UserError(400, `Missing ${missing.join(' and ')}`, 'MISSING_FIELD')
  let from: string
  try {
    from = senderToE164(originator as string)
  } catch (err) {
    if (err instanceof InvalidPhoneNumber) throw new UserError(400, `originator: ${err.message}`, 'INVALID_PHONE')
    throw err
  }
  const receiver = text(f, 'receiver', 'recipient', 'to')
  const id = text(f, 'id', 'message_id')
  return {
    provider: 'messagebird',
    providerMessageId: id !== undefined && id.trim() !== '' ? id.trim() : null,
    from,
    to: receiver !== undefined && /^\+?\d+$/.test(receiver) ? '+' + receiver.replace(/^\+/, '') : (receiver ?? null),
    text: body as string,
    channel: 'sms'
  }
}

/** An SMS delivery report (GET with query parameters). */
export function parseSmsReport (q: Fields): StatusReport {
  const id = text(q, 'id')
  const status = text(q, 'status')
  if (id === undefined || status === undefined || id === '' || status === '') {
    throw new UserError(400, 'A delivery report needs id and status', 'MISSING_FIELD')
  }
  const reference = text(q, 'reference')
  const parts = text(q, 'messagePartCount')
  return {
    provider: 'messagebird',
    reference: reference !== undefined && reference !== '' ? reference : null,
    providerMessageId: id,
    rawStatus: status,
    statusAt: parseTime(text(q, 'statusDatetime')),
    reason: text(q, 'statusReason') ?? null,
    errorCode: nonEmpty(text(q, 'statusErrorCode')),
    // Fastify does not expand bracket keys: these arrive as the flat keys "price[amount]".
    priceAmount: nonEmpty(text(q, 'price[amount]')),
    priceCurrency: nonEmpty(text(q, 'price[currency]')),
    segments: parts !== undefined && /^\d+$/.test(parts) ? Number(parts) : null,
    raw: q
  }
}

export type ConversationEvent =
  | { kind: 'inbound', sms: InboundSms }
  | { kind: 'status', report: StatusReport }
  | { kind: 'ignored', reason: string }

/** A Conversations API webhook: `message.created` / `message.updated` (WhatsApp, SMS channel, …). */
export function parseConversationEvent (body: unknown): ConversationEvent {
  if (body === null || typeof body !== 'object') throw new UserError(400, 'Expected a JSON object', 'INVALID_BODY')
  const b = body as Fields
  const type = text(b, 'type')
  const message = b.message as Fields | undefined
  if (type === undefined || message === undefined || typeof message !== 'object') {
    throw new UserError(400, 'A Conversations webhook needs type and message', 'MISSING_FIELD')
  }
  if (type !== 'message.created' && type !== 'message.updated') return { kind: 'ignored', reason: `event ${type}` }
  const id = text(message, 'id')
  const status = text(message, 'status')
  if (id === undefined || status === undefined) throw new UserError(400, 'message.id and message.status are required', 'MISSING_FIELD')
  const platform = text(message, 'platform') ?? 'sms'
  if (text(message, 'direction') === 'received') {
    const content = message.content as Fields | undefined
    const from = text(message, 'from')
    const body = content !== undefined ? text(content, 'text') ?? describeMedia(content) : undefined
    const media = conversationMedia(content)
    if (from === undefined || body === undefined) return { kind: 'ignored', reason: 'received message without text or media' }
    if (platform === 'facebook') {
      // Messenger: `from` is the sender's page-scoped id (no phone number is ever shared).
      if (!PSID.test(from.trim())) return { kind: 'ignored', reason: 'Messenger sender is not a page-scoped id' }
      return {
        kind: 'inbound',
        sms: { provider: 'messagebird', providerMessageId: id, from: messengerAddress(from.trim()), to: text(message, 'to') ?? null, text: body, channel: 'messenger', name: senderName(b.contact) }
      }
    }
    let e164: string
    try {
      e164 = senderToE164(from)
    } catch {
      return { kind: 'ignored', reason: 'sender is not a phone number' }
    }
    return {
      kind: 'inbound',
      sms: { provider: 'messagebird', providerMessageId: id, from: e164, to: text(message, 'to') ?? null, text: body, channel: platform === 'whatsapp' ? 'whatsapp' : 'sms', ...(media.length > 0 ? { media } : {}) }
    }
  }
  const error = message.error as Fields | undefined
  return {
    kind: 'status',
    report: {
      provider: 'messagebird',
      reference: null,
      providerMessageId: id,
      rawStatus: status,
      statusAt: parseTime(text(message, 'updatedDatetime') ?? text(message, 'createdDatetime')),
      reason: error !== undefined ? (text(error, 'description') ?? null) : null,
      errorCode: error !== undefined ? (text(error, 'code') ?? null) : null,
      priceAmount: null,
      priceCurrency: null,
      segments: null,
      raw: body
    }
  }
}

/**
 * The name MessageBird's contact carries for a Messenger user: `displayName` in webhooks, else
 * `firstName`/`lastName` (its ConversationContact object). A bare number is no name.
 */
function senderName (contact: unknown): string | null {
  if (contact === null || typeof contact !== 'object') return null
  const c = contact as Fields
  const display = text(c, 'displayName')?.trim()
  const full = [text(c, 'firstName'), text(c, 'lastName')].map((v) => v?.trim() ?? '').filter((v) => v !== '').join(' ')
  const name = display !== undefined && display !== '' && !/^\+?\d+$/.test(display) ? display : full
  return name === '' ? null : name.slice(0, 200)
}

function nonEmpty (v: string | undefined): string | null {
  return v === undefined || v.trim() === '' ? null : v.trim()
}

/** RFC 3339 from MessageBird; a raw `+` in the offset may arrive decoded as a space. */
function parseTime (v: string | undefined): string {
  if (v === undefined || v === '') return new Date().toISOString()
  const fixed = v.replace(/ (\d{2}:?\d{2})$/, '+$1')
  const t = Date.parse(fixed)
  return Number.isNaN(t) ? new Date().toISOString() : new Date(t).toISOString()
}
