import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { join } from 'node:path'
import type { Test } from 'tap'
import { PUBLIC_DIR } from '../../src/paths.js'

// A stand-in for the server side of docs/team-inbox-contract.md (/inbox, /tickets/:id, the fragments,
// /inbox/counts, /inbox/events, the POST routes), serving the real public/app.js and app.css under
// the app's Content-Security-Policy. It records every request and lets a test push events, drop
// the stream and change what the fragments say, so the script's own behaviour (coalescing,
// reconnecting, presence, the composer, the keyboard) is tested exactly. The real server is
// exercised end to end by the two-agent test.

export const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

export interface Row { id: number, customer: string, preview: string, unread: boolean }
export interface Item { id: string, kind: 'inbound' | 'outbound' | 'note' | 'event', text: string }
export interface Posted { path: string, form: URLSearchParams, headers: IncomingMessage['headers'] }

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

export class ContractDouble {
  rows: Row[] = [
    { id: 1, customer: 'Maria', preview: 'Where is my order?', unread: true },
    { id: 2, customer: '+31 6 87654321', preview: 'Thanks!', unread: false },
    { id: 3, customer: 'Jon', preview: 'Can I change the address?', unread: false }
  ]

  items: Item[] = [
    { id: '101', kind: 'inbound', text: 'Where is my order?' },
    { id: 'event-1', kind: 'event', text: 'Ada took this' }
  ]

  counts = { mine: 1, unassigned: 2, open: 3, pending: 0, closed: 4, unread: 1 }
  /** Requests by "METHOD path" (path without the query). */
  hits = new Map<string, number>()

  posts: Posted[] = []
  /** Each /inbox/events connection: its ?lastEventId= and Last-Event-ID header. */
  streams: Array<{ query: string | null, header: string | null }> = []
  /** Answer POST /tickets/:id/replies with this status and the page (409, 422) instead of 303. */
  replyStatus = 303
  /** Answer everything but assets with a redirect to /login (an expired session). */
  signedOut = false
  base = ''

  private readonly open = new Set<ServerResponse>()
  private readonly waiters: Array<() => void> = []
  private readonly sockets = new Set<Socket>()
  private readonly ring: Array<{ id: number, name: string, data: string }> = []
  private nextId = 1
  private readonly server = createServer((req, res) => { this.handle(req, res).catch((err: Error) => { res.statusCode = 500; res.end(err.message) }) })

  async start (t: Test): Promise<this> {
    this.server.on('connection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)) })
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
    t.teardown(async () => {
      for (const s of this.sockets) s.destroy()
      await new Promise((resolve) => this.server.close(resolve))
    })
    return this
  }

  /** Resolves once `test` holds, checked after every request and event-stream change. */
  async until (test: () => boolean): Promise<void> {
    while (!test()) await new Promise<void>((resolve) => this.waiters.push(resolve))
  }

  private changed (): void {
    for (const w of this.waiters.splice(0)) w()
  }

  get openStreams (): number {
    return this.open.size
  }

  count (key: string): number {
    return this.hits.get(key) ?? 0
  }

  get lastEventId (): number {
    return this.nextId - 1
  }

  /** Publishes an event: persistent ones (with an id) are kept for Last-Event-ID replay. */
  publish (name: 'ticket' | 'presence' | 'reload', data: unknown): void {
    const json = JSON.stringify(data)
    let frame: string
    if (name === 'ticket') {
      const id = this.nextId++
      this.ring.push({ id, name, data: json })
      frame = `id: ${id}\nevent: ${name}\ndata: ${json}\n\n`
    } else {
      frame = `event: ${name}\ndata: ${json}\n\n`
    }
    for (const res of this.open) res.write(frame)
  }

  /** Cuts every open event stream, as a proxy restart or a network blip does. */
  dropStreams (): void {
    for (const res of this.open) res.socket?.destroy()
    this.open.clear()
  }

  private page (title: string, bodyAttrs: string, main: string): string {
    return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${this.counts.unread >= 100 ? '(99+) ' : this.counts.unread > 0 ? `(${this.counts.unread}) ` : ''}${esc(title)} · Textdesk</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/app.css"><script src="/assets/app.js" defer></script></head>
<body ${bodyAttrs} data-agent-id="1" data-agent-name="Ada" data-last-event-id="${this.lastEventId}">
<header class="top"><a class="brand" href="/inbox">Textdesk</a><nav aria-label="Account"><span id="live-status" role="status"></span><a href="/inbox">Inbox</a><span class="who">Ada</span>
<form method="post" action="/logout" class="inline"><input type="hidden" name="_csrf" value="csrf-token-1"><button type="submit" class="link">Sign out</button></form></nav></header>
<main>${main}</main></body></html>`
  }

  private views (): string {
    const names: Array<[keyof ContractDouble['counts'], string]> = [['mine', 'Mine'], ['unassigned', 'Unassigned'], ['open', 'All open'], ['pending', 'Waiting on customer'], ['closed', 'Closed']]
    return `<nav class="views" aria-label="Views"><ul class="view-counts">${names.map(([k, label]) => `<li><a href="/inbox?view=${k}">${label} <span data-count-for="${k}">${this.counts[k]}</span></a></li>`).join('')}</ul></nav>`
  }

  list (): string {
    return `<section id="ticket-list" aria-label="Tickets"><ul class="tickets">${this.rows.map((r) => `<li class="ticket-row${r.unread ? ' unread' : ''}" data-ticket-id="${r.id}">
<a href="/tickets/${r.id}"><span class="customer">${esc(r.customer)}</span></a> <span class="preview">${esc(r.preview)}</span>
<form method="post" action="/tickets/${r.id}/assign"><input type="hidden" name="_csrf" value="csrf-token-1"><button type="submit" name="assignee" value="me" class="link">Take it</button></form></li>`).join('')}</ul></section>`
  }

  timeline (): string {
    return `<ol id="timeline">${this.items.map((i) => i.kind === 'event'
      ? `<li class="event" data-item-id="${i.id}">${esc(i.text)}</li>`
      : `<li class="msg ${i.kind}" data-item-id="${i.id}">${i.kind === 'note' ? '<span class="note-label">Private note</span>' : ''}<div class="bubble">${esc(i.text)}</div></li>`).join('')}</ol>`
  }

  private ticketPage (id: number, draft: string, error: string): string {
    const newest = this.items[this.items.length - 1]?.id ?? ''
    return this.page(`Ticket ${id}`, `class="page-ticket" data-view="open" data-ticket-id="${id}"`, `<div class="workspace"><div class="pane-list">${this.views()}${this.list()}</div>
<div class="pane-conversation"><a class="back-to-list" href="/inbox?view=open">Back to the list</a><h1>Ticket #${id}</h1><p id="presence" aria-live="polite"></p>${this.timeline()}
<form method="post" action="/tickets/${id}/replies" class="reply"><input type="hidden" name="_csrf" value="csrf-token-1"><input type="hidden" name="seen" value="${newest}"><input type="hidden" name="return_to" value="/tickets/${id}?view=open">
<label for="reply-body">Reply to the customer by SMS</label>${error !== '' ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<textarea id="reply-body" name="body" rows="4" data-sms-counter="reply-counter" data-max-length="1600" data-max-parts-without-confirm="3">${esc(draft)}</textarea><p id="reply-counter"></p>
<button type="submit">Send reply</button></form>
<form method="post" action="/tickets/${id}/notes" class="note"><input type="hidden" name="_csrf" value="csrf-token-1"><label for="note-body">Private note (agents only)</label><textarea id="note-body" name="body" rows="2"></textarea><button type="submit">Add note</button></form>
<form method="post" action="/tickets/${id}/assign"><input type="hidden" name="_csrf" value="csrf-token-1"><button type="submit" name="assignee" value="me" class="secondary">Assign to me</button></form>
</div></div>`)
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on('finish', () => this.changed())
    try {
      await this.answer(req, res)
    } finally {
      this.changed()
    }
  }

  private async answer (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x')
    const key = `${req.method ?? 'GET'} ${url.pathname}`
    this.hits.set(key, this.count(key) + 1)
    res.setHeader('content-security-policy', CSP)
    res.setHeader('cache-control', 'no-store')
    const send = (status: number, type: string, body: string) => { res.writeHead(status, { 'content-type': type }); res.end(body) }
    const asset = /^\/assets\/(app\.js|app\.css)$/.exec(url.pathname)
    if (asset !== null) return send(200, asset[1].endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8', readFileSync(join(PUBLIC_DIR, asset[1]), 'utf8'))
    if (this.signedOut) {
      if (url.pathname === '/inbox/events' || url.pathname === '/inbox/counts') return send(401, 'application/json', '{"statusCode":401}')
      if (url.pathname === '/login') return send(200, 'text/html; charset=utf-8', this.page('Sign in', 'class="page-login"', '<h1>Sign in</h1>').replace(/ data-agent-id="1" data-agent-name="Ada" data-last-event-id="\d+"/, ''))
      res.writeHead(303, { location: `/login?next=${encodeURIComponent(url.pathname)}` }).end()
      return
    }
    if (req.method === 'POST') {
      const chunks: Buffer[] = []
      for await (const c of req) chunks.push(c as Buffer)
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
      this.posts.push({ path: url.pathname, form, headers: req.headers })
      if (/\/presence$/.test(url.pathname)) { res.writeHead(204).end(); return }
      const reply = /^\/tickets\/(\d+)\/replies$/.exec(url.pathname)
      if (reply !== null && this.replyStatus !== 303) {
        return send(this.replyStatus, 'text/html; charset=utf-8', this.ticketPage(Number(reply[1]), form.get('body') ?? '', 'Bo replied 40 s ago: “On its way”'))
      }
      const back = form.get('return_to') ?? ''
      res.writeHead(303, { location: back.startsWith('/') && !back.startsWith('//') ? back : '/inbox' }).end()
      return
    }
    if (url.pathname === '/inbox') return send(200, 'text/html; charset=utf-8', this.page('Inbox', `class="page-inbox" data-view="${url.searchParams.get('view') ?? 'open'}"`, `<div class="workspace"><div class="pane-list"><h1>All open</h1>${this.views()}${this.list()}</div><div class="pane-conversation"><p class="empty">Pick a ticket</p></div></div>`))
    if (url.pathname === '/inbox/list') return send(200, 'text/html; charset=utf-8', this.list())
    if (url.pathname === '/inbox/counts') return send(200, 'application/json', JSON.stringify(this.counts))
    const ticket = /^\/tickets\/(\d+)(\/timeline)?$/.exec(url.pathname)
    if (ticket !== null) return send(200, 'text/html; charset=utf-8', ticket[2] !== undefined ? this.timeline() : this.ticketPage(Number(ticket[1]), '', ''))
    if (url.pathname === '/login') return send(200, 'text/html; charset=utf-8', this.page('Sign in', 'class="page-login"', '<h1>Sign in</h1>'))
    if (url.pathname === '/inbox/events') {
      const header = req.headers['last-event-id']
      this.streams.push({ query: url.searchParams.get('lastEventId'), header: typeof header === 'string' ? header : null })
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
      // A short retry keeps the reconnect tests quick; the real server leaves the browser's default.
      res.write('retry: 200\n\n')
      const from = Number(typeof header === 'string' ? header : url.searchParams.get('lastEventId') ?? this.lastEventId)
      for (const e of this.ring) if (e.id > from) res.write(`id: ${e.id}\nevent: ${e.name}\ndata: ${e.data}\n\n`)
      this.open.add(res)
      req.on('close', () => { this.open.delete(res); this.changed() })
      return
    }
    send(404, 'text/plain', 'not found')
  }
}
