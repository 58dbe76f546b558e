import type { FastifyReply } from 'fastify'

/** Renders a full page inside the layout, with what every page needs (agent, CSRF token, refresh period). */
export async function renderPage (reply: FastifyReply, view: string, data: Record<string, unknown>): Promise<FastifyReply> {
  const html = await reply.viewAsync(view, {
    agent: reply.request.agent ?? null,
    csrfToken: reply.request.csrfToken ?? '',
    ...data
  }, { layout: 'layout.hbs' })
  return await reply.type('text/html; charset=utf-8').send(html)
}

/** Renders a fragment (no layout) for the in-place refresh of lists and conversations. */
export async function renderFragment (reply: FastifyReply, view: string, data: Record<string, unknown>): Promise<FastifyReply> {
  const html = await reply.viewAsync(view, { csrfToken: reply.request.csrfToken ?? '', ...data })
  return await reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(html)
}
