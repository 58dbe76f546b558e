import type { FastifySchemaValidationError } from 'fastify'
import type { Channel } from '../db/schema.js'
import { stepProblems, type Condition, type Problem, type StepSpec } from '../messaging/failover.js'
import { InvalidPhoneNumber, toE164 } from '../tickets/phone.js'
import { MAX_REPLY_LENGTH } from '../tickets/ticket-service.js'

// Request checks the JSON schema cannot express (phone numbers, what a channel can report, which
// steps need a failover), written to run on any input so that one 422 can name every bad field,
// together with what the schema found.

export const CHANNELS: readonly Channel[] = ['sms', 'whatsapp']
/** Per-channel text limits: ours for SMS (about ten parts), each platform's own for the others. */
export const TEXT_LIMITS: Record<Channel, number> = { sms: MAX_REPLY_LENGTH, whatsapp: 4096, messenger: 640, mms: 2000 }

export interface MessageInput { to: string, channel: Channel, text: string, urgent: boolean }

type Supports = (channel: Channel) => boolean
type Raw = Record<string, unknown>

const isObject = (v: unknown): v is Raw => v !== null && typeof v === 'object' && !Array.isArray(v)
const asChannel = (v: unknown): Channel | undefined => CHANNELS.find((c) => c === v)

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

function text (value: unknown, channel: Channel | undefined, field: string, problems: Problem[]): void {
  if (typeof value !== 'string') return
  if (value.trim() === '') problems.push({ field, message: 'must not be empty' })
  else if (channel !== undefined && value.length > TEXT_LIMITS[channel]) problems.push({ field, message: `is ${value.length} characters long; ${channel} allows at most ${TEXT_LIMITS[channel]}` })
}

function available (channel: Channel | undefined, supports: Supports, field: string, problems: Problem[]): void {
  if (channel !== undefined && !supports(channel)) {
    problems.push({ field, message: `${channel} is not configured on this server${channel === 'whatsapp' ? ' (MESSAGEBIRD_WHATSAPP_CHANNEL_ID is not set)' : ''}` })
  }
}

export function messageProblems (body: unknown, supports: Supports): Problem[] {
  if (!isObject(body)) return []
  const problems: Problem[] = []
  const channel = body.channel === undefined ? 'sms' : asChannel(body.channel)
  phone(body.to, 'to', problems)
  text(body.text, channel, 'text', problems)
  available(channel, supports, 'channel', problems)
  return problems
}

export function toMessageInput (body: Raw): MessageInput {
  return { to: toE164(body.to as string), channel: asChannel(body.channel) ?? 'sms', text: (body.text as string).trim(), urgent: body.urgent === true }
}

export function dispatchProblems (body: unknown, supports: Supports): Problem[] {
  if (!isObject(body) || !Array.isArray(body.workflow)) return []
  const problems: Problem[] = []
  const steps = body.workflow
  steps.forEach((raw: unknown, i) => {
    if (!isObject(raw)) return
    const at = `workflow[${i}]`
    const to = isObject(raw.to) ? raw.to : undefined
    const channel = asChannel(to?.type)
    if (to !== undefined && channel !== undefined) {
      if (to.number === undefined) {
        problems.push({ field: `${at}.to.number`, message: `is required: ${channel} messages go to a phone number${to.id !== undefined ? ' (id is for channels such as Messenger, which are not supported)' : ''}` })
      } else {
        phone(to.number, `${at}.to.number`, problems)
      }
      available(channel, supports, `${at}.to.type`, problems)
    }
    if (isObject(raw.from) && channel !== undefined && raw.from.type !== undefined && raw.from.type !== channel) {
      problems.push({ field: `${at}.from.type`, message: `must be the same as to.type ("${channel}"): a step sends on one channel` })
    }
    const content = isObject(raw.message) && isObject(raw.message.content) ? raw.message.content : undefined
    text(content?.text, channel, `${at}.message.content.text`, problems)
    const f = raw.failover
    const failover = isObject(f) ? { condition: f.condition_status, expirySeconds: f.expiry_time } : (f === undefined || f === null ? null : {})
    problems.push(...stepProblems({ channel, failover }, i, i === steps.length - 1))
  })
  return problems
}

export function toSteps (body: Raw): StepSpec[] {
  return (body.workflow as Raw[]).map((raw) => {
    const to = raw.to as Raw
    const from = raw.from as Raw | undefined
    const f = raw.failover as Raw | undefined
    const content = (raw.message as Raw).content as Raw
    return {
      channel: to.type as Channel,
      to: toE164(to.number as string),
      from: from === undefined ? null : String(from.number ?? from.id ?? '') || null,
      body: (content.text as string).trim(),
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
        const what = base.endsWith('content.type') ? 'only text messages are supported: ' : base.endsWith('.type') || base === 'channel' ? 'unknown channel: ' : ''
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
