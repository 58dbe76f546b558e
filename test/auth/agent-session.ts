import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import type { Role } from '../../src/auth/agent-service.js'
import type { Services } from '../../src/app.js'

// Signing in as a browser does, for tests of agent pages: fetch the form, post it, keep the cookie.

export const PASSWORD = 'correct horse battery staple'

export async function createAgent (services: Services, opts: { email?: string, name?: string, role?: Role, password?: string } = {}) {
  const email = opts.email ?? 'ada@example.com'
  const password = opts.password ?? PASSWORD
  const agent = await services.agents.add({ email, name: opts.name ?? 'Ada Lovelace', role: opts.role ?? 'agent', password })
  return { ...agent, password }
}

export function cookieValue (res: LightMyRequestResponse, name: string): string | undefined {
  const cookies = res.cookies as Array<{ name: string, value: string }>
  return cookies.find((c) => c.name === name)?.value
}

export function hiddenCsrf (html: string): string {
  const m = /name="_csrf" value="([^"]*)"/.exec(html)
  if (m === null) throw new Error('no _csrf field in the page')
  return m[1]
}

export interface LoginForm { cookie: string, csrf: string }

/** GET /login: the pre-session cookie and the token the form carries. */
export async function loginForm (app: FastifyInstance): Promise<LoginForm> {
  const res = await app.inject({ method: 'GET', url: '/login', headers: { accept: 'text/html' } })
  if (res.statusCode !== 200) throw new Error(`GET /login answered ${res.statusCode}`)
  const value = cookieValue(res, 'textdesk_login')
  if (value === undefined) throw new Error('GET /login set no login cookie')
  return { cookie: `textdesk_login=${value}`, csrf: hiddenCsrf(res.body) }
}

export async function postLogin (app: FastifyInstance, form: LoginForm, fields: { email: string, password: string, next?: string }, opts: { ip?: string } = {}) {
  return await app.inject({
    method: 'POST',
    url: '/login',
    remoteAddress: opts.ip,
    headers: { accept: 'text/html', cookie: form.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ ...fields, _csrf: form.csrf }).toString()
  })
}

export interface AgentSession {
  token: string
  cookie: string
  csrfToken: string
  /** Like app.inject, with the session cookie and the CSRF header added. */
  inject: (opts: InjectOptions) => Promise<LightMyRequestResponse>
}

export async function signIn (app: FastifyInstance, email: string, password: string = PASSWORD): Promise<AgentSession> {
  const res = await postLogin(app, await loginForm(app), { email, password })
  const token = cookieValue(res, 'textdesk_session')
  if (res.statusCode !== 303 || token === undefined) throw new Error(`sign-in failed: ${res.statusCode} ${res.body}`)
  const cookie = `textdesk_session=${token}`
  const page = await app.inject({ method: 'GET', url: '/inbox?view=open', headers: { accept: 'text/html', cookie } })
  const csrfToken = hiddenCsrf(page.body)
  return {
    token,
    cookie,
    csrfToken,
    inject: async (opts) => await app.inject({ ...opts, headers: { cookie, 'x-csrf-token': csrfToken, ...(opts.headers ?? {}) } })
  }
}

/** A signed-in agent for tests that are about something else. */
export async function signedInAgent (app: FastifyInstance, opts: { email?: string, name?: string, role?: Role } = {}): Promise<AgentSession & { id: number, name: string }> {
  const agent = await createAgent(app.services, opts)
  return { ...await signIn(app, agent.email, agent.password), id: agent.id, name: agent.name }
}

/** Cheap password hashes: the cost is a parameter of each hash, so this changes only test speed. */
export const FAST_HASH_ENV = { PASSWORD_SCRYPT_LOG_N: '10' }
