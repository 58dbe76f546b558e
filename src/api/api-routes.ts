import swagger from '@fastify/swagger'
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import type { Channel } from '../db/schema.js'
import { errorBody, invalid, UserError } from '../errors.js'
import type { Problem } from '../messaging/failover.js'
import type { SenderDirectory } from '../messaging/senders.js'
import type { ApiKeyIdentity, ApiKeyService } from './api-keys.js'
import * as S from './api-schemas.js'
import { dispatchProblems, mergeProblems, messageProblems, schemaProblems, toMessageInput, toSteps } from './api-validation.js'
import { requestHash, type ApiAnswer, type IdempotencyRequest, type NotificationService } from './notification-service.js'
import type { PrivacyService } from '../tickets/privacy-service.js'
import { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './status-callbacks.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The API key that authenticated this request (notifications API only). */
    apiKey?: ApiKeyIdentity
  }
}

export interface ApiDeps {
  apiKeys: ApiKeyService
  notifications: NotificationService
  privacy: PrivacyService
  config: Pick<Config, 'publicUrl'>
  supports: (channel: Channel) => boolean
  /** The senders a dispatch step's `from` may choose. */
  senders: SenderDirectory
}

const errors = { 401: S.ErrorBody, 404: S.ErrorBody, 409: S.ErrorBody, 422: S.ErrorBody }
const security = [{ apiKey: [] }]

const unauthorized = (message: string): UserError => new UserError(401, message, 'UNAUTHORIZED')

function invalidRequest (problems: Problem[]): UserError {
  const fields = problems.map((p) => p.field)
  return invalid(`${problems.length === 1 ? 'One field is' : `${problems.length} fields are`} not valid: ${fields.join(', ')}. See details.`, problems)
}

function idempotencyOf (req: FastifyRequest): IdempotencyRequest | null {
  const raw = req.headers['idempotency-key']
  if (raw === undefined) return null
  const key = Array.isArray(raw) ? raw[0] : raw
  if (key.length < 1 || key.length > 255 || !/^[\x21-\x7e]+$/.test(key)) {
    throw invalid('The Idempotency-Key header must be 1 to 255 visible ASCII characters, e.g. a UUID.', [{ field: 'Idempotency-Key', message: 'must be 1 to 255 visible ASCII characters' }])
  }
  return { key, requestHash: requestHash(req.method, req.routeOptions.url ?? req.url, req.body) }
}

async function answer (reply: FastifyReply, a: ApiAnswer): Promise<FastifyReply> {
  if (a.replayed) reply.header('idempotent-replayed', 'true')
  return await reply.code(a.statusCode).send(a.body)
}

/**
 * The notifications API (`/api/v1`) and its OpenAPI description (`/api/openapi.json`). JSON in and
 * out, API-key authentication, 422 naming every bad field, and 202 once the send is durably queued.
 */
export async function apiRoutes (parent: FastifyInstance, deps: ApiDeps): Promise<void> {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>()
  const { apiKeys, notifications, privacy, supports, senders } = deps

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Textdesk notifications API',
        version: '1.0.0',
        description: 'Send proactive messages to customers by SMS, MMS, WhatsApp or Messenger, alone or as a failover workflow (the shape of Nexmo\'s Dispatch `failover` template). Every message is added to the customer\'s support ticket so their answer reaches an agent. Each API key reads only the messages and dispatches it created itself: for another key\'s, the answer is 404. Status callbacks, when configured, are documented under `webhooks`.'
      },
      ...(deps.config.publicUrl !== null ? { servers: [{ url: deps.config.publicUrl }] } : {}),
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key created with `npm run api-key -- create --name <name>`.' } } },
      tags: [{ name: 'messages' }, { name: 'dispatch' }, { name: 'contacts' }],
      webhooks: {
        'message.status': callbackDoc('A notification message changed status.', S.MessageCallback),
        'dispatch.status': callbackDoc('A dispatch ended: completed or error, once per dispatch, with the summed usage and every message it sent.', S.DispatchCallback)
      }
    } as Record<string, unknown>
  })
  app.setValidatorCompiler(TypeBoxValidatorCompiler)
  app.setErrorHandler(async (err, req, reply) => {
    const v = err as { validation?: Parameters<typeof schemaProblems>[0], validationContext?: string }
    const { statusCode, body } = errorBody(v.validation !== undefined ? invalidRequest(schemaProblems(v.validation, v.validationContext)) : err)
    if (statusCode >= 500) req.log.error({ err }, 'api request failed')
    if (statusCode === 401) reply.header('www-authenticate', 'Bearer realm="textdesk"')
    return await reply.code(statusCode).send(body)
  })

  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger())

  await app.register(async (scope) => {
    const v1 = scope.withTypeProvider<TypeBoxTypeProvider>()
    v1.addHook('onRequest', async (req) => {
      const header = req.headers.authorization
      if (header === undefined || header === '') throw unauthorized('Missing API key: send it as "Authorization: Bearer <api key>".')
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header)
      if (m === null) throw unauthorized('The Authorization header must be "Bearer <api key>".')
      const key = await apiKeys.authenticate(m[1])
      if (key === null) throw unauthorized('The API key is not valid, or it has been revoked.')
      req.apiKey = key
    })
    const keyOf = (req: FastifyRequest): ApiKeyIdentity => {
      if (req.apiKey === undefined) throw unauthorized('Missing API key.')
      return req.apiKey
    }

    v1.post('/api/v1/messages', {
      attachValidation: true,
      schema: {
        tags: ['messages'],
        summary: 'Send a message',
        description: 'Queues one message to a customer. Answers 202 once it is stored and queued; follow its status with GET or the status callbacks. An opted-out customer (texted STOP) gets nothing: 409 RECIPIENT_OPTED_OUT, and nothing is stored.',
        security,
        headers: S.IdempotencyHeaders,
        body: S.MessageRequest,
        response: { 202: S.MessageAccepted, ...errors }
      }
    }, async (req, reply) => {
      const problems = mergeProblems(messageProblems(req.body, supports), schemaProblems(req.validationError?.validation, req.validationError?.validationContext))
      if (problems.length > 0) throw invalidRequest(problems)
      return await answer(reply, await notifications.sendMessage(keyOf(req).id, toMessageInput(req.body as Record<string, unknown>), idempotencyOf(req)))
    })

    v1.post('/api/v1/dispatch', {
      attachValidation: true,
      schema: {
        tags: ['dispatch'],
        summary: 'Start a failover workflow',
        description: 'Takes the Dispatch API\'s `failover` body as written (numbers with or without +, `from`/`to` objects with type and number or id). Sends the first step now. The next step starts when a step fails at once, or its condition_status is not reached within its expiry_time; when a step\'s condition is met the dispatch completes and no further step is sent. The dispatch fails when its last step fails. Its end is reported once by the dispatch.status callback. An mms step sends an image (`message.content` of type image, with an https URL) and optional text to a US or Canadian number. Refused with 422, naming the step: a channel that is not configured, Viber (not offered by MessageBird), a `from` this account does not own, a text over the channel\'s limit, `read` on sms or mms, image content on a step other than mms, an mms step without an https image URL or to a number outside the US and Canada.',
        security,
        headers: S.IdempotencyHeaders,
        body: S.DispatchRequest,
        response: { 202: S.DispatchAccepted, ...errors }
      }
    }, async (req, reply) => {
      const problems = mergeProblems(dispatchProblems(req.body, supports, senders), schemaProblems(req.validationError?.validation, req.validationError?.validationContext))
      if (problems.length > 0) throw invalidRequest(problems)
      return await answer(reply, await notifications.startDispatch(keyOf(req).id, toSteps(req.body as Record<string, unknown>, senders), idempotencyOf(req), (req.body as { urgent?: unknown }).urgent === true))
    })

    v1.get('/api/v1/messages/:uuid', {
      schema: {
        tags: ['messages'],
        summary: 'Current state of a message',
        description: 'Readable only with the API key that sent the message, or that started the dispatch it belongs to. With any other key the answer is 404, the same as for an id that does not exist.',
        security,
        params: S.UuidParams,
        response: { 200: S.MessageState, ...errors }
      }
    }, async (req) => await notifications.getMessage(keyOf(req).id, req.params.uuid))

    v1.get('/api/v1/dispatch/:uuid', {
      schema: {
        tags: ['dispatch'],
        summary: 'Current state of a dispatch, its steps and their messages',
        description: 'Readable only with the API key that started the dispatch. With any other key the answer is 404, the same as for an id that does not exist.',
        security,
        params: S.UuidParams,
        response: { 200: S.DispatchState, ...errors }
      }
    }, async (req) => await notifications.getDispatch(keyOf(req).id, req.params.uuid))

    v1.get('/api/v1/contacts/export', {
      schema: {
        tags: ['contacts'],
        summary: 'Export everything stored about one customer',
        description: 'For a data subject\'s request: the customer who has `number` (their own number or one of their extra addresses) with their profile, addresses, consent history (STOP/START), tickets, messages, agents\' notes and ticket events, as a JSON attachment. Scope: an API key exports only customers it has sent at least one message to (POST /api/v1/messages or /api/v1/dispatch); for any other number, and for one nobody has, the answer is the same 404. The number goes in the query string, which is never logged. An erased customer no longer has their number, so they cannot be found by it: their export is on their profile page.',
        security,
        querystring: S.ContactExportQuery,
        response: { 200: S.ContactExport, ...errors }
      }
    }, async (req, reply) => {
      const { contactId, data } = await privacy.exportForApiKey(keyOf(req).id, req.query.number)
      return await reply.header('content-disposition', `attachment; filename="${privacy.exportFileName(contactId)}"`).send(data)
    })
  })
}

function callbackDoc (summary: string, schema: unknown) {
  const header = (description: string) => ({ required: true, schema: { type: 'string' }, description })
  return {
    post: {
      summary,
      description: 'POSTed to STATUS_CALLBACK_URL. Verify the signature before trusting the body, reject stale timestamps, and drop repeated delivery ids: delivery is at least once, retried with exponential backoff until the receiver answers 2xx.',
      parameters: [
        { in: 'header', name: SIGNATURE_HEADER, ...header('sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" with STATUS_CALLBACK_SECRET>') },
        { in: 'header', name: TIMESTAMP_HEADER, ...header('Unix time in seconds of this attempt') },
        { in: 'header', name: DELIVERY_HEADER, ...header('Identifies the event; the same on every retry') },
        { in: 'header', name: EVENT_HEADER, ...header('message.status or dispatch.status') }
      ],
      requestBody: { content: { 'application/json': { schema } } },
      responses: { 200: { description: 'Any 2xx acknowledges the event; anything else is retried.' } }
    }
  }
}
