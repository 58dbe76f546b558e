import type { FastifyReply, FastifyRequest } from 'fastify'

const cursors = new WeakMap<FastifyRequest, string>()

/**
 * Called as each GET starts (app.ts): the live-event id a page resumes from is taken before the
 * route reads what the page shows. An event that arrives in between (on PostgreSQL a NOTIFY comes
 * a moment after its commit) is then replayed to the page, a harmless extra refetch, instead of
 * being counted as already shown while the page shows what came before it.
 */
export function takeLiveCursor (request: FastifyRequest): void {
  cursors.set(request, request.server.services.events.lastId())
}

/**
 * Renders a full page inside the layout, with what every page needs: the agent, the CSRF token,
 * and on signed-in pages the `<body>` data the browser script reads (docs/team-inbox-contract.md): the agent,
 * the live-event id to resume from, and the page's view and ticket.
 */
export async function renderPage (reply: FastifyReply, view: string, data: Record<string, unknown>): Promise<FastifyReply> {
  const agent = reply.request.agent ?? null
  const html = await reply.viewAsync(view, {
    agent,
    csrfToken: reply.request.csrfToken ?? '',
    pageClass: `page-${view}`,
    lastEventId: agent === null ? null : (cursors.get(reply.request) ?? reply.server.services.events.lastId()),
    simulatorOn: reply.server.services.simulator !== null,
    ...data
  }, { layout: 'layout.hbs' })
  return await reply.type('text/html; charset=utf-8').send(html)
}

/** Renders a fragment (no layout) for the in-place refresh of lists and timelines. */
export async function renderFragment (reply: FastifyReply, view: string, data: Record<string, unknown>): Promise<FastifyReply> {
  const html = await reply.viewAsync(view, { csrfToken: reply.request.csrfToken ?? '', ...data })
  return await reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(html)
}
