import cookie from '@fastify/cookie'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { wantsHtml } from '../http/security.js'
import { renderPage } from '../inbox/render.js'
import { UserError } from '../errors.js'
import { ENABLE_AGENT_COMMAND, type AgentService } from './agent-service.js'
import { csrfTokenFor, csrfTokenMatches, newSecret } from './csrf.js'
import type { FirstRunSetup } from './first-run.js'
import { HashQueueFull, SIGN_IN_BUSY_MESSAGE } from './hash-gate.js'
import type { LoginThrottle, ThrottleVerdict } from './login-throttle.js'
import { attemptSignIn } from './sign-in.js'
import type { ActiveSession, SessionService } from './session-service.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Reachable without a session (the sign-in page and static assets). */
    public?: boolean
    /** Which CSRF token a state-changing route expects; default `session`. */
    csrf?: 'session' | 'login'
  }
  interface FastifyRequest {
    agentSession?: ActiveSession
  }
}

export interface AgentAuthDeps {
  agents: AgentService
  sessions: SessionService
  throttle: LoginThrottle
  firstRun: FirstRunSetup
  config: Pick<Config, 'session'>
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])
const LOGIN_COOKIE_MAX_AGE = 2 * 3600
const LOGIN_BODY_LIMIT = 8 * 1024

const loginQuery = { type: 'object', properties: { next: { type: 'string', maxLength: 2048 }, 'signed-out': { type: 'string', maxLength: 8 } } } as const
const loginBody = {
  type: 'object',
  properties: {
    email: { type: 'string', maxLength: 320 },
    password: { type: 'string', maxLength: 4096 },
    next: { type: 'string', maxLength: 2048 },
    _csrf: { type: 'string', maxLength: 200 }
  }
} as const
const setupBody = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 200 },
    email: { type: 'string', maxLength: 320 },
    password: { type: 'string', maxLength: 4096 },
    password2: { type: 'string', maxLength: 4096 },
    token: { type: 'string', maxLength: 200 },
    _csrf: { type: 'string', maxLength: 200 }
  }
} as const

const SITE = 'http://textdesk.invalid'

/** A path on this site as a browser reads a Location header: one slash, then no host. */
function isLocalPath (path: string): boolean {
  if (!path.startsWith('/') || path.startsWith('//')) return false
  // Browsers read `\` as `/` in http(s) URLs; control characters and spaces are stripped or
  // refused by parsers in different ways; `%2f` and `%5c` are slashes a proxy may decode.
  // eslint-disable-next-line no-control-regex
  if (/[\\\u0000-\u0020\u007f]|%2f|%5c/i.test(path)) return false
  try {
    return new URL(path, SITE).origin === SITE
  } catch {
    return false
  }
}

/**
 * Where to go after signing in: only a path on this site, so a crafted link cannot send an agent
 * elsewhere. The value is normalised first (dot segments, percent-encoded dots) and the result,
 * which is what the Location header will carry, is what gets checked: `/..//evil.example`
 * normalises to `//evil.example`, a link to another host.
 */
export function safeNextPath (next: unknown): string {
  const fallback = '/inbox'
  if (typeof next !== 'string' || !isLocalPath(next)) return fallback
  const url = new URL(next, SITE)
  const target = url.pathname + url.search + url.hash
  if (!isLocalPath(target) || url.pathname === '/login' || url.pathname === '/logout') return fallback
  return target
}

/** Where a form's `return_to` may send the browser after a POST: a path on this site (its `#fragment` kept), else `fallback`. */
export function safeReturnTo (returnTo: unknown, fallback: string): string {
  if (typeof returnTo !== 'string' || returnTo === '' || !isLocalPath(returnTo)) return fallback
  const url = new URL(returnTo, SITE)
  const target = url.pathname + url.search + url.hash
  return isLocalPath(target) ? target : fallback
}

function throttleMessage (verdict: ThrottleVerdict | { retryAfterSeconds: number, lockedOut: boolean }): string | null {
  if ('allowed' in verdict && verdict.allowed) return null
  const s = verdict.retryAfterSeconds
  if (verdict.lockedOut) {
    const m = Math.ceil(s / 60)
    return `Too many failed sign-in attempts. Sign-in is blocked for ${m} minute${m === 1 ? '' : 's'}; try again later, or ask an admin to reset your password.`
  }
  return `Too many failed sign-in attempts. Wait ${s} second${s === 1 ? '' : 's'} before trying again.`
}

/**
 * Agent authentication for an HTML scope: call it with the scope before registering the pages.
 * Every route registered in that scope afterwards needs a signed-in agent (unless its config says
 * `public: true`), and every state-changing request needs the CSRF token of its session.
 */
export async function agentAuth (app: FastifyInstance, deps: AgentAuthDeps): Promise<void> {
  const { agents, sessions, throttle, firstRun, config } = deps
  const secure = config.session.secureCookies
  // `__Host-` cookies are refused by browsers unless Secure, host-only and Path=/: they cannot be
  // planted by a sibling subdomain.
  const sessionCookie = secure ? '__Host-textdesk_session' : 'textdesk_session'
  const loginCookie = secure ? '__Host-textdesk_login' : 'textdesk_login'
  const cookieOptions = { path: '/', httpOnly: true, sameSite: 'lax' as const, secure }

  await app.register(cookie)

  const setupHint = async (): Promise<string | null> => {
    if (await agents.hasActiveAgents()) return null
    if (await firstRun.isOpen()) return 'No agent account exists yet: create the first admin on the sign-in page.'
    return `Every agent account is disabled. Enable one on the server with: ${ENABLE_AGENT_COMMAND}`
  }

  const errorPage = async (req: FastifyRequest, reply: FastifyReply, statusCode: number, error: string, message: string): Promise<FastifyReply> => {
    reply.code(statusCode).header('cache-control', 'no-store')
    if (!wantsHtml(req)) return await reply.send({ statusCode, error, message })
    return await renderPage(reply, 'error', { title: 'Error', statusCode, message, setupHint: await setupHint() })
  }

  app.addHook('onRequest', async (req, reply) => {
    // Pages behind sign-in, and the sign-in page, must not outlive the session in a browser's or a
    // proxy's cache. A route with its own policy (the static assets) sets it over this one.
    reply.header('cache-control', 'no-store')
    const token = req.cookies[sessionCookie]
    const session = await sessions.resolve(token)
    if (session !== null) {
      req.agentSession = session
      req.agent = session.agent
      req.csrfToken = session.csrfToken
      return
    }
    if (token !== undefined) reply.clearCookie(sessionCookie, cookieOptions)
    if (req.routeOptions.config.public === true) return
    if ((req.method === 'GET' || req.method === 'HEAD') && wantsHtml(req)) {
      return await reply.header('cache-control', 'no-store').redirect(`/login?next=${encodeURIComponent(req.url)}`, 303)
    }
    return await errorPage(req, reply, 401, 'UNAUTHENTICATED', 'You are not signed in, or your session has ended. Nothing was changed: sign in and try again.')
  })

  const loginSecret = (req: FastifyRequest): string | undefined => {
    const value = req.cookies[loginCookie]
    return value !== undefined && /^[A-Za-z0-9_-]{43}$/.test(value) ? value : undefined
  }

  /** The sign-in page; while no agent exists, the form that creates the first admin instead. */
  const renderLogin = async (req: FastifyRequest, reply: FastifyReply, form: { next?: string, email?: string, name?: string, error?: string | null, notice?: string | null }): Promise<FastifyReply> => {
    let secret = loginSecret(req)
    if (secret === undefined) {
      secret = newSecret()
      reply.setCookie(loginCookie, secret, { ...cookieOptions, maxAge: LOGIN_COOKIE_MAX_AGE })
    }
    reply.header('cache-control', 'no-store')
    const setup = await firstRun.isOpen()
    return await renderPage(reply, 'login', {
      title: setup ? 'Create the first admin' : 'Sign in',
      loginCsrf: csrfTokenFor(secret, 'login'),
      next: safeNextPath(form.next),
      email: form.email ?? '',
      error: form.error ?? null,
      notice: form.notice ?? null,
      setup: setup ? { name: form.name ?? '', needsToken: firstRun.access(req) === 'token' } : null,
      setupHint: setup ? null : await setupHint()
    })
  }

  app.addHook('preValidation', async (req, reply) => {
    if (SAFE_METHODS.has(req.method)) return
    const body = req.body as Record<string, unknown> | undefined
    const presented = (typeof body === 'object' && body !== null ? body._csrf : undefined) ?? req.headers['x-csrf-token']
    if (req.routeOptions.config.csrf === 'login') {
      const secret = loginSecret(req)
      if (secret !== undefined && csrfTokenMatches(secret, 'login', presented)) return
      req.log.warn({ reason: secret === undefined ? 'no login cookie' : 'token mismatch' }, 'sign-in form refused: CSRF check failed')
      reply.code(403)
      return await renderLogin(req, reply, {
        next: typeof body?.next === 'string' ? body.next : undefined,
        email: typeof body?.email === 'string' ? body.email : undefined,
        name: typeof body?.name === 'string' ? body.name : undefined,
        error: req.routeOptions.url === '/setup'
          ? 'The form had expired or did not come from this site. Nothing was created; please try again.'
          : 'The sign-in form had expired or did not come from this site. Please sign in again.'
      })
    }
    const session = req.agentSession
    if (session !== undefined && sessions.csrfValid(session, presented)) return
    req.log.warn({ agentId: session?.agent.id, route: req.routeOptions.url }, 'request refused: CSRF token missing or invalid')
    return await errorPage(req, reply, 403, 'CSRF_TOKEN_INVALID', 'This form has expired or did not come from Textdesk, so nothing was changed. Go back, reload the page and try again.')
  })

  app.get<{ Querystring: { next?: string, 'signed-out'?: string } }>('/login', { config: { public: true }, schema: { querystring: loginQuery } }, async (req, reply) => {
    if (req.agent !== undefined) return await reply.redirect(safeNextPath(req.query.next), 303)
    return await renderLogin(req, reply, { next: req.query.next, notice: req.query['signed-out'] === '1' ? 'You are signed out.' : null })
  })

  app.post<{ Body: { email?: string, password?: string, next?: string } }>('/login', {
    config: { public: true, csrf: 'login' },
    bodyLimit: LOGIN_BODY_LIMIT,
    schema: { body: loginBody }
  }, async (req, reply) => {
    const email = (req.body?.email ?? '').trim()
    const password = req.body?.password ?? ''
    const next = req.body?.next
    if (email === '' || password === '') {
      reply.code(400)
      return await renderLogin(req, reply, { next, email, error: 'Enter your email address and password.' })
    }
    const result = await attemptSignIn({ agents, throttle }, { email, password, ip: req.ip })
    if (result.kind === 'throttled') {
      req.log.warn({ ip: req.ip, lockedOut: result.lockedOut }, 'sign-in refused: throttled')
      reply.code(429).header('retry-after', String(result.retryAfterSeconds))
      return await renderLogin(req, reply, { next, email, error: throttleMessage(result) })
    }
    if (result.kind === 'busy') {
      req.log.warn({ ip: req.ip }, 'sign-in refused: too many password checks at once')
      reply.code(503).header('retry-after', String(result.retryAfterSeconds))
      return await renderLogin(req, reply, { next, email, error: SIGN_IN_BUSY_MESSAGE })
    }
    if (result.kind === 'disabled') {
      req.log.warn({ ip: req.ip }, 'sign-in refused: account disabled')
      reply.code(403)
      return await renderLogin(req, reply, { next, email, error: 'This account is disabled. Ask an admin to enable it.' })
    }
    if (result.kind === 'invalid') {
      app.metrics.countFailedSignIn()
      req.log.warn({ ip: req.ip }, 'sign-in failed')
      reply.code(401)
      const wait = throttleMessage(result.next)
      return await renderLogin(req, reply, { next, email, error: `The email address or password is not right.${wait === null ? '' : ' ' + wait}` })
    }
    // A fresh session on every sign-in: a token planted before sign-in never becomes a live session.
    await sessions.end(req.cookies[sessionCookie])
    const { token } = await sessions.create(result.agent.id)
    req.log.info({ agentId: result.agent.id }, 'agent signed in')
    reply.setCookie(sessionCookie, token, { ...cookieOptions, maxAge: sessions.ttlSeconds })
    reply.clearCookie(loginCookie, cookieOptions)
    return await reply.redirect(safeNextPath(next), 303)
  })

  // First-run setup: while no agent exists, the sign-in page offers this form instead (see FirstRunSetup).
  app.post<{ Body: { name?: string, email?: string, password?: string, password2?: string, token?: string } }>('/setup', {
    config: { public: true, csrf: 'login' },
    bodyLimit: LOGIN_BODY_LIMIT,
    schema: { body: setupBody }
  }, async (req, reply) => {
    // Once an agent exists the form is gone, and so is this route.
    if (!await firstRun.isOpen()) return await reply.callNotFound()
    const body = req.body ?? {}
    const form = { name: body.name ?? '', email: body.email ?? '' }
    if (firstRun.access(req) === 'token' && !firstRun.tokenMatches(body.token)) {
      req.log.warn({ ip: req.ip, tokenGiven: (body.token ?? '') !== '' }, 'first-run setup refused: not from this machine and no valid set-up token')
      reply.code(403)
      return await renderLogin(req, reply, { ...form, error: 'From another machine, this form needs the set-up token that the server printed in its start-up log. Nothing was created.' })
    }
    let admin
    try {
      admin = await firstRun.createAdmin({ ...form, password: body.password ?? '', confirmation: body.password2 ?? '' })
    } catch (err) {
      if (err instanceof HashQueueFull) {
        reply.code(503).header('retry-after', String(err.retryAfterSeconds))
        return await renderLogin(req, reply, { ...form, error: SIGN_IN_BUSY_MESSAGE })
      }
      if (err instanceof UserError && err.statusCode === 422) {
        reply.code(422)
        return await renderLogin(req, reply, { ...form, error: err.message })
      }
      throw err
    }
    // Someone else created the first admin while this password was being hashed.
    if (admin === null) return await reply.callNotFound()
    req.log.info({ agentId: admin.id, access: firstRun.access(req) }, 'first admin created in the browser')
    const { token } = await sessions.create(admin.id)
    reply.setCookie(sessionCookie, token, { ...cookieOptions, maxAge: sessions.ttlSeconds })
    reply.clearCookie(loginCookie, cookieOptions)
    return await reply.redirect('/inbox', 303)
  })

  // No body schema: a fetch() may sign out with the token in a header and no body at all.
  app.post('/logout', { bodyLimit: LOGIN_BODY_LIMIT }, async (req, reply) => {
    await sessions.end(req.cookies[sessionCookie])
    req.log.info({ agentId: req.agent?.id }, 'agent signed out')
    reply.clearCookie(sessionCookie, cookieOptions)
    return await reply.redirect('/login?signed-out=1', 303)
  })
}
