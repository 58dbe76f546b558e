import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { UserError } from '../errors.js'
import { wantsHtml } from '../http/security.js'
import { ERASE_WORD, type PrivacyService } from '../tickets/privacy-service.js'
import { contactIdOf } from '../tickets/profile-service.js'

export interface PrivacyRoutesDeps {
  privacy: PrivacyService
  /** The inbox's page renderer (layout, header, agent). */
  page: (reply: FastifyReply, name: string, data: Record<string, unknown>) => Promise<FastifyReply>
}

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 200 } } } as const
const eraseBody = {
  type: 'object',
  properties: { confirm: { type: 'string', maxLength: 200 }, _csrf: { type: 'string', maxLength: 2048 } }
} as const

interface SignedIn { id: number, name: string, role: 'admin' | 'agent' }

/**
 * Data and privacy on the agent pages: a customer's export (any agent, as a JSON download), the
 * erasure of a customer (admins only, confirmed twice: this page, then typing their number or
 * ERASE) and the audit log (admins only).
 */
export async function privacyRoutes (app: FastifyInstance, deps: PrivacyRoutesDeps): Promise<void> {
  const { privacy, page } = deps
  const agentOf = (req: FastifyRequest): SignedIn => {
    if (req.agent === undefined) throw new UserError(401, 'Sign in first.', 'UNAUTHORIZED')
    return req.agent
  }
  const adminOf = (req: FastifyRequest, what: string): SignedIn => {
    const agent = agentOf(req)
    if (agent.role !== 'admin') throw new UserError(403, `Only an admin can ${what}. Ask an admin; nothing was changed.`, 'FORBIDDEN')
    return agent
  }

  app.get<{ Params: { id: string } }>('/contacts/:id/export', { schema: { params: idParams } }, async (req, reply) => {
    const agent = agentOf(req)
    const id = contactIdOf(req.params.id)
    const data = await privacy.exportContact(id)
    req.log.info({ agentId: agent.id, contactId: id }, 'customer data exported')
    return await reply.type('application/json; charset=utf-8')
      .header('content-disposition', `attachment; filename="${privacy.exportFileName(id)}"`)
      .send(JSON.stringify(data, null, 2))
  })

  const erasePage = async (reply: FastifyReply, id: number, state: { error?: string, confirm?: string } = {}) => {
    const summary = await privacy.eraseSummary(id)
    return await page(reply, 'contact-erase', { title: `Erase customer ${id}`, pageClass: 'page-contact-erase', ...summary, eraseWord: ERASE_WORD, state })
  }

  app.get<{ Params: { id: string } }>('/contacts/:id/erase', { schema: { params: idParams } }, async (req, reply) => {
    adminOf(req, 'erase a customer')
    return await erasePage(reply, contactIdOf(req.params.id))
  })

  app.post<{ Params: { id: string }, Body: { confirm?: string } }>('/contacts/:id/erase', { schema: { params: idParams, body: eraseBody } }, async (req, reply) => {
    const agent = adminOf(req, 'erase a customer')
    const id = contactIdOf(req.params.id)
    const confirm = req.body?.confirm ?? ''
    let counts
    try {
      counts = await privacy.erase(id, agent.id, confirm)
    } catch (err) {
      if (!(err instanceof UserError) || (err.statusCode !== 422 && err.statusCode !== 409) || !wantsHtml(req)) throw err
      reply.code(err.statusCode)
      return await erasePage(reply, id, { error: err.message, confirm })
    }
    req.log.info({ agentId: agent.id, contactId: id, ...counts }, 'customer erased')
    if (!wantsHtml(req)) return await reply.send({ id, erased: true, ...counts })
    return await reply.redirect(`/contacts/${id}?erased=1`, 303)
  })

  app.get('/admin/audit', async (req, reply) => {
    adminOf(req, 'read the audit log')
    return await page(reply, 'audit', { title: 'Audit log', pageClass: 'page-audit', entries: await privacy.audit() })
  })
}
