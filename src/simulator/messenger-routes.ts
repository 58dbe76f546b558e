import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { errorBody } from '../errors.js'
import { renderFragment, renderPage } from '../inbox/render.js'
import { messengerAddress, PSID } from '../messaging/address.js'
import type { SimulatorChannel } from '../messaging/simulator-channel.js'
import type { TicketService } from '../tickets/ticket-service.js'
import { PAGE_SIZE } from './simulator-routes.js'

export interface MessengerSimulatorDeps {
  tickets: TicketService
  simulator: SimulatorChannel
}

const DEFAULT_USER = '6011234567890123'
/** Messenger's own limit on a message a person types. */
const MAX_TEXT = 2000
const MAX_NAME = 80
/** A message the customer has received but not yet opened: the read receipt is one click. */
const READABLE = new Set(['sent', 'buffered', 'delivered'])

const userQuery = {
  type: 'object',
  properties: { user: { type: 'string', maxLength: 64 }, name: { type: 'string', maxLength: 200 } }
} as const
const sendBody = {
  type: 'object',
  properties: { user: { type: 'string', maxLength: 64 }, name: { type: 'string', maxLength: 200 }, text: { type: 'string' } }
} as const
const readBody = {
  type: 'object',
  properties: { user: { type: 'string', maxLength: 64 }, name: { type: 'string', maxLength: 200 }, message: { type: 'string', maxLength: 64 } }
} as const

type Query = { user?: string, name?: string }

/** The chat page opens as a default user; a message or a receipt must name its user (the forms always do). */
function validUser (input: string | undefined, fallback: string | null = DEFAULT_USER): string | null {
  const user = (input ?? fallback ?? '').trim()
  return PSID.test(user) ? user : null
}

function cleanName (input: string | undefined): string {
  return (input ?? '').trim().slice(0, MAX_NAME)
}

function chatUrl (user: string, name: string): string {
  return `/simulator/messenger?user=${encodeURIComponent(user)}${name === '' ? '' : `&name=${encodeURIComponent(name)}`}`
}

/**
 * A Messenger-style chat in the browser, next to the SMS phone: anyone can write to the support
 * page as a Messenger user (a page-scoped id and a name, as MessageBird's webhook carries them),
 * see the agents' replies arrive on Messenger, and send a read receipt with one click. Messages
 * enter through the same ticket-service call as a Conversations webhook.
 */
export async function messengerSimulatorRoutes (app: FastifyInstance, deps: MessengerSimulatorDeps): Promise<void> {
  const { tickets, simulator } = deps

  const chatData = async (user: string, name: string) => {
    const rows = await tickets.conversationWith(messengerAddress(user), PAGE_SIZE)
    return {
      user,
      name,
      messages: rows.map((m) => ({ ...m, readable: m.direction === 'outbound' && m.channel === 'messenger' && READABLE.has(m.status) })),
      fragmentUrl: `/simulator/messenger/conversation?user=${encodeURIComponent(user)}${name === '' ? '' : `&name=${encodeURIComponent(name)}`}`
    }
  }
  const render = async (reply: FastifyReply, user: string, name: string, extra: Record<string, unknown> = {}) => {
    return await renderPage(reply, 'simulator-messenger', { title: 'Messenger simulator', ...await chatData(user, name), typedUser: user, maxText: MAX_TEXT, ...extra })
  }

  app.setErrorHandler(async (err, req, reply) => {
    const { statusCode, body } = errorBody(err)
    if (statusCode >= 500) req.log.error({ err }, 'messenger simulator request failed')
    reply.code(statusCode)
    if (!(req.headers.accept ?? '').includes('text/html') || statusCode >= 500) return await reply.send(body)
    return await render(reply, DEFAULT_USER, '', { error: statusCode === 400 ? 'That request was not understood; nothing was sent.' : body.message })
  })

  app.get<{ Querystring: Query }>('/simulator/messenger', { schema: { querystring: userQuery } }, async (req, reply) => {
    const name = cleanName(req.query.name)
    const user = validUser(req.query.user)
    if (user === null) {
      reply.code(400)
      return await render(reply, DEFAULT_USER, name, {
        typedUser: req.query.user ?? '',
        userError: `"${(req.query.user ?? '').slice(0, 40)}" is not a Messenger id: a page-scoped id is 5 to 32 digits. The chat still shows ${DEFAULT_USER}.`
      })
    }
    return await render(reply, user, name)
  })

  app.get<{ Querystring: Query }>('/simulator/messenger/conversation', { schema: { querystring: userQuery } }, async (req, reply) => {
    const user = validUser(req.query.user)
    if (user === null) {
      reply.code(400)
      return await reply.send({ statusCode: 400, error: 'INVALID_MESSENGER_ID', message: 'Not a Messenger id: a page-scoped id is 5 to 32 digits.' })
    }
    return await renderFragment(reply, 'partials/messenger-messages', await chatData(user, cleanName(req.query.name)))
  })

  app.post<{ Body: { user?: string, name?: string, text?: string } }>('/simulator/messenger/messages', { schema: { body: sendBody } }, async (req, reply) => {
    const user = validUser(req.body?.user, null)
    const name = cleanName(req.body?.name)
    const text = req.body?.text ?? ''
    if (user === null) {
      reply.code(400)
      return await render(reply, DEFAULT_USER, name, { error: 'This chat has no valid Messenger id; switch to one first. Nothing was sent.', draft: text })
    }
    if (text.trim() === '') {
      reply.code(422)
      return await render(reply, user, name, { error: 'Type a message before sending.' })
    }
    if (text.length > MAX_TEXT) {
      reply.code(422)
      return await render(reply, user, name, { error: `This message is ${text.length} characters long; Messenger sends at most ${MAX_TEXT}. Nothing was sent.`, draft: text })
    }
    await tickets.receiveInbound({ provider: 'simulator', providerMessageId: randomUUID(), from: messengerAddress(user), to: null, text, channel: 'messenger', name: name === '' ? null : name })
    return await reply.redirect(chatUrl(user, name), 303)
  })

  app.post<{ Body: { user?: string, name?: string, message?: string } }>('/simulator/messenger/read', { schema: { body: readBody } }, async (req, reply) => {
    const user = validUser(req.body?.user, null)
    const name = cleanName(req.body?.name)
    if (user === null) {
      reply.code(400)
      return await render(reply, DEFAULT_USER, name, { error: 'This chat has no valid Messenger id; switch to one first.' })
    }
    // Only a message this chat shows, sent to this user on Messenger and not read yet, can be read here.
    const { messages } = await chatData(user, name)
    const message = messages.find((m) => m.id === req.body?.message)
    if (message === undefined || !message.readable) {
      reply.code(422)
      return await render(reply, user, name, { error: 'That message is not one this chat can mark as read (it is not here, not on Messenger, failed, or already read).' })
    }
    await simulator.reportRead({ id: message.id, providerMessageId: null })
    return await reply.redirect(chatUrl(user, name), 303)
  })
}
