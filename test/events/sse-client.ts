import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'

// A real HTTP client reading an event stream from a listening server, parsing frames as the
// EventSource spec does (fields up to a blank line; lines starting with ':' are comments).

export interface Frame {
  /** null: a comment line (`: ping`). */
  event: string | null
  id: string | null
  data: string
  comment: string | null
}

export interface SseClient {
  status: number
  headers: IncomingHttpHeaders
  /** Every byte received, as text (for leak checks). */
  text: () => string
  frames: Frame[]
  /** Resolves with the first frame (from the start of the stream) that matches and was not taken before. */
  next: (match?: (f: Frame) => boolean) => Promise<Frame>
  /** Resolves when the server ends the stream. */
  ended: Promise<void>
  /** The JSON body of a refused (non-stream) answer. */
  json: () => Promise<unknown>
  close: () => void
  /** Stops reading (a frozen tab): the server's buffers fill up. */
  pause: () => void
}

export async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

export async function openStream (base: string, opts: { cookie?: string, lastEventId?: string, query?: string, accept?: string } = {}): Promise<SseClient> {
  const headers: Record<string, string> = { accept: opts.accept ?? 'text/event-stream' }
  if (opts.cookie !== undefined) headers.cookie = opts.cookie
  if (opts.lastEventId !== undefined) headers['last-event-id'] = opts.lastEventId
  const req = request(`${base}/inbox/events${opts.query ?? ''}`, { headers, agent: false })
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve)
    req.once('error', reject)
    req.end()
  })
  res.setEncoding('utf8')
  let raw = ''
  let buffer = ''
  const frames: Frame[] = []
  const taken = new Set<Frame>()
  const waiters: Array<{ match: (f: Frame) => boolean, resolve: (f: Frame) => void }> = []
  const offer = (frame: Frame): void => {
    frames.push(frame)
    const i = waiters.findIndex((w) => w.match(frame))
    if (i === -1) return
    taken.add(frame)
    waiters.splice(i, 1)[0].resolve(frame)
  }
  const ended = new Promise<void>((resolve) => {
    res.once('end', resolve)
    res.once('close', resolve)
  })
  const isStream = (res.headers['content-type'] ?? '').startsWith('text/event-stream')
  if (isStream) {
    res.on('data', (chunk: string) => {
      raw += chunk
      buffer += chunk
      let at: number
      while ((at = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, at)
        buffer = buffer.slice(at + 2)
        const frame: Frame = { event: null, id: null, data: '', comment: null }
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) { frame.comment = line.slice(1).trim(); continue }
          const colon = line.indexOf(':')
          const field = colon === -1 ? line : line.slice(0, colon)
          const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '')
          if (field === 'event') frame.event = value
          else if (field === 'id') frame.id = value
          else if (field === 'data') frame.data += (frame.data === '' ? '' : '\n') + value
        }
        offer(frame)
      }
    })
  }
  let body: Promise<string> | null = null
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    text: () => raw,
    frames,
    ended,
    next: async (match = () => true) => {
      const found = frames.find((f) => !taken.has(f) && match(f))
      if (found !== undefined) {
        taken.add(found)
        return found
      }
      return await new Promise<Frame>((resolve) => waiters.push({ match, resolve }))
    },
    json: async () => {
      body ??= new Promise<string>((resolve) => {
        let s = ''
        res.on('data', (c: string) => { s += c })
        res.once('end', () => resolve(s))
      })
      return JSON.parse(await body)
    },
    close: () => { req.destroy() },
    pause: () => { res.pause() }
  }
}

/** A `ticket` frame's payload. */
export function ticketData (f: Frame): { ticketId: number, change: string } {
  return JSON.parse(f.data)
}

export const isTicket = (ticketId: number, change?: string) => (f: Frame): boolean =>
  f.event === 'ticket' && ticketData(f).ticketId === ticketId && (change === undefined || ticketData(f).change === change)
