import { randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { UserError } from '../errors.js'
import { wantsHtml } from '../http/security.js'
import { MAX_PARTS_WITHOUT_CONFIRM } from '../messaging/sms-parts.js'
import { contactIdOf, MAX_CONTACT_NAME_LENGTH, MAX_CONTACT_NOTES_LENGTH, type ProfileService } from '../tickets/profile-service.js'
import { MAX_REPLY_LENGTH, PartsToConfirm, type TicketService } from '../tickets/ticket-service.js'
import type { MergeService } from '../tickets/merge-service.js'

export interface ContactRoutesDeps {
  profiles: ProfileService
  tickets: TicketService
  merges: MergeService
  /** The inbox's page renderer (layout, header, agent). */
  page: (reply: FastifyReply, name: string, data: Record<string, unknown>) => Promise<FastifyReply>
}

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 200 } } } as const
const short = { type: 'string', maxLength: 2048 } as const
const profileBody = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 2000 }, notes: { type: 'string', maxLength: 20_000 }, _csrf: short }
} as const
const conversationBody = {
  type: 'object',
  properties: { number: { type: 'string', maxLength: 200 }, contact: { type: 'string', maxLength: 20 }, body: { type: 'string', maxLength: 20_000 }, token: { type: 'string', maxLength: 200 }, confirm_parts: short, _csrf: short }
} as const
const newQuery = { type: 'object', properties: { contact: { type: 'string', maxLength: 20 }, number: { type: 'string', maxLength: 200 } } } as const

interface ProfileForm { name?: string, notes?: string }
interface ConversationForm { number?: string, contact?: string, body?: string, token?: string, confirm_parts?: string }

const fixable = (err: unknown): err is UserError => err instanceof UserError && (err.statusCode === 422 || err.statusCode === 409)

/** A fresh one-time token for a "New message" form. */
const newToken = (): string => randomBytes(18).toString('base64url')

/**
 * Customer profiles (`/contacts/:id`: name, notes, addresses, consent history, tickets) and
 * agent-started conversations (`/conversations/new`). Plain forms with the session's CSRF token;
 * a refusal re-renders the form with the reason and what was typed.
 */
export async function contactRoutes (app: FastifyInstance, deps: ContactRoutesDeps): Promise<void> {
  const { profiles, tickets, merges, page } = deps
  const agentOf = (req: FastifyRequest): { id: number, name: string } => {
    if (req.agent === undefined) throw new UserError(401, 'Sign in first.', 'UNAUTHORIZED')
    return req.agent
  }

  const profilePage = async (reply: FastifyReply, id: number, state: { error?: string, name?: string, notes?: string, saved?: boolean, merged?: boolean } = {}) => {
    const data = await profiles.profile(id)
    return await page(reply, 'contact', {
      title: data.contact.customer,
      pageClass: 'page-contact',
      ...data,
      merge: { ...await merges.contactMergeData(id), done: state.merged === true },
      maxName: MAX_CONTACT_NAME_LENGTH,
      maxNotes: MAX_CONTACT_NOTES_LENGTH,
      state: { error: state.error, name: state.name ?? data.contact.name ?? '', notes: state.notes ?? data.contact.notes ?? '', saved: state.saved === true }
    })
  }

  app.get<{ Params: { id: string }, Querystring: { saved?: string, merged?: string } }>('/contacts/:id', { schema: { params: idParams, querystring: { type: 'object', properties: { saved: { type: 'string', maxLength: 8 }, merged: { type: 'string', maxLength: 8 } } } } }, async (req, reply) => {
    agentOf(req)
    const id = contactIdOf(req.params.id)
    // A customer merged into another one: their profile is that one's now.
    const into = await merges.contactMergedInto(id)
    if (into !== undefined) return await reply.redirect(`/contacts/${into}`, 303)
    return await profilePage(reply, id, { saved: req.query.saved === '1', merged: req.query.merged === '1' })
  })

  app.post<{ Params: { id: string }, Body: ProfileForm }>('/contacts/:id', { schema: { params: idParams, body: profileBody } }, async (req, reply) => {
    const agent = agentOf(req)
    const id = contactIdOf(req.params.id)
    const input = { name: req.body?.name ?? '', notes: req.body?.notes ?? '' }
    let changed
    try {
      changed = await profiles.update(id, agent.id, input)
    } catch (err) {
      if (!fixable(err) || !wantsHtml(req)) throw err
      reply.code(err.statusCode)
      return await profilePage(reply, id, { error: err.message, ...input })
    }
    req.log.info({ agentId: agent.id, contactId: id, ...changed }, 'customer profile saved')
    if (!wantsHtml(req)) return await reply.send({ id, changed })
    return await reply.redirect(`/contacts/${id}?saved=1`, 303)
  })

  const newPage = async (reply: FastifyReply, state: { error?: string, number?: string, contact?: string, body?: string, confirmParts?: boolean } = {}) => {
    const contacts = await profiles.pickerContacts()
    const picked = state.contact ?? ''
    return await page(reply, 'conversation-new', {
      title: 'New message',
      pageClass: 'page-conversation-new',
      contacts: contacts.map((c) => ({ ...c, selected: String(c.id) === picked })),
      pickedContact: contacts.find((c) => String(c.id) === picked),
      token: newToken(),
      maxReply: MAX_REPLY_LENGTH,
      maxPartsWithoutConfirm: MAX_PARTS_WITHOUT_CONFIRM,
      state
    })
  }

  app.get<{ Querystring: { contact?: string, number?: string } }>('/conversations/new', { schema: { querystring: newQuery } }, async (req, reply) => {
    agentOf(req)
    const contact = req.query.contact
    if (contact !== undefined && contact !== '') await profiles.profile(contactIdOf(contact))
    return await newPage(reply, { contact, number: req.query.number })
  })

  app.post<{ Body: ConversationForm }>('/conversations', { schema: { body: conversationBody } }, async (req, reply) => {
    const agent = agentOf(req)
    const b = req.body ?? {}
    const contact = (b.contact ?? '').trim()
    let result
    try {
      let contactId: number | undefined
      if (contact !== '') {
        if (!/^[1-9]\d{0,8}$/.test(contact)) throw new UserError(422, `There is no customer ${contact.slice(0, 20)} to message; pick one from the list or type a number.`, 'VALIDATION_FAILED')
        contactId = Number(contact)
      }
      result = await tickets.startConversation(agent.id, { number: b.number, contactId, body: b.body ?? '', token: b.token ?? '', confirmParts: b.confirm_parts === '1' })
    } catch (err) {
      if (!fixable(err) || !wantsHtml(req)) throw err
      reply.code(err.statusCode)
      return await newPage(reply, { error: err.message, number: b.number, contact, body: b.body, confirmParts: err instanceof PartsToConfirm })
    }
    if (!result.duplicate) req.log.info({ agentId: agent.id, ticketId: result.ticketId, newTicket: result.newTicket }, 'conversation started')
    if (!wantsHtml(req)) return await reply.code(result.duplicate ? 200 : 201).send(result)
    return await reply.redirect(`/tickets/${result.ticketId}`, 303)
  })

  // A refused form re-renders at its POST address; reloading that address later lands on the form.
  app.get('/conversations', async (req, reply) => {
    agentOf(req)
    return await reply.redirect('/conversations/new', 303)
  })
}
