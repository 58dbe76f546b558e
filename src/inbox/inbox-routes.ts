import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { errorBody, UserError } from '../errors.js'
import { renderFragment, renderPage } from './render.js'
import { MAX_REPLY_LENGTH, type TicketService } from '../tickets/ticket-service.js'
import type { ContactService } from '../tickets/contact-service.js'

export interface InboxDeps {
  tickets: TicketService
  contacts: ContactService
  config: Config
}

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'integer', minimum: 1 } }
} as const
const cursorQuery = {
  type: 'object',
  properties: { cursor: { type: 'string', maxLength: 64 }, closed: { type: 'integer' } }
} as const
const replyBody = {
  type: 'object',
  properties: { body: { type: 'string' }, failover: { type: 'string', maxLength: 8 } }
} as const
const addressBody = {
  type: 'object',
  properties: { channel: { type: 'string', maxLength: 16 }, address: { type: 'string', maxLength: 40 } }
} as const
const addressParams = {
  type: 'object',
  required: ['id', 'addressId'],
  properties: { id: { type: 'integer', minimum: 1 }, addressId: { type: 'integer', minimum: 1 } }
} as const

type IdReq = FastifyRequest<{ Params: { id: number } }>

/** Agent pages. Server-rendered; a small script refreshes the lists and conversation in place. */
export async function inboxRoutes (app: FastifyInstance, deps: InboxDeps): Promise<void> {
  const { tickets, contacts, config } = deps
  const page = async (reply: FastifyReply, name: string, data: Record<string, unknown>) =>
    await renderPage(reply, name, { refreshSeconds: config.inbox.refreshSeconds, ...data })

  app.setErrorHandler(async (err, req, reply) => {
    const { statusCode, body } = errorBody(err)
    if (statusCode >= 500) req.log.error({ err }, 'page failed')
    reply.code(statusCode)
    if (!(req.headers.accept ?? '').includes('text/html')) return await reply.send(body)
    return await page(reply, 'error', { title: 'Error', statusCode, message: body.message })
  })

  app.get('/', async (req, reply) => await reply.redirect('/inbox'))
  // The original guide's admin page lived at /admin.
  app.get('/admin', async (req, reply) => await reply.redirect('/inbox'))

  const listData = async (cursor: string | undefined) => {
    const result = await tickets.listView('open', 0, cursor ?? null)
    return { ...result, isFirstPage: cursor === undefined || cursor === '', cursor: cursor ?? '' }
  }

  app.get<{ Querystring: { cursor?: string, closed?: number } }>('/inbox', { schema: { querystring: cursorQuery } }, async (req, reply) => {
    const data = await listData(req.query.cursor)
    return await page(reply, 'inbox', { title: 'Inbox', ...data, closedRef: req.query.closed ?? null })
  })
  app.get<{ Querystring: { cursor?: string } }>('/inbox/list', { schema: { querystring: cursorQuery } }, async (req, reply) => {
    return await renderFragment(reply, 'partials/ticket-list', await listData(req.query.cursor))
  })

  const ticketPage = async (req: IdReq, reply: FastifyReply, form: { error?: string, draft?: string } = {}, addressForm: { error?: string, channel?: string, address?: string } = {}) => {
    const data = await tickets.getTicket(req.params.id)
    return await page(reply, 'ticket', {
      title: `Ticket ${data.ticket.ref}`,
      ...data,
      form,
      addressForm,
      maxReply: MAX_REPLY_LENGTH,
      isOpen: data.ticket.status !== 'closed',
      canFailover: data.addresses.length > 1,
      failoverExpiryMinutes: Math.round(config.failover.defaultExpirySeconds / 6) / 10
    })
  }

  app.get('/tickets/:id', { schema: { params: idParams } }, async (req: IdReq, reply) => {
    return await ticketPage(req, reply)
  })
  app.get('/tickets/:id/conversation', { schema: { params: idParams } }, async (req: IdReq, reply) => {
    const data = await tickets.getTicket(req.params.id)
    return await renderFragment(reply, 'partials/conversation', data)
  })

  app.post<{ Params: { id: number }, Body: { body?: string, failover?: string } }>('/tickets/:id/replies', { schema: { params: idParams, body: replyBody } }, async (req, reply) => {
    try {
      await tickets.reply(req.params.id, req.body?.body ?? '', req.agent?.id ?? null, { failover: (req.body?.failover ?? '') !== '' })
    } catch (err) {
      // A bad reply re-renders the form with the agent's text kept and the reason shown.
      if (err instanceof UserError && err.statusCode === 422) {
        reply.code(422)
        return await ticketPage(req, reply, { error: err.message, draft: req.body?.body ?? '' })
      }
      throw err
    }
    return await reply.redirect(`/tickets/${req.params.id}`, 303)
  })

  // A contact's extra addresses, used in order by "send with failover".
  app.post<{ Params: { id: number }, Body: { channel?: string, address?: string } }>('/tickets/:id/addresses', { schema: { params: idParams, body: addressBody } }, async (req, reply) => {
    try {
      await contacts.add(req.params.id, req.body?.channel ?? '', req.body?.address ?? '')
    } catch (err) {
      if (err instanceof UserError && (err.statusCode === 422 || err.statusCode === 409)) {
        reply.code(err.statusCode)
        return await ticketPage(req, reply, {}, { error: err.message, channel: req.body?.channel, address: req.body?.address })
      }
      throw err
    }
    return await reply.redirect(`/tickets/${req.params.id}#addresses`, 303)
  })
  app.post<{ Params: { id: number, addressId: number } }>('/tickets/:id/addresses/:addressId/delete', { schema: { params: addressParams } }, async (req, reply) => {
    await contacts.remove(req.params.id, req.params.addressId)
    return await reply.redirect(`/tickets/${req.params.id}#addresses`, 303)
  })

  app.post('/tickets/:id/close', { schema: { params: idParams } }, async (req: IdReq, reply) => {
    await tickets.close(req.params.id, req.agent?.id ?? null)
    return await reply.redirect(`/inbox?closed=${req.params.id}`, 303)
  })
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in agent, set by the auth hook. */
    agent?: { id: number, name: string, email: string, role: 'admin' | 'agent' }
    csrfToken?: string
  }
}
