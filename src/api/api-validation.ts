import type { FastifySchemaValidationError } from 'fastify'
import type { Channel } from '../db/schema.js'
import { messengerAddress, PSID } from '../messaging/address.js'
import { isNorthAmerican } from '../messaging/messagebird-channel.js'
import { stepProblems, type Condition, type Problem, type StepSpec } from '../messaging/failover.js'
import { chooseSender, type SenderDirectory } from '../messaging/senders.js'
import { InvalidPhoneNumber, toE164 } from '../tickets/phone.js'
import { TEXT_LIMITS } from '../messaging/channel.js'

// Request checks the JSON schema cannot express (phone numbers, what a channel can report, which
// steps need a failover), written to run on any input so that one 422 can name every bad field,
// together with what the schema found.

export const CHANNELS: readonly Channel[] = ['sms', 'whatsapp', 'messenger']
export { TEXT_LIMITS }

/** What a dispatch step may name in `to.type`: Messenger is addressed by id, the others by number. */
export const DISPATCH_CHANNELS: readonly Channel[] = ['sms', 'whatsapp', 'messenger', 'mms']
/** Viber Service Messages in the seeds' shape, with the Dispatch spec's own misspelling of it. */
export const VIBER_TYPES: readonly string[] = ['viber_service_msg', 'viber_sevice_msg']
/**
 * The Dispatch spec's text limits per channel (Messenger 640, SMS 1,000, WhatsApp 4,096; Viber's
 * 1,000 never applies, Viber being refused), for dispatch steps. `POST /api/v1/messages` and the
 * inbox keep TEXT_LIMITS (1,600 for SMS, about ten parts). The spec states none for MMS: an mms
 * step's text is held to MessageBird's MMS API `body` limit, 2,000 characters (its MMS message
 * object, developers.messagebird.com/api/mms-messaging), the same as TEXT_LIMITS.mms.
 */
export const DISPATCH_TEXT_LIMITS: Partial<Record<Channel, number>> = { sms: 1000, whatsapp: 4096, messenger: 640, mms: TEXT_LIMITS.mms }

export interface MessageInput { to: string, channel: Channel, text: string, urgent: boolean, mediaUrl: string | null }

/** POST /api/v1/messages also takes `mms`, with `media_url`; a dispatch step's image is its `message.content`. */
const MESSAGE_CHANNELS: readonly Channel[] = [...CHANNELS, 'mms']
const asMessageChannel = (v: unknown): Channel | undefined => MESSAGE_CHANNELS.find((c) => c === v)
export const MAX_MEDIA_URL = 2048

/** An MMS's media must be an https URL MessageBird can fetch: what is wrong with `url`, or null. */
function mediaUrlProblem (url: string): string | null {
  let ok = false
  try { ok = new URL(url).protocol === 'https:' } catch {}
  return ok && url.length <= MAX_MEDIA_URL ? null : `must be an https URL of at most ${MAX_MEDIA_URL} characters`
}

/** An MMS's media: an https URL MessageBird can fetch, to a US or Canadian number. */
function mmsProblems (body: Raw, channel: Channel | undefined, to: string | null, problems: Problem[]): void {
  const url = body.media_url
  if (channel !== 'mms') {
    if (url !== undefined) problems.push({ field: 'media_url', message: 'is only for channel "mms"' })
    return
  }
  if (typeof url !== 'string') {
    problems.push({ field: 'media_url', message: 'is required for channel "mms": the https URL of the image to send' })
  } else {
    const problem = mediaUrlProblem(url)
    if (problem !== null) problems.push({ field: 'media_url', message: problem })
  }
  if (to !== null && !isNorthAmerican(to)) problems.push({ field: 'to', message: 'MMS reaches US and Canadian numbers only (+1): send this one as sms or whatsapp' })
}

type Supports = (channel: Channel) => boolean
type Raw = Record<string, unknown>

const isObject = (v: unknown): v is Raw => v !== null && typeof v === 'object' && !Array.isArray(v)
const asDispatchChannel = (v: unknown): Channel | undefined => DISPATCH_CHANNELS.find((c) => c === v)
const dispatchLimit = (channel: Channel): number => DISPATCH_TEXT_LIMITS[channel] ?? TEXT_LIMITS[channel]

function phone (value: unknown, field: string, problems: Problem[]): string | null {
  if (typeof value !== 'string') return null
  try {
    return toE164(value)
  } catch (err) {
    if (!(err instanceof InvalidPhoneNumber)) throw err
    problems.push({ field, message: 'is not a valid phone number: use international format with the country code, e.g. 447700900001 or +447700900001' })
    return null
  }
}

/** A Messenger recipient: the page-scoped id MessageBird's webhook gave as the sender (`from`). */
function pageScopedId (value: unknown, field: string, problems: Problem[]): void {
  if (typeof value === 'string' && !PSID.test(value.trim())) problems.push({ field, message: 'is not a Messenger page-scoped id: use the digits MessageBird reported as the sender of their message' })
}

/** Where a message to `to` on `channel` goes, as our tables write it (messaging/address.ts). */
function recipient (channel: Channel, to: string): string {
  return channel === 'messenger' ? messengerAddress(to.trim()) : toE164(to)
}

function text (value: unknown, channel: Channel | undefined, field: string, problems: Problem[], limit = channel === undefined ? undefined : TEXT_LIMITS[channel]): void {
  if (typeof value !== 'string') return
  if (value.trim() === '') problems.push({ field, message: 'must not be empty' })
  else if (channel !== undefined && limit !== undefined && value.length > limit) problems.push({ field, message: `is ${value.length} characters long; ${channel} allows at most ${limit}` })
}

const SETTING: Partial<Record<Channel, string>> = { whatsapp: 'MESSAGEBIRD_WHATSAPP_CHANNEL_ID', messenger: 'MESSAGEBIRD_MESSENGER_CHANNEL_ID' }

function available (channel: Channel | undefined, supports: Supports, field: string, problems: Problem[]): void {
  if (channel !== undefined && !supports(channel)) {
    const setting = SETTING[channel]
    problems.push({ field, message: `${channel} is not configured on this server${setting !== undefined ? ` (${setting} is not set)` : ''}` })
  }
}

export function messageProblems (body: unknown, supports: Supports): Problem[] {
  if (!isObject(body)) return []
  const problems: Problem[] = []
  const channel = body.channel === undefined ? 'sms' : asMessageChannel(body.channel)
  let to: string | null = null
  if (channel === 'messenger') pageScopedId(body.to, 'to', problems)
  else to = phone(body.to, 'to', problems)
  text(body.text, channel, 'text', problems)
  available(channel, supports, 'channel', problems)
  mmsProblems(body, channel, to, problems)
  return problems
}

export function toMessageInput (body: Raw): MessageInput {
  const channel = asMessageChannel(body.channel) ?? 'sms'
  return { to: recipient(channel, body.to as string), channel, text: (body.text as string).trim(), urgent: body.urgent === true, mediaUrl: channel === 'mms' ? body.media_url as string : null }
}

export function dispatchProblems (body: unknown, supports: Supports, senders: SenderDirectory): Problem[] {
  if (!isObject(body) || !Array.isArray(body.workflow)) return []
  const problems: Problem[] = []
  const steps = body.workflow
  steps.forEach((raw: unknown, i) => {
    if (!isObject(raw)) return
    const at = `workflow[${i}]`
    const to = isObject(raw.to) ? raw.to : undefined
    const content = isObject(raw.message) && isObject(raw.message.content) ? raw.message.content : undefined
    if (to !== undefined && VIBER_TYPES.includes(to.type as string)) {
      // Refused, never sent on another channel in its place: the caller decides what replaces it.
      problems.push({ field: `${at}.to.type`, message: `${String(to.type)} (Viber Service Messages) is not offered by the configured provider: MessageBird's Conversations API has no Viber channel. Nothing was sent; send this step on sms, whatsapp or messenger instead` })
      return
    }
    const channel = asDispatchChannel(to?.type)
    if (to !== undefined && channel !== undefined) {
      if (channel === 'messenger') {
        if (typeof to.id !== 'string' || to.id.trim() === '') problems.push({ field: `${at}.to.id`, message: `is required: messenger messages go to the customer's page-scoped id (PSID)${to.number !== undefined ? ', not to a phone number' : ''}` })
        else pageScopedId(to.id, `${at}.to.id`, problems)
      } else if (to.number === undefined) {
        problems.push({ field: `${at}.to.number`, message: `is required: ${channel} messages go to a phone number${to.id !== undefined ? ' (id is for Messenger)' : ''}` })
      } else {
        const number = phone(to.number, `${at}.to.number`, problems)
        if (channel === 'mms' && number !== null && !isNorthAmerican(number)) problems.push({ field: `${at}.to.number`, message: 'MMS reaches US and Canadian numbers only (+1): send this step as sms or whatsapp' })
      }
      available(channel, supports, `${at}.to.type`, problems)
    }
    const from = isObject(raw.from) ? raw.from : undefined
    if (from !== undefined && channel !== undefined) {
      if (from.type !== undefined && from.type !== channel) {
        problems.push({ field: `${at}.from.type`, message: `must be the same as to.type ("${channel}"): a step sends on one channel` })
      } else {
        const choice = chooseSender(senders, channel, from)
        if (!choice.ok) problems.push({ field: `${at}.from.${choice.field}`, message: choice.message })
      }
    }
    if (content !== undefined) contentProblems(content, channel, `${at}.message.content`, problems)
    const f = raw.failover
    const failover = isObject(f) ? { condition: f.condition_status, expirySeconds: f.expiry_time } : (f === undefined || f === null ? null : {})
    problems.push(...stepProblems({ channel, failover }, i, i === steps.length - 1))
  })
  return problems
}

/**
 * A step's `message.content`, in the Messages/Dispatch shape: `text` on every channel, `image`
 * ({url, caption}) on mms only, where the flat `url` and `text` are taken too (issue 12 words it
 * "type image with url"). A value given twice must agree, so no spelling silently wins.
 */
function contentProblems (content: Raw, channel: Channel | undefined, at: string, problems: Problem[]): void {
  const image = isObject(content.image) ? content.image : undefined
  const limit = channel === undefined ? undefined : dispatchLimit(channel)
  if (content.type !== 'image') {
    if (channel === 'mms' && content.type === 'text') {
      problems.push({ field: `${at}.type`, message: 'must be "image" on an mms step: an MMS carries an image (content.image.url, an https URL), with optional text (content.image.caption)' })
      return
    }
    if (content.type === 'text') {
      if (content.text === undefined) problems.push({ field: `${at}.text`, message: 'is required for text content' })
      for (const key of ['image', 'url'] as const) {
        if (content[key] !== undefined) problems.push({ field: `${at}.${key}`, message: 'is only for image content, which is sent as MMS: use to.type mms and content.type image' })
      }
    }
    text(content.text, channel, `${at}.text`, problems, limit)
    return
  }
  if (channel === undefined) return
  if (channel !== 'mms') {
    problems.push({ field: `${at}.type`, message: `image content is sent as MMS: use to.type mms (US and Canadian numbers only), or send ${channel} a text` })
    return
  }
  const imageUrl = image?.url
  const caption = image?.caption
  if (imageUrl === undefined && content.url === undefined) {
    problems.push({ field: `${at}.image.url`, message: 'is required on an mms step: the https URL of the image to send' })
  }
  for (const [field, url] of [[`${at}.image.url`, imageUrl], [`${at}.url`, content.url]] as const) {
    const problem = typeof url === 'string' ? mediaUrlProblem(url) : null
    if (problem !== null) problems.push({ field, message: problem })
  }
  if (typeof imageUrl === 'string' && typeof content.url === 'string' && imageUrl !== content.url) {
    problems.push({ field: `${at}.url`, message: 'differs from content.image.url: give the image\'s URL once, as content.image.url (or content.url)' })
  }
  text(caption, channel, `${at}.image.caption`, problems, limit)
  text(content.text, channel, `${at}.text`, problems, limit)
  if (typeof caption === 'string' && typeof content.text === 'string' && caption.trim() !== content.text.trim()) {
    problems.push({ field: `${at}.text`, message: 'differs from content.image.caption: give the text sent with the image once, as content.image.caption (or content.text)' })
  }
}

/** A valid mms step's image and its text (caption), from either spelling contentProblems accepts. */
function stepContent (content: Raw): { body: string, mediaUrl: string | null } {
  if (content.type !== 'image') return { body: (content.text as string).trim(), mediaUrl: null }
  const image: Raw = isObject(content.image) ? content.image : {}
  const caption = (image.caption ?? content.text) as string | undefined
  return { body: caption?.trim() ?? '', mediaUrl: (image.url ?? content.url) as string }
}

/** A valid dispatch request (dispatchProblems found nothing) as the failover engine's steps, each with its chosen sender. */
export function toSteps (body: Raw, senders: SenderDirectory): StepSpec[] {
  return (body.workflow as Raw[]).map((raw) => {
    const to = raw.to as Raw
    const channel = to.type as Channel
    const from = raw.from as Raw | undefined
    const f = raw.failover as Raw | undefined
    const content = (raw.message as Raw).content as Raw
    const sender = chooseSender(senders, channel, from)
    return {
      channel,
      to: recipient(channel, (channel === 'messenger' ? to.id : to.number) as string),
      from: sender.ok ? sender.sender : null,
      ...stepContent(content),
      failover: f === undefined || f === null ? null : { condition: f.condition_status as Condition, expirySeconds: f.expiry_time as number }
    }
  })
}

const article = (type: string): string => /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`

/** JSON-schema errors as field names in the request's own notation (workflow[0].failover.expiry_time). */
export function schemaProblems (errors: FastifySchemaValidationError[] | undefined, context = 'body'): Problem[] {
  if (errors === undefined) return []
  const problems: Problem[] = []
  for (const e of errors) {
    const name = fieldName(e.instancePath)
    // Header names are case-insensitive and arrive lower-cased; report them as documented.
    const base = context === 'headers' ? name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase()) : name
    const p = e.params as Record<string, unknown>
    const at = (name: string): string => base === '' ? name : `${base}.${name}`
    switch (e.keyword) {
      case 'required': {
        const missing = (p.requiredProperties ?? (p.missingProperty !== undefined ? [p.missingProperty] : [])) as string[]
        for (const name of missing) problems.push({ field: at(name), message: 'is required' })
        continue
      }
      case 'enum': {
        const allowed = (p.allowedValues ?? []) as unknown[]
        const what = base.endsWith('content.type') ? 'unknown content type (text on every channel, image on an mms step): ' : base.endsWith('.type') || base === 'channel' ? 'unknown channel: ' : ''
        problems.push({ field: base || context, message: `${what}must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}` })
        continue
      }
      case 'minimum': problems.push({ field: base, message: `must be at least ${String(p.limit)}` }); continue
      case 'maximum': problems.push({ field: base, message: `must be at most ${String(p.limit)}` }); continue
      case 'minLength': problems.push({ field: base, message: p.limit === 1 ? 'must not be empty' : `must be at least ${String(p.limit)} characters` }); continue
      case 'maxLength': problems.push({ field: base, message: `must be at most ${String(p.limit)} characters` }); continue
      case 'minItems': problems.push({ field: base, message: base === 'workflow' ? 'must have at least one step' : `must have at least ${String(p.limit)} items` }); continue
      case 'maxItems': problems.push({ field: base, message: `must have at most ${String(p.limit)} ${base === 'workflow' ? 'steps' : 'items'}` }); continue
      case 'type': problems.push({ field: base || context, message: `must be ${article(String(p.type))}` }); continue
      default: problems.push({ field: base || context, message: e.message ?? 'is not valid' })
    }
  }
  return problems
}

/** Keeps the first problem per field: the specific checks run first and explain best. */
export function mergeProblems (...lists: Problem[][]): Problem[] {
  const seen = new Set<string>()
  const out: Problem[] = []
  for (const p of lists.flat()) {
    if (seen.has(p.field)) continue
    seen.add(p.field)
    out.push(p)
  }
  return out
}

function fieldName (pointer: string): string {
  return pointer.split('/').slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, seg) => /^\d+$/.test(seg) ? `${acc}[${seg}]` : acc === '' ? seg : `${acc}.${seg}`, '')
}
