import { Type, type TSchema } from 'typebox'
import { MAX_EXPIRY_SECONDS, MAX_STEPS, MIN_EXPIRY_SECONDS } from '../messaging/failover.js'

// JSON schemas of the notifications API: they validate requests, shape responses, and are the
// OpenAPI description served at /api/openapi.json. Request shapes follow Nexmo's Messages and
// Dispatch APIs (seeds 000-004), so a Dispatch `failover` body works unchanged (Viber is refused).

const Nullable = <T extends TSchema>(s: T) => Type.Union([s, Type.Null()])
const Link = Type.Object({ href: Type.String() })
/** A dispatch step's channel, in the seeds' Dispatch shape. Viber is accepted here to be refused with its reason. */
const StepChannelEnum = Type.Enum(['sms', 'whatsapp', 'messenger', 'mms', 'viber_service_msg', 'viber_sevice_msg'], {
  description: 'The channel of the step. messenger needs MESSAGEBIRD_MESSENGER_CHANNEL_ID and whatsapp MESSAGEBIRD_WHATSAPP_CHANNEL_ID, or the request is refused with 422. mms (MessageBird\'s MMS API) reaches US and Canadian numbers only, and sends image content. viber_service_msg (and the Dispatch spec\'s spelling viber_sevice_msg) is always refused with 422: MessageBird offers no Viber channel.'
})
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
  type: StepChannelEnum,
  number: Type.Optional(Type.String({ maxLength: 32, description: 'sms, mms and whatsapp: phone number in international format, with or without +, e.g. 447700900001; mms: a US or Canadian number (+1).' })),
  id: Type.Optional(Type.String({ maxLength: 128, description: 'messenger: the customer\'s page-scoped id (PSID).' }))
})

const Step = Type.Object({
  from: Type.Optional(Type.Object({
    type: StepChannelEnum,
    number: Type.Optional(Type.String({ maxLength: 32, description: 'sms and mms: one of this account\'s senders (MESSAGEBIRD_ORIGINATORS), with or without +.' })),
    id: Type.Optional(Type.String({ maxLength: 128, description: 'whatsapp and messenger: the MessageBird channel id to send from; it must be the configured one.' }))
  }, { description: 'The sender of this step, which must be one this account owns (else 422 naming it). Without it the default sender is used: the first of MESSAGEBIRD_ORIGINATORS, or the channel\'s configured id. The sender is stored on the message, so a retry sends from it too.' })),
  to: Address,
  message: Type.Object({
    content: Type.Object({
      type: Type.Enum(['text', 'image'], { description: 'text on every channel; image on an mms step, which needs it (image content on any other step is refused with 422: it is sent as MMS).' }),
      text: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'text content: the message, required. The Dispatch limits per channel: at most 640 characters for messenger, 1000 for sms, 4096 for whatsapp (422 naming the step and the limit). image content (mms): the optional text sent with the image, the same as image.caption, at most 2000 characters (MessageBird\'s MMS body limit).' })),
      image: Type.Optional(Type.Object({
        url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'The https URL of the image, at most 2048 characters, required (here or as the flat url); MessageBird fetches it and attaches it (MMS API mediaUrls).' })),
        caption: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'Text sent with the image (the MMS body), at most 2000 characters.' }))
      }, { description: 'image content (mms steps only), in the Messages/Dispatch shape: {"type": "image", "image": {"url": "https://…", "caption": "…"}}.' })),
      url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'image content: the image URL written flat, the same as image.url (if both are given they must be equal).' }))
    }, { description: 'What the step sends. A text: {"type": "text", "text": "…"}. An image, on an mms step only: {"type": "image", "image": {"url": "https://…", "caption": "optional text"}}.' })
  }),
  failover: Type.Optional(Type.Object({
    condition_status: Type.Enum(['delivered', 'read'], { description: 'What counts as success. sms can only wait for delivered (SMS delivery reports stop there); whatsapp and messenger also for read.' }),
    expiry_time: Type.Integer({ minimum: MIN_EXPIRY_SECONDS, maximum: MAX_EXPIRY_SECONDS, description: 'Seconds to wait for the condition, counted from the provider accepting the message.' })
  }, { description: 'Required on every step but the last. On the last step it limits how long the dispatch waits before it fails.' }))
})

export const DispatchRequest = Type.Object({
  template: Type.Enum(['failover']),
  workflow: Type.Array(Step, { minItems: 1, maxItems: MAX_STEPS, description: 'Steps in order. The next step starts when the current one fails at once, or its condition is not met within expiry_time.' }),
  urgent: Type.Optional(Type.Boolean({ description: 'Send even during quiet hours (QUIET_HOURS, judged in the recipient\'s local time). Without it, a message due in quiet hours is held, still `queued`, until they end; a dispatch\'s later steps are held too unless the dispatch is urgent.' }))
})

export const MessageRequest = Type.Object({
  to: Type.String({ minLength: 1, maxLength: 32, description: 'Phone number in international format, e.g. 447700900001 or +447700900001; for messenger the customer\'s page-scoped id.' }),
  channel: Type.Optional(Type.Enum(['sms', 'whatsapp', 'messenger', 'mms'], { description: 'The channel. messenger needs MESSAGEBIRD_MESSENGER_CHANNEL_ID and addresses the customer by their page-scoped id; mms (US and Canadian numbers only) needs media_url.' })),
  text: Type.String({ minLength: 1, maxLength: 4096, description: 'At most 1600 characters for SMS, 2000 for MMS, 640 for Messenger, 4096 for WhatsApp.' }),
  media_url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'MMS only: the https URL of the image MessageBird attaches.' })),
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
  timestamp: Type.String({ description: 'When the dispatch ended (ISO 8601).' }),
  dispatch_uuid: Type.String(),
  template: Type.String(),
  status: Type.Enum(['completed', 'error'], { description: 'The Dispatch final report\'s words: completed (a step met its condition, or the last step was delivered) or error (the last step failed or expired; GET shows such a dispatch as failed).' }),
  ended_at: Nullable(Type.String()),
  usage: Nullable(Type.Object({ price: Type.String(), currency: Type.String() }, { description: 'The sum of the prices the provider reported for the dispatch\'s messages by the time it ended; null when none reported one, or they were in more than one currency.' })),
  _links: Type.Object({ self: Link, messages: Type.Array(LinkedMessage, { description: 'Every message the dispatch sent, in step order, with its channel and its status when the dispatch ended.' }) })
}, { description: 'Sent once when a dispatch ends, besides each message\'s own message.status callbacks.' })

export const ContactExportQuery = Type.Object({ number: Type.String({ minLength: 1, maxLength: 40, description: 'The customer\'s number in international format, e.g. +31612345678 or 31612345678' }) })
// The export's shape is documented by its `format` (textdesk.contact-export.v1); the response is passed through as built.
export const ContactExport = Type.Object({ format: Type.String(), exported_at: Type.String() }, { additionalProperties: true })
