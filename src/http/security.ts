import helmet from 'helmet'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { UserError } from '../errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set by `machineFacing()`: the route answers servers (webhooks, API), not browsers. */
    machineFacing?: boolean
  }
}

/**
 * Security headers for every response. The inbox loads only /assets/app.js and /assets/app.css
 * and fetches fragments from its own origin, so the policy allows nothing else: no inline script
 * or style, no framing, forms post only to us.
 */
export async function securityHeaders (app: FastifyInstance, config: Pick<Config, 'publicUrl' | 'session'>): Promise<void> {
  // `helmet` itself rather than @fastify/helmet: the plugin rebuilds the middleware (and re-parses
  // the policy) on every request, which showed up in the webhook profile; built once here.
  const https = config.session.secureCookies || (config.publicUrl?.startsWith('https:') ?? false)
  const headers = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        manifestSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        objectSrc: ["'none'"],
        // Only over https: on plain http it would send the browser to an https port nobody serves.
        ...(https ? { upgradeInsecureRequests: [] } : {})
      }
    },
    strictTransportSecurity: https ? { maxAge: 180 * 24 * 3600, includeSubDomains: false } : false,
    referrerPolicy: { policy: 'same-origin' },
    crossOriginEmbedderPolicy: false
  })
  // Machine-facing routes (webhooks, the JSON API) answer servers, not browsers: helmet's browser
  // directives do nothing there, and setting a dozen headers cost about 15 µs per webhook. They get
  // the set OWASP recommends for REST responses instead, written from one precomputed list.
  const machine: Array<[string, string]> = [
    ['content-security-policy', "default-src 'none'; frame-ancestors 'none'"],
    ['x-content-type-options', 'nosniff'],
    ['x-frame-options', 'DENY'],
    ...(https ? [['strict-transport-security', `max-age=${180 * 24 * 3600}`] as [string, string]] : [])
  ]
  app.addHook('onRequest', (req, reply, done) => {
    if (req.routeOptions.config.machineFacing === true) {
      for (const [name, value] of machine) reply.raw.setHeader(name, value)
      done()
      return
    }
    headers(req.raw, reply.raw, (err?: unknown) => { done(err as Error | undefined) })
  })
}

/** Marks every route registered in `scope` after this call as answering servers, not browsers. */
export function machineFacing (scope: FastifyInstance): void {
  scope.addHook('onRoute', (route) => {
    route.config = { ...route.config, machineFacing: true }
  })
}

/**
 * A per-client-address request limit for every route registered in `scope` after this call.
 * Use it inside an encapsulated scope (webhooks, the JSON API): the plugin does not leak out.
 */
export async function limitRate (scope: FastifyInstance, options: { perMinute: number, headers?: boolean }): Promise<void> {
  const headers = options.headers ?? true
  await scope.register(rateLimit, {
    max: options.perMinute,
    timeWindow: 60_000,
    // The x-ratelimit-* headers help API clients pace themselves; webhook senders ignore them.
    addHeadersOnExceeding: { 'x-ratelimit-limit': headers, 'x-ratelimit-remaining': headers, 'x-ratelimit-reset': headers },
    errorResponseBuilder: (_req, ctx) => new UserError(429, `Too many requests; retry in ${ctx.after}.`, 'RATE_LIMITED')
  })
}

/** A body limit for every route registered in `scope` after this call that does not set its own. */
export function limitBodies (scope: FastifyInstance, bytes: number): void {
  scope.addHook('onRoute', (route) => {
    route.bodyLimit ??= bytes
  })
}

export function wantsHtml (req: FastifyRequest): boolean {
  return (req.headers.accept ?? '').includes('text/html')
}

const NOT_FOUND_PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Not found · Textdesk</title><link rel="stylesheet" href="/assets/app.css"></head>
<body><main><h1>Not found</h1><p>There is nothing at this address.</p><p><a href="/inbox">Go to the inbox</a></p></main></body>
</html>
`

/** The same answer for every unknown address, signed in or not: it names no route, file or version. */
export async function notFound (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  reply.code(404).header('cache-control', 'no-store')
  if (wantsHtml(req)) return await reply.type('text/html; charset=utf-8').send(NOT_FOUND_PAGE)
  return await reply.send({ statusCode: 404, error: 'NOT_FOUND', message: 'There is nothing at this address.' })
}
