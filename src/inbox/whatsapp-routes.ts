import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { UserError } from '../errors.js'
import { wantsHtml } from '../http/security.js'
import { MAX_TEMPLATE_PARAMS, templateIdOf, type TemplateForm, type TemplateService } from '../templates/template-service.js'
import type { WhatsAppComposer } from '../tickets/whatsapp-composer.js'

export interface WhatsAppRoutesDeps {
  templates: TemplateService
  composer: WhatsAppComposer
  /** The inbox's page renderer (layout, header, agent). */
  page: (reply: FastifyReply, name: string, data: Record<string, unknown>) => Promise<FastifyReply>
  /** The ticket page again, with a refusal's reason shown at the template form. */
  ticketPage: (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply, state: { templateError: string }) => Promise<FastifyReply>
  ticketIdOf: (raw: string) => number
}

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 200 } } } as const
const short = { type: 'string', maxLength: 2048 } as const
const templateBody = {
  type: 'object',
  properties: { namespace: short, name: short, language: short, params: { type: 'string', maxLength: 4000 }, _csrf: short }
} as const
// `params` arrives once per parameter field: a string for one, an array for several.
const sendBody = {
  type: 'object',
  properties: {
    template: { type: 'string', maxLength: 20 },
    to: { type: 'string', maxLength: 256 },
    params: { anyOf: [{ type: 'string', maxLength: 4000 }, { type: 'array', maxItems: 20, items: { type: 'string', maxLength: 4000 } }] },
    return_to: short,
    _csrf: short
  }
} as const

interface SendForm { template?: string, to?: string, params?: string | string[] }

/**
 * WhatsApp templates: the admin list (`/admin/templates`, next to the canned replies) and the
 * composer's template send. Plain forms with the session's CSRF token like the rest of the inbox;
 * a refused form re-renders with the reason and what was typed, a JSON client gets the error as JSON.
 */
export async function whatsappRoutes (app: FastifyInstance, deps: WhatsAppRoutesDeps): Promise<void> {
  const { templates, composer, page } = deps
  const adminOf = (req: FastifyRequest, what: string): { id: number } => {
    const agent = req.agent as { id: number, role: 'admin' | 'agent' } | undefined
    if (agent === undefined) throw new UserError(401, 'Sign in first.', 'UNAUTHORIZED')
    if (agent.role !== 'admin') throw new UserError(403, `Only an admin can ${what}. Ask an admin; nothing was changed.`, 'FORBIDDEN')
    return agent
  }
  const fixable = (err: unknown): err is UserError => err instanceof UserError && (err.statusCode === 422 || err.statusCode === 409)
  const listPage = async (reply: FastifyReply, state: TemplateForm & { error?: string } = {}) =>
    await page(reply, 'templates', { title: 'WhatsApp templates', templates: await templates.list(), state, maxParams: MAX_TEMPLATE_PARAMS })
  const editPage = async (reply: FastifyReply, id: number, state: TemplateForm & { error?: string } = {}) => {
    const t = await templates.get(id)
    return await page(reply, 'templates', {
      title: `Template ${t.name}`,
      editing: t,
      state: { namespace: t.namespace, name: t.name, language: t.language, params: t.params.join('\n'), ...state },
      maxParams: MAX_TEMPLATE_PARAMS
    })
  }

  app.get('/admin/templates', async (req, reply) => {
    adminOf(req, 'manage WhatsApp templates')
    return await listPage(reply)
  })

  app.post<{ Body: TemplateForm }>('/admin/templates', { schema: { body: templateBody } }, async (req, reply) => {
    const admin = adminOf(req, 'add a WhatsApp template')
    let id: number
    try {
      id = await templates.create(admin.id, req.body ?? {})
    } catch (err) {
      if (!fixable(err) || !wantsHtml(req)) throw err
      reply.code(err.statusCode)
      return await listPage(reply, { ...req.body, error: err.message })
    }
    req.log.info({ agentId: admin.id, templateId: id }, 'whatsapp template added')
    if (!wantsHtml(req)) return await reply.code(201).send(await templates.get(id))
    return await reply.redirect(`/admin/templates#template-${id}`, 303)
  })

  app.get<{ Params: { id: string } }>('/admin/templates/:id', { schema: { params: idParams } }, async (req, reply) => {
    adminOf(req, 'manage WhatsApp templates')
    return await editPage(reply, templateIdOf(req.params.id))
  })

  app.post<{ Params: { id: string }, Body: TemplateForm }>('/admin/templates/:id', { schema: { params: idParams, body: templateBody } }, async (req, reply) => {
    const admin = adminOf(req, 'change a WhatsApp template')
    const id = templateIdOf(req.params.id)
    try {
      await templates.update(id, req.body ?? {})
    } catch (err) {
      if (!fixable(err) || !wantsHtml(req)) throw err
      reply.code(err.statusCode)
      return await editPage(reply, id, { ...req.body, error: err.message })
    }
    req.log.info({ agentId: admin.id, templateId: id }, 'whatsapp template changed')
    if (!wantsHtml(req)) return await reply.send(await templates.get(id))
    return await reply.redirect(`/admin/templates#template-${id}`, 303)
  })

  app.post<{ Params: { id: string } }>('/admin/templates/:id/delete', { schema: { params: idParams } }, async (req, reply) => {
    const admin = adminOf(req, 'delete a WhatsApp template')
    const id = templateIdOf(req.params.id)
    await templates.remove(id)
    req.log.info({ agentId: admin.id, templateId: id }, 'whatsapp template deleted')
    if (!wantsHtml(req)) return await reply.code(204).send()
    return await reply.redirect('/admin/templates', 303)
  })

  app.post<{ Params: { id: string }, Body: SendForm }>('/tickets/:id/template', { schema: { params: idParams, body: sendBody } }, async (req, reply) => {
    const agent = req.agent
    if (agent === undefined) throw new UserError(401, 'Sign in first.', 'UNAUTHORIZED')
    const id = deps.ticketIdOf(req.params.id)
    const b = req.body ?? {}
    const params = b.params === undefined ? [] : Array.isArray(b.params) ? b.params : [b.params]
    let messageId: string
    try {
      ({ messageId } = await composer.sendTemplate(id, agent.id, { templateId: b.template ?? '', params, to: b.to }))
    } catch (err) {
      if (!fixable(err) || !wantsHtml(req)) throw err
      reply.code(err.statusCode)
      return await deps.ticketPage(req, reply, { templateError: err.message })
    }
    if (!wantsHtml(req)) return await reply.code(202).send({ message_id: messageId })
    return await reply.redirect(`/tickets/${id}#m-${messageId}`, 303)
  })
}
