import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { errorBody } from '../errors.js'
import { renderFragment, renderPage } from '../inbox/render.js'
import { SAMPLE_PICTURES, sampleNamed, sampleUrl } from '../media/simulator-samples.js'
import { isNorthAmerican } from '../messaging/messagebird-channel.js'
import type { SimulatedMode, SimulatorChannel } from '../messaging/simulator-channel.js'
import { InvalidPhoneNumber, toE164 } from '../tickets/phone.js'
import type { TicketService } from '../tickets/ticket-service.js'

export interface SimulatorDeps {
  tickets: TicketService
  simulator: SimulatorChannel
  /** Closes the number's WhatsApp window now (its WhatsApp messages moved back past 24 h); how many moved. */
  ageWhatsApp?: (number: string) => Promise<number>
}

const DEFAULT_NUMBER = '+31612345678'
/** The phone shows this many of the latest messages; "Show older" adds as many again, up to MAX_SHOWN. */
export const PAGE_SIZE = 30
export const MAX_SHOWN = 600
const MAX_TEXT = 1600

const numberQuery = {
  type: 'object',
  properties: { number: { type: 'string', maxLength: 64 }, current: { type: 'string', maxLength: 64 }, show: { type: 'string', maxLength: 8 } }
} as const
const sendBody = {
  type: 'object',
  properties: { number: { type: 'string', maxLength: 64 }, text: { type: 'string' }, show: { type: 'string', maxLength: 8 }, channel: { type: 'string', maxLength: 16 }, picture: { type: 'string', maxLength: 64 } }
} as const
const modeBody = {
  type: 'object',
  properties: { number: { type: 'string', maxLength: 64 }, mode: { type: 'string' } }
} as const
const MODES: readonly SimulatedMode[] = ['normal', 'off', 'unreachable', 'failing']

type Query = { number?: string, current?: string, show?: string }

function validNumber (input: string | undefined): string | null {
  try {
    return toE164(input ?? DEFAULT_NUMBER)
  } catch (err) {
    if (err instanceof InvalidPhoneNumber) return null
    throw err
  }
}

/** A posted form names the phone it comes from; without one (or with two) it comes from none. */
function postedNumber (input: unknown): string | null {
  return typeof input === 'string' && input.trim() !== '' ? validNumber(input) : null
}

/** How many messages to show: a multiple of PAGE_SIZE, at least one page, at most MAX_SHOWN. */
export function shownCount (show: string | undefined): number {
  const n = /^\d{1,6}$/.test(show ?? '') ? Number(show) : PAGE_SIZE
  return Math.min(MAX_SHOWN, Math.max(PAGE_SIZE, Math.ceil(n / PAGE_SIZE) * PAGE_SIZE))
}

function phoneUrl (number: string, show = PAGE_SIZE): string {
  return `/simulator?number=${encodeURIComponent(number)}${show > PAGE_SIZE ? `&show=${show}` : ''}`
}

/**
 * A phone in the browser, for trying the product without a provider account. Mounted only when the
 * simulator channel is active. Texts enter through the same ticket-service call as a MessageBird
 * webhook; replies appear here once the outbox worker has "sent" them. Every mistake a person can
 * make here (a number no country issues, an empty or too long text) is answered on the phone page
 * itself, with what they typed kept.
 */
export async function simulatorRoutes (app: FastifyInstance, deps: SimulatorDeps): Promise<void> {
  const { tickets, simulator } = deps

  const phoneData = async (number: string, show: number) => {
    // One more than shown tells whether older messages exist.
    const rows = await tickets.conversationWith(number, show + 1)
    const hasOlder = rows.length > show
    const messages = hasOlder ? rows.slice(rows.length - show) : rows
    return {
      number,
      mode: simulator.getMode(number),
      messages,
      show,
      olderUrl: hasOlder && show < MAX_SHOWN ? phoneUrl(number, show + PAGE_SIZE) : null,
      atMax: hasOlder && show >= MAX_SHOWN
    }
  }
  const render = async (reply: FastifyReply, number: string, show: number, extra: Record<string, unknown> = {}) => {
    const data = await phoneData(number, show)
    return await renderPage(reply, 'simulator', {
      title: 'SMS simulator',
      ...data,
      typedNumber: number,
      fragmentUrl: `/simulator/conversation?number=${encodeURIComponent(number)}&show=${show}`,
      maxText: MAX_TEXT,
      pictures: SAMPLE_PICTURES.map((p) => ({ ...p, selected: p.name === extra.picture })),
      ...extra
    })
  }

  // Validation errors of these routes are a person's typing: show them on the phone page, not as JSON.
  app.setErrorHandler(async (err, req, reply) => {
    const { statusCode, body } = errorBody(err)
    if (statusCode >= 500) req.log.error({ err }, 'simulator request failed')
    reply.code(statusCode)
    if (!(req.headers.accept ?? '').includes('text/html') || statusCode >= 500) return await reply.send(body)
    // A refused request's fields may be anything (an array from repeated keys): only a string is a number.
    const given = (req.body as { number?: unknown } | undefined)?.number ?? (req.query as { number?: unknown } | undefined)?.number
    const number = (typeof given === 'string' ? validNumber(given) : null) ?? DEFAULT_NUMBER
    return await render(reply, number, PAGE_SIZE, { error: statusCode === 400 ? 'That request was not understood; nothing was sent.' : body.message })
  })

  app.get<{ Querystring: Query }>('/simulator', { schema: { querystring: numberQuery } }, async (req, reply) => {
    const number = validNumber(req.query.number)
    if (number === null) {
      // Stay on the number the phone had (or the default) and say what was wrong with the new one.
      const current = validNumber(req.query.current) ?? DEFAULT_NUMBER
      reply.code(400)
      return await render(reply, current, PAGE_SIZE, {
        typedNumber: req.query.number ?? '',
        numberError: `"${(req.query.number ?? '').slice(0, 40)}" is not a phone number a customer could text from. Type it in international format with the country code, for example +31612345678. The phone still shows ${current}.`
      })
    }
    return await render(reply, number, shownCount(req.query.show))
  })

  app.get<{ Querystring: Query }>('/simulator/conversation', { schema: { querystring: numberQuery } }, async (req, reply) => {
    const number = validNumber(req.query.number)
    if (number === null) {
      reply.code(400)
      return await reply.send({ statusCode: 400, error: 'INVALID_PHONE', message: 'Not a phone number; use international format, e.g. +31612345678.' })
    }
    return await renderFragment(reply, 'partials/phone-messages', await phoneData(number, shownCount(req.query.show)))
  })

  app.post<{ Body: { number?: string, text?: string, show?: string, channel?: string, picture?: string } }>('/simulator/messages', { schema: { body: sendBody } }, async (req, reply) => {
    const number = postedNumber(req.body?.number)
    const text = req.body?.text ?? ''
    const show = shownCount(req.body?.show)
    // A picture makes it an MMS, the simulated counterpart of MessageBird's inbound MMS webhook.
    const pictureName = req.body?.picture ?? ''
    const keep = { draft: text, picture: pictureName }
    if (number === null) {
      reply.code(400)
      return await render(reply, DEFAULT_NUMBER, PAGE_SIZE, { error: 'This phone has no valid number; switch to one first. Nothing was sent.', ...keep })
    }
    const picture = pictureName === '' ? null : sampleNamed(pictureName)
    if (picture === undefined) {
      reply.code(422)
      return await render(reply, number, show, { error: 'Pick one of the listed pictures, or none. Nothing was sent.', draft: text })
    }
    if (text.trim() === '' && picture === null) {
      reply.code(422)
      return await render(reply, number, show, { error: 'Type a message before sending.' })
    }
    if (text.length > MAX_TEXT) {
      reply.code(422)
      return await render(reply, number, show, { error: `This text is ${text.length} characters long; a phone sends at most ${MAX_TEXT} in one message. Nothing was sent.`, ...keep })
    }
    if (picture !== null) {
      if (req.body?.channel === 'whatsapp') {
        reply.code(422)
        return await render(reply, number, show, { error: 'This phone sends pictures by MMS only: press Send, or choose "No picture" to send by WhatsApp. Nothing was sent.', ...keep })
      }
      if (!isNorthAmerican(number)) {
        reply.code(422)
        return await render(reply, number, show, { error: `MMS works between US and Canadian numbers only (+1), as with MessageBird; ${number} is not one. Switch this phone to a number such as +12025550123, or choose "No picture". Nothing was sent.`, ...keep })
      }
      await tickets.receiveInbound({
        provider: 'simulator',
        providerMessageId: randomUUID(),
        from: number,
        to: null,
        // The text line of a picture without words, as an inbound MMS webhook stores it.
        text: text.trim() === '' ? '[image]' : text,
        channel: 'mms',
        media: [{ kind: 'image', url: sampleUrl(picture), caption: null, contentType: picture.contentType }]
      })
      return await reply.redirect(phoneUrl(number, show), 303)
    }
    // "Send by WhatsApp" on the phone: the same text as a WhatsApp message, which opens the 24-hour window.
    const channel = req.body?.channel === 'whatsapp' ? 'whatsapp' : 'sms'
    await tickets.receiveInbound({ provider: 'simulator', providerMessageId: randomUUID(), from: number, to: null, text, channel })
    return await reply.redirect(phoneUrl(number, show), 303)
  })

  app.post<{ Body: { number?: string } }>('/simulator/whatsapp-window', { schema: { body: modeBody } }, async (req, reply) => {
    const number = postedNumber(req.body?.number)
    if (number === null || deps.ageWhatsApp === undefined) {
      reply.code(400)
      return await render(reply, DEFAULT_NUMBER, PAGE_SIZE, { error: 'This phone has no valid number; switch to one first.' })
    }
    const moved = await deps.ageWhatsApp(number)
    if (moved === 0) {
      reply.code(422)
      return await render(reply, number, PAGE_SIZE, { error: 'This phone has sent no WhatsApp message in the last 24 hours: its window is already closed. Send one with "Send by WhatsApp" to open it.' })
    }
    return await reply.redirect(phoneUrl(number), 303)
  })

  app.post<{ Body: { number?: string, mode?: string } }>('/simulator/mode', { schema: { body: modeBody } }, async (req, reply) => {
    const number = postedNumber(req.body?.number)
    if (number === null) {
      reply.code(400)
      return await render(reply, DEFAULT_NUMBER, PAGE_SIZE, { error: 'This phone has no valid number; switch to one first.' })
    }
    const mode = MODES.find((m) => m === req.body?.mode)
    if (mode === undefined) {
      reply.code(422)
      return await render(reply, number, PAGE_SIZE, { error: 'Pick one of the listed behaviours for this number.' })
    }
    simulator.setMode(number, mode)
    return await reply.redirect(phoneUrl(number), 303)
  })
}
