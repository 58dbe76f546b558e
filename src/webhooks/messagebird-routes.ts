import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import type { StatusService } from '../messaging/status-service.js'
import type { TicketService } from '../tickets/ticket-service.js'
import { UserError } from '../errors.js'
import { parseJsonBody } from '../http/json-body.js'
import { parseConversationEvent, parseInboundMms, parseInboundSms, parseSmsReport } from './messagebird-payloads.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The exact bytes of the body, kept for signature verification. */
    rawBody?: Buffer
  }
}

export interface WebhookDeps {
  tickets: TicketService
  status: StatusService
  /** Runs before any webhook handler: signature verification when a signing key is configured. */
  verify?: preHandlerAsyncHookHandler
}

const okSchema = {
  200: {
    type: 'object',
    properties: {
      ok: { type: 'boolean' },
      ticket_id: { type: 'integer' },
      duplicate: { type: 'boolean' },
      matched: { type: 'boolean' },
      ignored: { type: 'string' }
    }
  }
}

/**
 * MessageBird webhooks. An own scope: it parses bodies itself (keeping the raw bytes for the
 * signature), and it acknowledges only after the service has committed what the webhook carried
 * together with its signature's jti (invariant 2).
 */
export async function messagebirdWebhooks (app: FastifyInstance, deps: WebhookDeps): Promise<void> {
  // Only the two body types MessageBird sends; anything else (text/plain included) is a 415.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser(['application/json', 'application/x-www-form-urlencoded'], { parseAs: 'buffer' }, (req, body, done) => {
    const raw = body as Buffer
    req.rawBody = raw
    const type = (req.headers['content-type'] ?? '').toLowerCase()
    if (type.startsWith('application/json')) {
      if (raw.length === 0) return done(null, {})
      try {
        done(null, parseJsonBody(raw.toString('utf8')))
      } catch (err) {
        done(err as Error, undefined)
      }
      return
    }
    done(null, Object.fromEntries(new URLSearchParams(raw.toString('utf8'))))
  })
  if (deps.verify !== undefined) app.addHook('preHandler', deps.verify)

  const inbound = async (req: FastifyRequest, reply: FastifyReply, fields: unknown): Promise<unknown> => {
    if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) {
      throw new UserError(400, 'Expected form fields, a JSON object or query parameters', 'INVALID_BODY')
    }
    const sms = parseInboundSms(fields as Record<string, unknown>)
    const result = await deps.tickets.receiveInbound(sms, { alsoInUnit: req.webhookJti?.inUnit })
    return await reply.code(200).send({ ok: true, ticket_id: result.ticketId, duplicate: result.duplicate })
  }

  // Flow Builder "Forward to URL": POST with a form or JSON body, or GET with query parameters.
  app.post('/webhooks/messagebird', { schema: { response: okSchema } }, async (req, reply) => await inbound(req, reply, req.body))
  app.get('/webhooks/messagebird', { schema: { response: okSchema } }, async (req, reply) => await inbound(req, reply, req.query))

  // MMS API forwarding of an inbound MMS (GET query, form or JSON POST). A form may repeat
  // `mediaUrls`: read from the raw bytes so that every value is kept, not only the last.
  const mms = async (req: FastifyRequest, reply: FastifyReply, fields: unknown): Promise<unknown> => {
    if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) {
      throw new UserError(400, 'Expected form fields, a JSON object or query parameters', 'INVALID_BODY')
    }
    const result = await deps.tickets.receiveInbound(parseInboundMms(fields as Record<string, unknown>), { alsoInUnit: req.webhookJti?.inUnit })
    return await reply.code(200).send({ ok: true, ticket_id: result.ticketId, duplicate: result.duplicate })
  }
  const withLists = (params: URLSearchParams): Record<string, unknown> =>
    Object.fromEntries([...new Set(params.keys())].map((k) => { const all = params.getAll(k); return [k, all.length > 1 ? all : all[0]] }))
  app.post('/webhooks/messagebird/mms', { schema: { response: okSchema } }, async (req, reply) => {
    const form = (req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')
    return await mms(req, reply, form ? withLists(new URLSearchParams((req.rawBody ?? Buffer.alloc(0)).toString('utf8'))) : req.body)
  })
  app.get('/webhooks/messagebird/mms', { schema: { response: okSchema } }, async (req, reply) =>
    await mms(req, reply, withLists(new URLSearchParams(req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : ''))))

  // SMS delivery reports arrive as GET; Conversations API status webhooks as JSON POST.
  app.get('/webhooks/messagebird/status', { schema: { response: okSchema } }, async (req, reply) => {
    const report = parseSmsReport(req.query as Record<string, unknown>)
    const result = await deps.status.applyReport(report, { alsoInUnit: req.webhookJti?.inUnit })
    if (!result.matched) {
      // Answer 200: a report for a message we do not know will not become known by retrying.
      req.log.warn({ providerMessageId: report.providerMessageId, reference: report.reference }, 'status report for unknown message')
    }
    return await reply.send({ ok: true, matched: result.matched })
  })

  const conversations = async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    const event = parseConversationEvent(req.body)
    if (event.kind === 'ignored') {
      // Nothing to store, but a 2xx still means the token is spent.
      await req.webhookJti?.alone()
      return await reply.send({ ok: true, ignored: event.reason })
    }
    if (event.kind === 'inbound') {
      const result = await deps.tickets.receiveInbound(event.sms, { alsoInUnit: req.webhookJti?.inUnit })
      return await reply.send({ ok: true, ticket_id: result.ticketId, duplicate: result.duplicate })
    }
    const result = await deps.status.applyReport(event.report, { alsoInUnit: req.webhookJti?.inUnit })
    if (!result.matched) req.log.warn({ providerMessageId: event.report.providerMessageId }, 'conversation status for unknown message')
    return await reply.send({ ok: true, matched: result.matched })
  }
  app.post('/webhooks/messagebird/status', { schema: { response: okSchema } }, conversations)
  app.post('/webhooks/messagebird/conversations', { schema: { response: okSchema } }, conversations)
}
