import type { FastifyReply } from 'fastify'

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
    lastEventId: agent === null ? null : reply.server.services.events.lastId(),
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
