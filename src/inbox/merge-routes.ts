import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { UserError } from '../errors.js'
import { wantsHtml } from '../http/security.js'
import type { MergeService } from '../tickets/merge-service.js'
import { contactIdOf } from '../tickets/profile-service.js'
import { ticketIdOf } from './inbox-routes.js'

export interface MergeRoutesDeps {
  merges: MergeService
  /** Re-renders the ticket page with a refusal the agent can fix. */
  ticketPage: (req: FastifyRequest<any>, reply: FastifyReply, state: { mergeError?: string }) => Promise<FastifyReply>
}

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 200 } } } as const
const short = { type: 'string', maxLength: 200 } as const
const ticketMergeBody = { type: 'object', properties: { into: short, _csrf: { type: 'string', maxLength: 2048 } } } as const
const contactMergeBody = { type: 'object', properties: { other: short, _csrf: { type: 'string', maxLength: 2048 } } } as const

const fixable = (err: unknown): err is UserError => err instanceof UserError && (err.statusCode === 422 || err.statusCode === 409)

/**
 * Merging, for agents (the session and CSRF checks of every inbox form apply): a ticket into
 * another ticket of the same customer, from the ticket page; a customer into another one, from
 * the profile. Each answers with the place everything is now.
 */
export async function mergeRoutes (app: FastifyInstance, deps: MergeRoutesDeps): Promise<void> {
  const { merges, ticketPage } = deps
  const agentOf = (req: FastifyRequest): { id: number } => {
    if (req.agent === undefined) throw new UserError(401, 'Sign in first.', 'UNAUTHORIZED')
    return req.agent
  }

  app.post<{ Params: { id: string }, Body: { into?: string } }>('/tickets/:id/merge', { schema: { params: idParams, body: ticketMergeBody } }, async (req, reply) => {
    const agent = agentOf(req)
    const id = ticketIdOf(req.params.id)
    let merged
    try {
      merged = await merges.mergeTicket(id, req.body?.into, agent.id)
    } catch (err) {
      if (!fixable(err) || !wantsHtml(req)) throw err
      reply.code(err.statusCode)
      return await ticketPage(req, reply, { mergeError: err.message })
    }
    if (merged.changed) req.log.info({ agentId: agent.id, ticketId: id, into: merged.targetId }, 'ticket merged')
    if (!wantsHtml(req)) return await reply.send({ ticketId: id, mergedInto: merged.targetId, changed: merged.changed })
    return await reply.redirect(`/tickets/${merged.targetId}?merged=${id}`, 303)
  })

  app.post<{ Params: { id: string }, Body: { other?: string } }>('/contacts/:id/merge', { schema: { params: idParams, body: contactMergeBody } }, async (req, reply) => {
    const agent = agentOf(req)
    const id = contactIdOf(req.params.id)
    const merged = await merges.mergeContact(id, req.body?.other, agent.id)
    if (merged.changed) req.log.info({ agentId: agent.id, contactId: id, merged: req.body?.other }, 'customers merged')
    if (!wantsHtml(req)) return await reply.send({ contactId: id, changed: merged.changed })
    return await reply.redirect(`/contacts/${id}?merged=1`, 303)
  })

  // A refused form re-renders at its POST address; reloading it later lands on the page.
  app.get<{ Params: { id: string } }>('/tickets/:id/merge', { schema: { params: idParams } }, async (req, reply) =>
    await reply.redirect(`/tickets/${ticketIdOf(req.params.id)}`, 303))
  app.get<{ Params: { id: string } }>('/contacts/:id/merge', { schema: { params: idParams } }, async (req, reply) =>
    await reply.redirect(`/contacts/${contactIdOf(req.params.id)}`, 303))
}
