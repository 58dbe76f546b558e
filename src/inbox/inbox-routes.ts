import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { safeReturnTo } from '../auth/auth-routes.js'
import type { Config } from '../config.js'
import { errorBody, UserError } from '../errors.js'
import type { PresenceBoard } from '../events/presence.js'
import { MAX_PARTS_WITHOUT_CONFIRM } from '../messaging/sms-parts.js'
import { renderFragment, renderPage } from './render.js'
import { MAX_NOTE_LENGTH, MAX_REPLY_LENGTH, PartsToConfirm, ReplyCollision, type TicketService } from '../tickets/ticket-service.js'
import type { ContactService } from '../tickets/contact-service.js'
import { UNREAD_CAP, VIEWS, type View } from '../tickets/inbox-repository.js'
import type { CannedReplyService } from '../canned/canned-service.js'
import { cannedRoutes } from './canned-routes.js'
import { parseFilters, MAX_QUERY_LENGTH, RESULT_LIMIT, type SearchInput, type SearchService } from './search-service.js'
import { contactRoutes } from './contact-routes.js'
import { privacyRoutes } from './privacy-routes.js'
import type { ProfileService } from '../tickets/profile-service.js'
import type { MergeService } from '../tickets/merge-service.js'
import { mergeRoutes } from './merge-routes.js'
import type { ScheduledReplies } from '../tickets/scheduled-replies.js'
import { scheduledRoutes } from './scheduled-routes.js'
import type { PrivacyService } from '../tickets/privacy-service.js'
import type { TemplateService } from '../templates/template-service.js'
import type { WhatsAppComposer } from '../tickets/whatsapp-composer.js'
import { whatsappRoutes } from './whatsapp-routes.js'

export interface InboxDeps {
  tickets: TicketService
  contacts: ContactService
  search: SearchService
  profiles: ProfileService
  privacy: PrivacyService
  presence: PresenceBoard
  canned: CannedReplyService
  merges: MergeService
  config: Config
  /** Shows the simulator's link in the header. */
  simulatorOn: boolean
  /** "Send later" (scheduled-routes.ts). */
  scheduled?: ScheduledReplies
  /** The composer's channels, the WhatsApp window and templates (whatsapp-routes.ts). */
  whatsapp?: { templates: TemplateService, composer: WhatsAppComposer }
}

const VIEW_LABELS: Record<View, string> = { mine: 'Mine', unassigned: 'Unassigned', open: 'Open', pending: 'Pending', closed: 'Closed' }
const STATUS_WORDS: Record<string, string> = { open: 'Open', pending: 'Pending', closed: 'Closed' }

// Ids arrive as text so that `/tickets/abc` gets a sentence, not a schema validator's wording.
const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', maxLength: 200 } }
} as const
const listQuery = {
  type: 'object',
  properties: { view: { type: 'string', maxLength: 32 }, cursor: { type: 'string', maxLength: 64 }, q: { type: 'string', maxLength: 200 }, canned: { type: 'string', maxLength: 200 }, merged: { type: 'string', maxLength: 12 } }
} as const
// Search: `q` is checked in code (search-service.ts), so that a long query gets a sentence, not a
// validator's wording; the cap here only bounds what is read at all (Node refuses a request line
// over 16 KB before this anyway).
const filterField = { type: 'string', maxLength: 200 } as const
const searchQuery = {
  type: 'object',
  properties: {
    view: { type: 'string', maxLength: 32 },
    cursor: { type: 'string', maxLength: 64 },
    q: { type: 'string', maxLength: 100_000 },
    status: filterField,
    assignee: filterField,
    from: filterField,
    to: filterField
  }
} as const
type SearchQuerystring = SearchInput & { view?: string, cursor?: string }
const str = { type: 'string', maxLength: 20_000 } as const
const short = { type: 'string', maxLength: 2048 } as const
const replyBody = {
  type: 'object',
  // media_url is checked by the reply itself (an over-long one is a 422 on the page, not a 400).
  properties: { body: str, failover: short, seen: short, confirm_collision: short, confirm_parts: short, to: short, send_as_sms: short, media_url: str, return_to: short, _csrf: short }
} as const
const formBody = {
  type: 'object',
  properties: { body: str, assignee: short, status: short, undo: short, available: short, return_to: short, _csrf: short }
} as const
const addressBody = {
  type: 'object',
  properties: { channel: { type: 'string', maxLength: 16 }, address: { type: 'string', maxLength: 40 }, return_to: short, _csrf: short }
} as const
const messageParams = {
  type: 'object',
  required: ['id', 'messageId'],
  properties: { id: { type: 'string', maxLength: 200 }, messageId: { type: 'string', maxLength: 64 } }
} as const
const retryBody = {
  type: 'object',
  properties: { to: { type: 'string', maxLength: 64 }, return_to: short, _csrf: short }
} as const
const addressParams = {
  type: 'object',
  required: ['id', 'addressId'],
  properties: { id: { type: 'string', maxLength: 200 }, addressId: { type: 'integer', minimum: 1 } }
} as const

interface Form { body?: string, assignee?: string, status?: string, undo?: string, available?: string, return_to?: string, failover?: string, seen?: string, confirm_collision?: string, confirm_parts?: string, to?: string, send_as_sms?: string, media_url?: string }
type TicketReq = FastifyRequest<{ Params: { id: string }, Querystring: { view?: string, canned?: string, merged?: string }, Body: Form }>

/** What the ticket page shows besides the ticket: an error with the agent's text kept, and what to confirm. */
interface PageState {
  error?: string
  replyDraft?: string
  noteDraft?: string
  noteError?: string
  collision?: boolean
  confirmParts?: boolean
  addressError?: string
  channel?: string
  address?: string
  mergeError?: string
  /** Send later: the time the agent chose, and whether a long reply needs confirming. */
  sendAtDraft?: string
  scheduleParts?: boolean
  /** The composer's template form: why a template was not sent. */
  templateError?: string
  /** The address the agent had chosen in "Send to", kept when a reply is refused. */
  to?: string
  /** The image URL the agent attached, kept when a reply is refused. */
  mediaUrl?: string
}

/** The search box and its filters as the agent left them. */
function searchFormData (input: SearchInput, agents: Array<{ id: number, name: string }>, view: View) {
  const status = input.status ?? ''
  const assignee = input.assignee ?? ''
  const q = input.q ?? ''
  return {
    q: q.length > MAX_QUERY_LENGTH ? q.slice(0, MAX_QUERY_LENGTH) : q,
    view,
    from: (input.from ?? '').slice(0, 10),
    to: (input.to ?? '').slice(0, 10),
    statuses: [['', 'Any status'], ['open', 'Open'], ['pending', 'Pending'], ['closed', 'Closed']].map(([value, label]) => ({ value, label, selected: value === status })),
    assignees: [
      { value: '', label: 'Anyone', selected: assignee === '' },
      { value: 'me', label: 'Me', selected: assignee === 'me' },
      { value: 'none', label: 'Unassigned', selected: assignee === 'none' },
      ...agents.map((a) => ({ value: String(a.id), label: a.name, selected: assignee === String(a.id) }))
    ],
    filtered: status !== '' || assignee !== '' || (input.from ?? '') !== '' || (input.to ?? '') !== ''
  }
}

/** The composer with the agent's own choice of address kept (a refused reply shows what they picked). */
function withChoice<T extends { options: Array<{ value: string, selected: boolean }>, selected: unknown }> (composer: T, to: string | undefined): T {
  const picked = composer.options.find((o) => o.value === to)
  if (picked === undefined) return composer
  return { ...composer, options: composer.options.map((o) => ({ ...o, selected: o === picked })), selected: picked, closed: (picked as { windowOpen?: boolean | null }).windowOpen === false }
}

/** `/tickets/42` → 42; anything else is a ticket that does not exist, said in words. */
export function ticketIdOf (raw: string): number {
  if (!/^[1-9]\d{0,8}$/.test(raw)) throw new UserError(404, `There is no ticket ${raw.slice(0, 40)}. Ticket numbers are whole numbers, like 42.`, 'NOT_FOUND')
  return Number(raw)
}

function viewOf (raw: string | undefined, fallback: View): View {
  if (raw === undefined || raw === '') return fallback
  if ((VIEWS as readonly string[]).includes(raw)) return raw as View
  throw new UserError(404, `There is no inbox view "${raw.slice(0, 40)}"; the views are ${VIEWS.join(', ')}.`, 'NOT_FOUND')
}

/**
 * Agent pages: the team inbox. Server-rendered, with a form for every action; the browser script
 * only enhances them (live updates, keyboard, counters).
 */
export async function inboxRoutes (app: FastifyInstance, deps: InboxDeps): Promise<void> {
  const { tickets, contacts, search, profiles, presence, canned, merges, config } = deps
  const page = async (reply: FastifyReply, name: string, data: Record<string, unknown>) =>
    await renderPage(reply, name, { simulatorOn: deps.simulatorOn, ...data })

  app.setErrorHandler(async (err, req, reply) => {
    const { statusCode, body } = errorBody(err)
    if (statusCode >= 500) req.log.error({ err }, 'page failed')
    reply.code(statusCode)
    if (!(req.headers.accept ?? '').includes('text/html')) return await reply.send(body)
    return await page(reply, 'error', { title: statusCode === 404 ? 'Not found' : 'Error', statusCode, message: body.message })
  })

  app.get('/', async (req, reply) => await reply.redirect('/inbox'))
  // The original guide's admin page lived at /admin.
  app.get('/admin', async (req, reply) => await reply.redirect('/inbox'))

  const agentOf = (req: FastifyRequest): { id: number, name: string } => {
    if (req.agent === undefined) throw new UserError(401, 'Sign in first.', 'UNAUTHORIZED')
    return req.agent
  }

  /** The list pane and the view tabs, shared by /inbox, /tickets/:id and the list fragment. */
  const listData = async (agentId: number, view: View, cursor: string | undefined, searchInput: SearchInput = {}) => {
    const [list, counts, agents] = await Promise.all([tickets.listView(view, agentId, cursor ?? null), tickets.counts(agentId), tickets.activeAgents()])
    return {
      list: {
        ...list,
        isFirstPage: cursor === undefined || cursor === '',
        returnTo: `/inbox?view=${view}${cursor !== undefined && cursor !== '' ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        tickets: list.tickets.map((t) => ({ ...t, statusWord: STATUS_WORDS[t.status] ?? t.status, mine: t.assignee_id === agentId }))
      },
      counts,
      unread: counts.unread >= UNREAD_CAP ? `${UNREAD_CAP - 1}+` : counts.unread,
      viewTabs: VIEWS.map((name) => ({ name, label: VIEW_LABELS[name], count: counts[name], current: name === view && (searchInput.q ?? '').trim() === '' })),
      currentView: view,
      viewLabel: VIEW_LABELS[view],
      available: agents.find((a) => a.id === agentId)?.available === 1,
      searchForm: searchFormData(searchInput, agents, view)
    }
  }

  /** Search results for the list pane: the results, or the sentence that says what was wrong with the query (400). */
  const searchData = async (reply: FastifyReply, agentId: number, input: SearchInput) => {
    const q = (input.q ?? '').trim()
    const shown = q.length > MAX_QUERY_LENGTH ? `${q.slice(0, 40)}…` : q
    try {
      const results = await search.search(search.parse(q), parseFilters(input, agentId))
      const any = results.tickets.length + results.hits.length > 0
      return {
        search: {
          q: shown,
          any,
          limit: RESULT_LIMIT,
          tickets: results.tickets.map((t) => ({ ...t, statusWord: STATUS_WORDS[t.status] ?? t.status })),
          hits: results.hits.map((h) => ({ ...h, statusWord: STATUS_WORDS[h.status] ?? h.status })),
          more: results.more
        }
      }
    } catch (err) {
      if (!(err instanceof UserError) || err.statusCode !== 400) throw err
      reply.code(400)
      return { search: { q: shown, error: err.message } }
    }
  }

  app.get<{ Querystring: SearchQuerystring }>('/inbox', { schema: { querystring: searchQuery } }, async (req, reply) => {
    const agent = agentOf(req)
    // An empty search is the normal inbox.
    const searching = (req.query.q ?? '').trim() !== ''
    if (!searching && (req.query.view === undefined || req.query.view === '')) return await reply.redirect(`/inbox?view=${await tickets.defaultView(agent.id)}`, 303)
    const view = viewOf(req.query.view, 'open')
    const data = await listData(agent.id, view, req.query.cursor, req.query)
    if (!searching) return await page(reply, 'inbox', { title: data.viewLabel, pageClass: 'page-inbox', dataView: view, ...data })
    const found = await searchData(reply, agent.id, req.query)
    return await page(reply, 'inbox', { title: `Search: ${found.search.q}`, pageClass: 'page-inbox', dataView: view, ...data, ...found })
  })
  app.get<{ Querystring: SearchQuerystring }>('/inbox/list', { schema: { querystring: searchQuery } }, async (req, reply) => {
    const agent = agentOf(req)
    const view = viewOf(req.query.view, 'open')
    if ((req.query.q ?? '').trim() === '') return await renderFragment(reply, 'partials/ticket-list', await listData(agent.id, view, req.query.cursor))
    // The page's script refetches the list on every change: on a search page, the search again.
    return await renderFragment(reply, 'partials/search-results', { list: { view }, ...await searchData(reply, agent.id, req.query) })
  })
  app.get('/inbox/counts', async (req, reply) => {
    const agent = agentOf(req)
    return await reply.header('cache-control', 'no-store').send(await tickets.counts(agent.id))
  })

  /** What the ticket's header (status, assignee, its forms) shows: the page's and the fragment's. */
  const ticketHeadData = async (req: TicketReq, id: number, view: View) => {
    const agent = agentOf(req)
    const data = await tickets.getTicket(id)
    return {
      ...data,
      currentView: view,
      statusWord: STATUS_WORDS[data.ticket.status],
      agents: (await tickets.activeAgents()).map((a) => ({ ...a, selected: a.id === data.ticket.assignee_id, isMe: a.id === agent.id })),
      returnTo: `/tickets/${id}?view=${view}`,
      isMine: data.ticket.assignee_id === agent.id
    }
  }

  const ticketPage = async (req: TicketReq, reply: FastifyReply, state: PageState = {}) => {
    const agent = agentOf(req)
    const id = ticketIdOf(req.params.id)
    const view = viewOf(req.query?.view, 'open')
    const data = await ticketHeadData(req, id, view)
    const lists = await listData(agent.id, view, undefined)
    // Canned replies filled in for this ticket and agent: the composer inserts them as they are.
    const cannedReplies = await canned.filledFor({ 'customer.name': data.ticket.customer, 'ticket.ref': data.ticket.ref, 'agent.name': agent.name })
    // Without the script, "Insert" asks for the page again with ?canned=name: the composer holds it.
    const picked = req.query?.canned
    if (picked !== undefined && picked !== '' && state.replyDraft === undefined) {
      const found = cannedReplies.find((c) => c.name === picked)
      if (found === undefined) {
        reply.code(404)
        state = { ...state, error: `There is no canned reply "${picked.slice(0, 40)}"; “Canned reply” above the reply lists the ones that exist.` }
      } else {
        state = { ...state, replyDraft: found.text }
      }
    }
    return await page(reply, 'ticket', {
      title: `Ticket ${data.ticket.ref}`,
      pageClass: 'page-ticket',
      dataView: view,
      ticketId: id,
      ...lists,
      ...data,
      viewers: presence.viewers(id).filter((v) => v.agentId !== agent.id),
      state,
      maxReply: MAX_REPLY_LENGTH,
      reopenWindowHours: config.teamInbox.reopenWindowHours,
      maxNote: MAX_NOTE_LENGTH,
      maxPartsWithoutConfirm: MAX_PARTS_WITHOUT_CONFIRM,
      isOpen: data.ticket.status !== 'closed',
      canFailover: data.addresses.length > 1,
      cannedReplies,
      pickedCanned: picked,
      mergeTargets: await merges.targetsFor(id),
      // Arrived by the redirect from a ticket merged into this one.
      mergedFrom: /^[1-9]\d{0,8}$/.test(req.query?.merged ?? '') ? req.query.merged : undefined,
      failoverExpiryMinutes: Math.round(config.failover.defaultExpirySeconds / 6) / 10,
      composer: deps.whatsapp === undefined ? null : withChoice(await deps.whatsapp.composer.view(id), state.to),
      isAdmin: (req.agent as { role?: string } | undefined)?.role === 'admin'
    })
  }

  app.get<{ Params: { id: string }, Querystring: { view?: string, canned?: string, merged?: string }, Body: Form }>('/tickets/:id', { schema: { params: idParams, querystring: listQuery } }, async (req, reply) => {
    const agent = agentOf(req)
    const id = ticketIdOf(req.params.id)
    const into = await merges.ticketMergedInto(id)
    if (into !== undefined) return await reply.redirect(`/tickets/${into}?merged=${id}`, 303)
    await tickets.getTicket(id)
    await tickets.markRead(id, agent.id)
    return await ticketPage(req, reply)
  })
  const timelineFragment = async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    agentOf(req)
    const data = await tickets.getTicket(ticketIdOf(req.params.id))
    return await renderFragment(reply, 'partials/timeline', data)
  }
  app.get<{ Params: { id: string } }>('/tickets/:id/timeline', { schema: { params: idParams } }, timelineFragment)
  // The header's status, assignee and forms, refetched by the page's script with the timeline: a
  // customer's answer or a colleague's change must not leave stale buttons ("Mark open" on an open ticket).
  app.get<{ Params: { id: string }, Querystring: { view?: string }, Body: Form }>('/tickets/:id/head', { schema: { params: idParams, querystring: listQuery } }, async (req, reply) => {
    const id = ticketIdOf(req.params.id)
    return await renderFragment(reply, 'partials/ticket-head', await ticketHeadData(req, id, viewOf(req.query.view, 'open')))
  })
  // The refresh target of the page's script before the timeline existed.
  app.get<{ Params: { id: string } }>('/tickets/:id/conversation', { schema: { params: idParams } }, timelineFragment)

  /** After a POST: back where the form said (a local path, `#fragment` kept), else to the ticket. */
  const done = async (req: TicketReq, reply: FastifyReply, fallback: string) =>
    await reply.redirect(safeReturnTo(req.body?.return_to, fallback), 303)
  const ticketUrl = (req: TicketReq) => `/tickets/${ticketIdOf(req.params.id)}`

  /** Runs a form action; a refusal a person can fix re-renders the ticket page with the reason and their text. */
  const action = async (req: TicketReq, reply: FastifyReply, run: () => Promise<unknown>, onError: (err: UserError) => PageState) => {
    try {
      await run()
    } catch (err) {
      if (err instanceof UserError && (err.statusCode === 422 || err.statusCode === 409)) {
        reply.code(err.statusCode)
        return await ticketPage(req, reply, onError(err))
      }
      throw err
    }
    return await done(req, reply, ticketUrl(req))
  }

  const post = { schema: { params: idParams, body: formBody, querystring: listQuery } }
  app.post<{ Params: { id: string }, Querystring: { view?: string }, Body: Form }>('/tickets/:id/replies', { schema: { params: idParams, body: replyBody, querystring: listQuery } }, async (req, reply) => {
    const agent = agentOf(req)
    const b = req.body ?? {}
    return await action(req, reply, async () => await tickets.reply(ticketIdOf(req.params.id), b.body ?? '', agent.id, {
      failover: (b.failover ?? '') !== '',
      seen: b.seen,
      confirmCollision: b.confirm_collision === '1',
      confirmParts: b.confirm_parts === '1',
      to: b.to,
      asSms: b.send_as_sms === '1',
      mediaUrl: b.media_url
    }), (err) => ({ error: err.message, replyDraft: b.body ?? '', collision: err instanceof ReplyCollision, confirmParts: err instanceof PartsToConfirm, to: b.to, mediaUrl: b.media_url }))
  })
  app.post<{ Params: { id: string }, Querystring: { view?: string }, Body: Form }>('/tickets/:id/notes', post, async (req, reply) => {
    const agent = agentOf(req)
    return await action(req, reply, async () => await tickets.addNote(ticketIdOf(req.params.id), agent.id, req.body?.body ?? ''),
      (err) => ({ noteError: err.message, noteDraft: req.body?.body ?? '' }))
  })
  app.post<{ Params: { id: string }, Querystring: { view?: string }, Body: Form }>('/tickets/:id/assign', post, async (req, reply) => {
    const agent = agentOf(req)
    return await action(req, reply, async () => await tickets.assign(ticketIdOf(req.params.id), req.body?.assignee ?? '', agent.id), (err) => ({ error: err.message }))
  })
  app.post<{ Params: { id: string }, Querystring: { view?: string }, Body: Form }>('/tickets/:id/status', post, async (req, reply) => {
    const agent = agentOf(req)
    return await action(req, reply, async () => await tickets.setStatus(ticketIdOf(req.params.id), req.body?.status ?? '', agent.id, { undo: req.body?.undo === '1' }), (err) => ({ error: err.message }))
  })
  app.post<{ Params: { id: string }, Querystring: { view?: string }, Body: Form }>('/tickets/:id/unread', post, async (req, reply) => {
    const agent = agentOf(req)
    await tickets.markUnread(ticketIdOf(req.params.id), agent.id)
    // Back to the list: reopening the ticket page would mark it read again.
    return await done(req, reply, '/inbox')
  })
  app.post<{ Params: { id: string }, Querystring: { view?: string }, Body: Form }>('/tickets/:id/close', post, async (req, reply) => {
    const agent = agentOf(req)
    await tickets.setStatus(ticketIdOf(req.params.id), 'closed', agent.id)
    return await done(req, reply, ticketUrl(req))
  })
  app.post<{ Body: Form }>('/agents/me/availability', { schema: { body: formBody } }, async (req, reply) => {
    const agent = agentOf(req)
    await tickets.setAvailability(agent.id, req.body?.available ?? '')
    return await reply.redirect(safeReturnTo(req.body?.return_to, '/inbox'), 303)
  })

  // Retry a failed message from its bubble: a new message linked to it. The answer is the ticket at
  // the retry's bubble, whether this request queued it or an earlier one did (a double click).
  app.post<{ Params: { id: string, messageId: string }, Querystring: { view?: string }, Body: Form & { to?: string } }>('/tickets/:id/messages/:messageId/retry', { schema: { params: messageParams, body: retryBody, querystring: listQuery } }, async (req, reply) => {
    const agent = agentOf(req)
    const id = ticketIdOf(req.params.id)
    let retried: { messageId: string }
    try {
      retried = await tickets.retry(id, req.params.messageId, agent.id, req.body?.to)
    } catch (err) {
      if (err instanceof UserError && (err.statusCode === 422 || err.statusCode === 409)) {
        reply.code(err.statusCode)
        return await ticketPage(req as unknown as TicketReq, reply, { error: err.message })
      }
      throw err
    }
    return await reply.redirect(`/tickets/${id}#m-${retried.messageId}`, 303)
  })
  app.get<{ Params: { id: string, messageId: string } }>('/tickets/:id/messages/:messageId/retry', { schema: { params: messageParams } }, async (req, reply) =>
    await reply.redirect(`/tickets/${ticketIdOf(req.params.id)}`, 303))

  // A contact's extra addresses, used in order by "send with failover".
  app.post<{ Params: { id: string }, Querystring: { view?: string }, Body: Form & { channel?: string, address?: string } }>('/tickets/:id/addresses', { schema: { params: idParams, body: addressBody } }, async (req, reply) => {
    const id = ticketIdOf(req.params.id)
    try {
      await contacts.add(id, req.body?.channel ?? '', req.body?.address ?? '')
    } catch (err) {
      if (err instanceof UserError && (err.statusCode === 422 || err.statusCode === 409)) {
        reply.code(err.statusCode)
        return await ticketPage(req, reply, { addressError: err.message, channel: req.body?.channel, address: req.body?.address })
      }
      throw err
    }
    return await reply.redirect(`/tickets/${id}#addresses`, 303)
  })
  app.post<{ Params: { id: string, addressId: number } }>('/tickets/:id/addresses/:addressId/delete', { schema: { params: addressParams } }, async (req, reply) => {
    const id = ticketIdOf(req.params.id)
    await contacts.remove(id, req.params.addressId)
    return await reply.redirect(`/tickets/${id}#addresses`, 303)
  })

  await cannedRoutes(app, { canned, page })
  if (deps.scheduled !== undefined) await scheduledRoutes(app, { scheduled: deps.scheduled, ticketPage: async (req, reply, state) => await ticketPage(req as TicketReq, reply, state) })
  await contactRoutes(app, { profiles, tickets, merges, page })
  await mergeRoutes(app, { merges, ticketPage })
  await privacyRoutes(app, { privacy: deps.privacy, page })
  if (deps.whatsapp !== undefined) await whatsappRoutes(app, { ...deps.whatsapp, page, ticketIdOf, ticketPage: async (req, reply, state) => await ticketPage(req as TicketReq, reply, state) })

  // A refused form re-renders at its POST address; reloading that address later (a GET) must
  // land on the ticket, not on a 404.
  for (const path of ['replies', 'notes', 'assign', 'status', 'unread', 'close', 'addresses']) {
    app.get<{ Params: { id: string } }>(`/tickets/:id/${path}`, { schema: { params: idParams } }, async (req, reply) =>
      await reply.redirect(`/tickets/${ticketIdOf(req.params.id)}`, 303))
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in agent, set by the auth hook. */
    agent?: { id: number, name: string, email: string, role: 'admin' | 'agent' }
    csrfToken?: string
  }
}
