import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { UserError } from '../errors.js'
import { renderFragment, renderPage } from '../inbox/render.js'
import type { SimulatedMode, SimulatorChannel } from '../messaging/simulator-channel.js'
import { InvalidPhoneNumber, toE164 } from '../tickets/phone.js'
import type { TicketService } from '../tickets/ticket-service.js'

export interface SimulatorDeps {
  tickets: TicketService
  simulator: SimulatorChannel
}

const DEFAULT_NUMBER = '+31612345678'
const numberQuery = { type: 'object', properties: { number: { type: 'string', maxLength: 32 } } } as const
const sendBody = {
  type: 'object',
  required: ['number', 'text'],
  properties: { number: { type: 'string', maxLength: 32 }, text: { type: 'string', maxLength: 1600 } }
} as const
const modeBody = {
  type: 'object',
  required: ['number', 'mode'],
  properties: { number: { type: 'string', maxLength: 32 }, mode: { type: 'string', enum: ['normal', 'unreachable', 'failing'] } }
} as const

function phone (input: string | undefined): string {
  try {
    return toE164(input ?? DEFAULT_NUMBER)
  } catch (err) {
    if (err instanceof InvalidPhoneNumber) throw new UserError(400, err.message, 'INVALID_PHONE')
    throw err
  }
}

/**
 * A phone in the browser, for trying the product without a provider account. Mounted only when the
 * simulator channel is active. Texts enter through the same ticket-service call as a MessageBird
 * webhook; replies appear here once the outbox worker has "sent" them.
 */
export async function simulatorRoutes (app: FastifyInstance, deps: SimulatorDeps): Promise<void> {
  const { tickets, simulator } = deps
  const data = async (number: string) => ({
    number,
    mode: simulator.getMode(number),
    messages: await tickets.conversationWith(number)
  })
  const render = async (reply: FastifyReply, number: string, extra: Record<string, unknown> = {}) =>
    await renderPage(reply, 'simulator', { title: 'SMS simulator', ...(await data(number)), ...extra })

  app.get<{ Querystring: { number?: string } }>('/simulator', { schema: { querystring: numberQuery } }, async (req, reply) => {
    return await render(reply, phone(req.query.number))
  })
  app.get<{ Querystring: { number?: string } }>('/simulator/conversation', { schema: { querystring: numberQuery } }, async (req, reply) => {
    return await renderFragment(reply, 'partials/phone-messages', await data(phone(req.query.number)))
  })
  app.post<{ Body: { number: string, text: string } }>('/simulator/messages', { schema: { body: sendBody } }, async (req, reply) => {
    const number = phone(req.body.number)
    if (req.body.text.trim() === '') {
      reply.code(422)
      return await render(reply, number, { error: 'Type a message before sending.' })
    }
    await tickets.receiveInbound({ provider: 'simulator', providerMessageId: randomUUID(), from: number, to: null, text: req.body.text, channel: 'sms' })
    return await reply.redirect(`/simulator?number=${encodeURIComponent(number)}`, 303)
  })
  app.post<{ Body: { number: string, mode: SimulatedMode } }>('/simulator/mode', { schema: { body: modeBody } }, async (req, reply) => {
    const number = phone(req.body.number)
    simulator.setMode(number, req.body.mode)
    return await reply.redirect(`/simulator?number=${encodeURIComponent(number)}`, 303)
  })
}
