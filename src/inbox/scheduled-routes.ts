import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { UserError } from '../errors.js'
import { PartsToConfirm } from '../tickets/ticket-service.js'
import type { ScheduledReplies } from '../tickets/scheduled-replies.js'
import { ticketIdOf } from './inbox-routes.js'

/** What the ticket page shows again after a refused form: the reason, the agent's text and time. */
export interface ScheduleState { error: string, replyDraft?: string, sendAtDraft?: string, scheduleParts?: boolean, mediaUrl?: string }

export interface ScheduledRoutesDeps {
  scheduled: ScheduledReplies
  /** Re-renders the ticket page of `req.params.id` with a refusal, at the refusal's status. */
  ticketPage: (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply, state: ScheduleState) => Promise<FastifyReply>
}

const short = { type: 'string', maxLength: 2048 } as const
const scheduleBody = {
  type: 'object',
  properties: { body: { type: 'string', maxLength: 20_000 }, send_at: { type: 'string', maxLength: 64 }, zone: { type: 'string', maxLength: 64 }, failover: short, confirm_parts: short, seen: short, return_to: short, _csrf: short }
} as const
const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 200 } } } as const
const messageParams = {
  type: 'object',
  required: ['id', 'messageId'],
  properties: { id: { type: 'string', maxLength: 200 }, messageId: { type: 'string', maxLength: 64 } }
} as const

interface ScheduleForm { body?: string, send_at?: string, zone?: string, failover?: string, confirm_parts?: string, media_url?: unknown }

/**
 * "Send later" from the composer (its second button posts the same form here), and a scheduled
 * reply's Edit and Cancel forms in its bubble. Plain forms, like the rest of the inbox.
 */
export async function scheduledRoutes (app: FastifyInstance, deps: ScheduledRoutesDeps): Promise<void> {
  const { scheduled, ticketPage } = deps
  const agentOf = (req: FastifyRequest): { id: number, name: string } => {
    if (req.agent === undefined) throw new UserError(401, 'Sign in first.', 'UNAUTHORIZED')
    return req.agent
  }
  /** A refusal a person can fix re-renders the ticket with the reason and what they typed. */
  const refused = async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply, err: unknown, state: Omit<ScheduleState, 'error'>) => {
    if (!(err instanceof UserError) || (err.statusCode !== 422 && err.statusCode !== 409)) throw err
    reply.code(err.statusCode)
    return await ticketPage(req, reply, { ...state, error: err.message, scheduleParts: err instanceof PartsToConfirm })
  }

  app.post<{ Params: { id: string }, Body: ScheduleForm }>('/tickets/:id/scheduled', { schema: { params: idParams, body: scheduleBody } }, async (req, reply) => {
    const agent = agentOf(req)
    const id = ticketIdOf(req.params.id)
    const b = req.body ?? {}
    try {
      if ((b.failover ?? '') !== '') throw new UserError(422, 'Send later sends to the customer\'s phone by SMS; failover is not offered for scheduled replies. Untick "Send with failover" to schedule it.', 'VALIDATION_FAILED')
      if (typeof b.media_url === 'string' && b.media_url.trim() !== '') throw new UserError(422, 'Send later sends text only; an image (MMS) goes out with "Send reply" now. Remove the image to schedule the text.', 'VALIDATION_FAILED')
      const done = await scheduled.schedule(id, agent.id, { body: b.body ?? '', sendAt: b.send_at ?? '', zone: b.zone ?? 'their', confirmParts: b.confirm_parts === '1' })
      return await reply.redirect(`/tickets/${id}#m-${done.messageId}`, 303)
    } catch (err) {
      return await refused(req, reply, err, { replyDraft: b.body ?? '', sendAtDraft: b.send_at ?? '', ...(typeof b.media_url === 'string' ? { mediaUrl: b.media_url } : {}) })
    }
  })

  app.post<{ Params: { id: string, messageId: string }, Body: ScheduleForm }>('/tickets/:id/messages/:messageId/edit', { schema: { params: messageParams, body: scheduleBody } }, async (req, reply) => {
    agentOf(req)
    const id = ticketIdOf(req.params.id)
    const b = req.body ?? {}
    try {
      await scheduled.edit(id, req.params.messageId, { body: b.body ?? '', sendAt: b.send_at ?? '', zone: b.zone ?? 'their', confirmParts: b.confirm_parts === '1' })
      return await reply.redirect(`/tickets/${id}#m-${req.params.messageId}`, 303)
    } catch (err) {
      return await refused(req, reply, err, {})
    }
  })

  app.post<{ Params: { id: string, messageId: string } }>('/tickets/:id/messages/:messageId/cancel', { schema: { params: messageParams } }, async (req, reply) => {
    const agent = agentOf(req)
    const id = ticketIdOf(req.params.id)
    try {
      await scheduled.cancel(id, req.params.messageId, agent)
      return await reply.redirect(`/tickets/${id}#m-${req.params.messageId}`, 303)
    } catch (err) {
      return await refused(req, reply, err, {})
    }
  })

  // A refused form re-renders at its POST address; reloading that address later lands on the ticket.
  for (const path of ['scheduled', 'messages/:messageId/edit', 'messages/:messageId/cancel']) {
    app.get<{ Params: { id: string } }>(`/tickets/:id/${path}`, async (req, reply) => await reply.redirect(`/tickets/${ticketIdOf(req.params.id)}`, 303))
  }
}
