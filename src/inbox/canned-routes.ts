import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { safeReturnTo } from '../auth/auth-routes.js'
import { cannedIdOf, cannedSms, MAX_CANNED_BODY_LENGTH, MAX_CANNED_NAME_LENGTH, type CannedReplyService } from '../canned/canned-service.js'
import { VARIABLE_HELP, VARIABLES } from '../canned/variables.js'
import { UserError } from '../errors.js'
import { wantsHtml } from '../http/security.js'

export interface CannedRoutesDeps {
  canned: CannedReplyService
  /** The inbox's page renderer (layout, header, agent). */
  page: (reply: FastifyReply, name: string, data: Record<string, unknown>) => Promise<FastifyReply>
}

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 200 } } } as const
const short = { type: 'string', maxLength: 2048 } as const
const cannedBody = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 200 }, body: { type: 'string', maxLength: 20_000 }, return_to: short, _csrf: short }
} as const

interface CannedForm { name?: string, body?: string, return_to?: string }
type CannedReq = FastifyRequest<{ Params: { id: string }, Body: CannedForm }>

/** A refusal a person can fix: 422 or 409 from the service. */
const fixable = (err: unknown): err is UserError => err instanceof UserError && (err.statusCode === 422 || err.statusCode === 409)

/**
 * The canned replies' pages: a list with a form for a new one, an edit page per reply, and the
 * one-click GSM-7 fix. Plain forms with the session's CSRF token, like the rest of the inbox; a
 * refused form re-renders with the reason and the agent's text, a JSON client gets the error as
 * JSON (the inbox's error handler).
 */
export async function cannedRoutes (app: FastifyInstance, deps: CannedRoutesDeps): Promise<void> {
  const { canned, page } = deps
  const agentOf = (req: FastifyRequest): { id: number, name: string } => {
    if (req.agent === undefined) throw new UserError(401, 'Sign in first.', 'UNAUTHORIZED')
    return req.agent
  }
  const variables = VARIABLES.map((name) => ({ token: `{{${name}}}`, help: VARIABLE_HELP[name] }))
  const limits = { maxName: MAX_CANNED_NAME_LENGTH, maxBody: MAX_CANNED_BODY_LENGTH }

  const listPage = async (reply: FastifyReply, state: { error?: string, name?: string, body?: string } = {}) =>
    await page(reply, 'canned', { title: 'Canned replies', replies: await canned.list(), variables, state, ...limits })

  const editPage = async (reply: FastifyReply, id: number, state: { error?: string, name?: string, body?: string } = {}) => {
    const row = await canned.get(id)
    return await page(reply, 'canned-edit', {
      title: `Canned reply ${row.name}`,
      reply: row,
      sms: cannedSms(row.body),
      history: await canned.history(id),
      variables,
      state: { name: state.name ?? row.name, body: state.body ?? row.body, error: state.error },
      ...limits
    })
  }

  const json = async (reply: FastifyReply, id: number, code = 200) => {
    const row = await canned.get(id)
    return await reply.code(code).send({ id: row.id, name: row.name, body: row.body, sms: cannedSms(row.body), updated_at: row.updated_at })
  }

  app.get('/canned', async (req, reply) => {
    agentOf(req)
    return await listPage(reply)
  })

  app.post<{ Body: CannedForm }>('/canned', { schema: { body: cannedBody } }, async (req, reply) => {
    const agent = agentOf(req)
    let id: number
    try {
      id = await canned.create(agent.id, req.body ?? {})
    } catch (err) {
      if (!fixable(err) || !wantsHtml(req)) throw err
      reply.code(err.statusCode)
      return await listPage(reply, { error: err.message, name: req.body?.name, body: req.body?.body })
    }
    req.log.info({ agentId: agent.id, cannedReplyId: id }, 'canned reply created')
    if (!wantsHtml(req)) return await json(reply, id, 201)
    return await reply.redirect(`/canned#canned-${id}`, 303)
  })

  app.get<{ Params: { id: string } }>('/canned/:id', { schema: { params: idParams } }, async (req, reply) => {
    agentOf(req)
    return await editPage(reply, cannedIdOf(req.params.id))
  })

  app.post<{ Params: { id: string }, Body: CannedForm }>('/canned/:id', { schema: { params: idParams, body: cannedBody } }, async (req: CannedReq, reply) => {
    const agent = agentOf(req)
    const id = cannedIdOf(req.params.id)
    try {
      await canned.update(id, agent.id, req.body ?? {})
    } catch (err) {
      if (!fixable(err) || !wantsHtml(req)) throw err
      reply.code(err.statusCode)
      return await editPage(reply, id, { error: err.message, name: req.body?.name, body: req.body?.body })
    }
    req.log.info({ agentId: agent.id, cannedReplyId: id }, 'canned reply changed')
    if (!wantsHtml(req)) return await json(reply, id)
    return await reply.redirect(`/canned#canned-${id}`, 303)
  })

  // No body schema on these two: a fetch() may post with the token in a header and no body at all.
  app.post<{ Params: { id: string }, Body: CannedForm }>('/canned/:id/delete', { schema: { params: idParams } }, async (req: CannedReq, reply) => {
    const agent = agentOf(req)
    const id = cannedIdOf(req.params.id)
    await canned.remove(id, agent.id)
    req.log.info({ agentId: agent.id, cannedReplyId: id }, 'canned reply deleted')
    if (!wantsHtml(req)) return await reply.code(204).send()
    return await reply.redirect('/canned', 303)
  })

  // Curly quotes, long dashes, non-breaking spaces, … replaced by their GSM-7 twins (src/messaging/gsm-lookalikes.ts).
  app.post<{ Params: { id: string }, Body: CannedForm }>('/canned/:id/gsm-fix', { schema: { params: idParams } }, async (req: CannedReq, reply) => {
    const agent = agentOf(req)
    const id = cannedIdOf(req.params.id)
    const { changed } = await canned.fixGsm(id, agent.id)
    if (changed) req.log.info({ agentId: agent.id, cannedReplyId: id }, 'canned reply: look-alikes replaced')
    if (!wantsHtml(req)) return await json(reply, id)
    const returnTo = typeof req.body === 'object' && req.body !== null ? req.body.return_to : undefined
    return await reply.redirect(safeReturnTo(returnTo, `/canned#canned-${id}`), 303)
  })

  // A refused form re-renders at its POST address; a later GET of that address lands on the list.
  for (const path of ['delete', 'gsm-fix']) {
    app.get<{ Params: { id: string } }>(`/canned/:id/${path}`, { schema: { params: idParams } }, async (req, reply) => {
      cannedIdOf(req.params.id)
      return await reply.redirect('/canned', 303)
    })
  }
}
