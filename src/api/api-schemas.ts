import { Type, type TSchema } from 'typebox'
import { MAX_EXPIRY_SECONDS, MAX_STEPS, MIN_EXPIRY_SECONDS } from '../messaging/failover.js'

// JSON schemas of the notifications API: they validate requests, shape responses, and are the
// OpenAPI description served at /api/openapi.json. Request shapes follow Nexmo's Messages and
// Dispatch APIs (seeds 000-004), so a Dispatch `failover` body works unchanged for SMS and WhatsApp.

const Nullable = <T extends TSchema>(s: T) => Type.Union([s, Type.Null()])
const Link = Type.Object({ href: Type.String() })
const ChannelEnum = Type.Enum(['sms', 'whatsapp'], { description: 'The channel. Other Conversations API platforms (Messenger, Telegram, …) are not supported.' })
/** A stored message's channel: every channel the service knows, whether or not requests may name it. */
const StoredChannelEnum = Type.Enum(['sms', 'whatsapp', 'messenger', 'mms'], { description: 'The channel the message travelled on.' })
const MessageStatusEnum = Type.Enum(['received', 'queued', 'sending', 'unknown', 'sent', 'buffered', 'delivered', 'read', 'failed', 'expired', 'blocked'])
const DispatchStatusEnum = Type.Enum(['pending', 'completed', 'failed'])
const Usage = Nullable(Type.Object({ price: Type.String(), currency: Type.String() }, { description: 'The price the provider reported, when it did.' }))

export const ErrorBody = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String({ description: 'A stable code: UNAUTHORIZED, VALIDATION_FAILED, RECIPIENT_OPTED_OUT, IDEMPOTENCY_KEY_REUSED, NOT_FOUND, …' }),
  message: Type.String({ description: 'What went wrong, in words to show a person.' }),
  details: Type.Optional(Type.Array(Type.Object({
    field: Type.String({ description: 'The bad field, e.g. workflow[0].failover.expiry_time' }),
    message: Type.String()
  })))
})

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({
    minLength: 1,
    maxLength: 255,
    description: 'Makes a retry safe: the same key with the same body within 24 hours returns the first answer and sends nothing new; the same key with a different body is refused with 422.'
  }))
})

const Address = Type.Object({
  type: ChannelEnum,
  number: Type.Optional(Type.String({ maxLength: 32, description: 'Phone number in international format, with or without +, e.g. 447700900001.' })),
  id: Type.Optional(Type.String({ maxLength: 128, description: 'For id-addressed channels; not used by sms or whatsapp.' }))
})

const Step = Type.Object({
  from: Type.Optional(Type.Object({
    type: ChannelEnum,
    number: Type.Optional(Type.String({ maxLength: 32 })),
    id: Type.Optional(Type.String({ maxLength: 128 }))
  }, { description: 'Recorded with the step. Messages go out from the configured sender (MESSAGEBIRD_ORIGINATOR, or the WhatsApp channel).' })),
  to: Address,
  message: Type.Object({
    content: Type.Object({
      type: Type.Enum(['text']),
      text: Type.String({ minLength: 1, maxLength: 4096, description: 'At most 1600 characters for SMS, 4096 for WhatsApp.' })
    })
  }),
  failover: Type.Optional(Type.Object({
    condition_status: Type.Enum(['delivered', 'read'], { description: 'What counts as success. SMS can only report delivered; WhatsApp also read.' }),
    expiry_time: Type.Integer({ minimum: MIN_EXPIRY_SECONDS, maximum: MAX_EXPIRY_SECONDS, description: 'Seconds to wait for the condition, counted from the provider accepting the message.' })
  }, { description: 'Required on every step but the last. On the last step it limits how long the dispatch waits before it fails.' }))
})

export const DispatchRequest = Type.Object({
  template: Type.Enum(['failover']),
  workflow: Type.Array(Step, { minItems: 1, maxItems: MAX_STEPS, description: 'Steps in order. The next step starts when the current one fails at once, or its condition is not met within expiry_time.' }),
  urgent: Type.Optional(Type.Boolean({ description: 'Send even during quiet hours (QUIET_HOURS, judged in the recipient\'s local time). Without it, a message due in quiet hours is held, still `queued`, until they end; a dispatch\'s later steps are held too unless the dispatch is urgent.' }))
})

export const MessageRequest = Type.Object({
  to: Type.String({ minLength: 1, maxLength: 32, description: 'Phone number in international format, e.g. 447700900001 or +447700900001.' }),
  channel: Type.Optional(ChannelEnum),
  text: Type.String({ minLength: 1, maxLength: 4096, description: 'At most 1600 characters for SMS, 4096 for WhatsApp.' }),
  urgent: Type.Optional(Type.Boolean({ description: 'Send even during quiet hours (QUIET_HOURS, judged in the recipient\'s local time). Without it, a message due in quiet hours is held, still `queued`, until they end; a dispatch\'s later steps are held too unless the dispatch is urgent.' }))
})

export const UuidParams = Type.Object({ uuid: Type.String({ minLength: 1, maxLength: 64 }) })

export const MessageAccepted = Type.Object({
  message_uuid: Type.String(),
  status: MessageStatusEnum,
  ticket_id: Type.Integer({ description: 'The support ticket the message was added to; the customer\'s answer lands there.' }),
  _links: Type.Object({ self: Link })
})

export const DispatchAccepted = Type.Object({
  dispatch_uuid: Type.String(),
  status: DispatchStatusEnum,
  ticket_id: Type.Integer(),
  _links: Type.Object({ self: Link })
})

export const MessageState = Type.Object({
  message_uuid: Type.String(),
  status: MessageStatusEnum,
  status_at: Type.String({ description: 'When the message reached its current status (ISO 8601).' }),
  channel: StoredChannelEnum,
  to: Type.String(),
  text: Type.String(),
  reason: Nullable(Type.String({ description: 'Why it failed or is waiting, in plain words.' })),
  provider_reason: Nullable(Type.String({ description: 'The provider\'s own wording.' })),
  error_code: Nullable(Type.String()),
  usage: Usage,
  ticket_id: Type.Integer(),
  dispatch_uuid: Nullable(Type.String()),
  created_at: Type.String(),
  _links: Type.Object({ self: Link, dispatch: Type.Optional(Link) })
})

const LinkedMessage = Type.Object({
  message_uuid: Type.String(),
  href: Type.String(),
  channel: StoredChannelEnum,
  status: MessageStatusEnum,
  usage: Usage
})

export const DispatchState = Type.Object({
  dispatch_uuid: Type.String(),
  template: Type.String(),
  status: DispatchStatusEnum,
  current_step: Type.Integer({ description: 'Position (from 0) of the step being tried, or the last one tried.' }),
  ticket_id: Type.Integer(),
  created_at: Type.String(),
  updated_at: Type.String(),
  ended_at: Nullable(Type.String()),
  workflow: Type.Array(Type.Object({
    position: Type.Integer(),
    channel: StoredChannelEnum,
    to: Type.String(),
    condition_status: Nullable(Type.String()),
    expiry_time: Nullable(Type.Integer()),
    status: Type.Enum(['waiting', 'active', 'met', 'failed', 'expired'], { description: 'waiting: not started; active: sent, waiting for its condition; met: condition reached, dispatch completed; failed: failed at once; expired: condition not reached in time.' }),
    started_at: Nullable(Type.String()),
    deadline_at: Nullable(Type.String({ description: 'When the next step starts unless the condition is met; set once the provider accepts the message.' })),
    ended_at: Nullable(Type.String()),
    message_uuid: Nullable(Type.String()),
    message_status: Nullable(MessageStatusEnum),
    _links: Type.Optional(Type.Object({ message: Link }))
  })),
  _links: Type.Object({ self: Link, messages: Type.Array(LinkedMessage) })
})

/** The callbacks' bodies, documented under the OpenAPI 3.1 `webhooks` section. */
export const MessageCallback = Type.Intersect([Type.Object({ event: Type.Literal('message.status'), timestamp: Type.String() }), MessageState])
export const DispatchCallback = Type.Object({
  event: Type.Literal('dispatch.status'),
  timestamp: Type.String(),
  dispatch_uuid: Type.String(),
  template: Type.String(),
  status: DispatchStatusEnum,
  ended_at: Nullable(Type.String()),
  _links: Type.Object({ self: Link, messages: Type.Array(LinkedMessage) })
})

export const ContactExportQuery = Type.Object({ number: Type.String({ minLength: 1, maxLength: 40, description: 'The customer\'s number in international format, e.g. +31612345678 or 31612345678' }) })
// The export's shape is documented by its `format` (textdesk.contact-export.v1); the response is passed through as built.
export const ContactExport = Type.Object({ format: Type.String(), exported_at: Type.String() }, { additionalProperties: true })
