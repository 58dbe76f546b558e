import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { VIEWS_DIR } from '../../src/paths.js'
import { buildTestApp, form } from '../helper.js'
import { createAgent, FAST_HASH_ENV, signedInAgent } from './agent-session.js'

const HTML = { accept: 'text/html' }
const FORM = { ...HTML, 'content-type': 'application/x-www-form-urlencoded' }

/**
 * Resolves once the simulator's next `n` delivery reports have been applied and committed: the
 * app's own wiring (simulator → status service), with a count on the way out.
 */
function directives (csp: string | undefined): Record<string, string> {
  return Object.fromEntries((csp ?? '').split(';').map((d) => d.trim()).filter(Boolean).map((d) => {
    const [name, ...values] = d.split(/\s+/)
    return [name, values.join(' ')]
  }))
}

t.test('pages carry a strict Content-Security-Policy and the usual security headers', async (t) => {
  const { app, services } = await buildTestApp(t, { env: FAST_HASH_ENV })
  await createAgent(services)
  const agent = await signedInAgent(app, { email: 'grace@example.com' })
  for (const res of [await app.inject({ method: 'GET', url: '/login', headers: HTML }), await agent.inject({ method: 'GET', url: '/inbox?view=open', headers: HTML })]) {
    const csp = directives(res.headers['content-security-policy'] as string)
    t.same(csp, {
      'default-src': "'none'",
      'script-src': "'self'",
      'style-src': "'self'",
      'img-src': "'self' data:",
      'connect-src': "'self'",
      'font-src': "'self'",
      'manifest-src': "'self'",
      'form-action': "'self'",
      'frame-ancestors': "'none'",
      'base-uri': "'none'",
      'object-src': "'none'"
    })
    t.notMatch(res.headers['content-security-policy'], /unsafe-inline|unsafe-eval/)
    t.equal(res.headers['x-content-type-options'], 'nosniff')
    t.equal(res.headers['x-frame-options'], 'SAMEORIGIN')
    t.equal(res.headers['referrer-policy'], 'same-origin')
    t.equal(res.headers['strict-transport-security'], undefined, 'no HSTS over plain http')
    t.equal(res.headers['x-powered-by'], undefined)
  }
})

t.test('webhook and API answers carry the headers for machine clients, not the browser set', async (t) => {
  const { app } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const hook = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ originator: '31612345678', payload: 'hi', id: 'h1' }) })
  const api = await app.inject({ method: 'GET', url: '/api/v1/dispatch/nope' })
  t.equal(hook.statusCode, 200)
  t.equal(api.statusCode, 401)
  for (const res of [hook, api]) {
    t.equal(res.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'")
    t.equal(res.headers['x-content-type-options'], 'nosniff')
    t.equal(res.headers['x-frame-options'], 'DENY')
    t.equal(res.headers['cross-origin-opener-policy'], undefined, 'no browser-only directives')
    t.equal(res.headers['x-powered-by'], undefined)
  }
  // An unknown address is answered with the page set, as it may be a person's browser.
  const missing = await app.inject({ method: 'GET', url: '/webhooks/nothing-here' })
  t.equal(missing.statusCode, 404)
  t.match(missing.headers['content-security-policy'], /script-src 'self'/)
})

t.test('over https (PUBLIC_URL https://…) HSTS and upgrade-insecure-requests are added', async (t) => {
  const { app } = await buildTestApp(t, { env: { ...FAST_HASH_ENV, PUBLIC_URL: 'https://support.example.com' } })
  const res = await app.inject({ method: 'GET', url: '/login', headers: HTML })
  t.match(res.headers['strict-transport-security'], /^max-age=15552000$/)
  t.match(res.headers['content-security-policy'], /upgrade-insecure-requests/)
})

t.test('no view has inline script, inline style or event-handler attributes (the CSP would block them)', async (t) => {
  const files = (function walk (dir: string): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.hbs') ? [join(dir, e.name)] : [])
  })(VIEWS_DIR)
  t.ok(files.length >= 8, `${files.length} views`)
  for (const file of files) {
    const html = readFileSync(file, 'utf8')
    t.notMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, `${file}: no inline <script>`)
    t.notMatch(html, /<style/i, `${file}: no <style>`)
    t.notMatch(html, /\sstyle=/i, `${file}: no style attribute`)
    t.notMatch(html, /\son[a-z]+=/i, `${file}: no event-handler attribute`)
    t.notMatch(html, /javascript:/i, `${file}: no javascript: URL`)
  }
})

t.test('bodies are limited per scope: agent forms, sign-in and webhooks', async (t) => {
  const { app, services, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const inbound = await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'x', from: '+31612345678', to: null, text: 'Hi', channel: 'sms' })
  const agent = await signedInAgent(app)
  const big = await agent.inject({ method: 'POST', url: `/tickets/${inbound.ticketId}/replies`, headers: FORM, payload: form({ body: 'x'.repeat(40 * 1024) }) })
  t.equal(big.statusCode, 413, 'a 40 KB reply form is refused')
  t.equal((await db.selectFrom('messages').select('id').where('kind', '=', 'reply').execute()).length, 0)

  const login = await app.inject({ method: 'POST', url: '/login', headers: FORM, payload: form({ email: 'a@example.com', password: 'x'.repeat(9 * 1024) }) })
  t.equal(login.statusCode, 413, 'a 9 KB sign-in form is refused')

  const hook = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ originator: '31612345678', payload: 'x'.repeat(70 * 1024), id: 'big' }) })
  t.equal(hook.statusCode, 413, 'a webhook over BODY_LIMIT_BYTES (64 KB) is refused')
  t.equal(hook.json().message, 'The request body is too large')
})

t.test('a reply records the agent who sent it, and the ticket page names them next to its status', async (t) => {
  const { app, services, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const inbound = await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'x', from: '+31612345678', to: null, text: 'Hi', channel: 'sms' })
  const ada = await signedInAgent(app, { email: 'ada@example.com', name: 'Ada Lovelace' })
  const grace = await signedInAgent(app, { email: 'grace@example.com', name: 'Grace Hopper' })
  await ada.inject({ method: 'POST', url: `/tickets/${inbound.ticketId}/replies`, headers: FORM, payload: form({ body: 'From Ada' }) })
  await grace.inject({ method: 'POST', url: `/tickets/${inbound.ticketId}/replies`, headers: FORM, payload: form({ body: 'From Grace' }) })
  // Three sends (the new ticket's confirmation and the two replies), one delivery report each:
  // wait for every report the simulator has due, not for the first two to land.
  t.equal(await services.worker.drain(), 3)
  await services.simulator?.idle()
  const replies = await db.selectFrom('messages').select(['body', 'agent_id', 'status']).where('kind', '=', 'reply').orderBy('body').execute()
  t.same(replies, [{ body: 'From Ada', agent_id: ada.id, status: 'delivered' }, { body: 'From Grace', agent_id: grace.id, status: 'delivered' }])
  const page = await ada.inject({ method: 'GET', url: `/tickets/${inbound.ticketId}`, headers: HTML })
  for (const [body, name] of [['From Ada', 'Ada Lovelace'], ['From Grace', 'Grace Hopper']]) {
    const item = new RegExp(`<div class="bubble">${body}</div>\\s*<div class="msg-meta">\\s*${name}[\\s\\S]*?class="status delivered"`)
    t.match(page.body, item, `${body} shows ${name} and its delivered status`)
  }
})

t.test('the simulator is not mounted with the messagebird channel', async (t) => {
  const { app } = await buildTestApp(t, { env: { ...FAST_HASH_ENV, SMS_CHANNEL: 'messagebird', MESSAGEBIRD_API_KEY: 'test_key', MESSAGEBIRD_ORIGINATOR: '3197010260000' } })
  const agent = await signedInAgent(app)
  for (const url of ['/simulator', '/simulator/conversation']) {
    t.equal((await agent.inject({ method: 'GET', url, headers: HTML })).statusCode, 404, url)
  }
  t.equal((await agent.inject({ method: 'POST', url: '/simulator/messages', headers: FORM, payload: form({ number: '+31612345678', text: 'fake' }) })).statusCode, 404)
})

t.test('hardening settings are validated with clear messages', async (t) => {
  const { loadConfig } = await import('../../src/config.js')
  t.throws(() => loadConfig({ LOGIN_MAX_FAILURES: '1' }), /LOGIN_MAX_FAILURES must be between 2 and 1000 \(got 1\)/)
  t.throws(() => loadConfig({ LOGIN_LOCKOUT_MINUTES: 'soon' }), /LOGIN_LOCKOUT_MINUTES must be a whole number/)
  t.throws(() => loadConfig({ WEBHOOK_RATE_LIMIT_PER_MINUTE: '0' }), /WEBHOOK_RATE_LIMIT_PER_MINUTE must be between 1 and/)
  t.throws(() => loadConfig({ TRUST_PROXY: 'the load balancer' }), /TRUST_PROXY must be true, false, a number of proxy hops, or a comma-separated list of proxy addresses/)
  t.equal(loadConfig({ TRUST_PROXY: '1' }).trustProxy, 1)
  t.equal(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).trustProxy, '10.0.0.0/8, 127.0.0.1')
  t.equal(loadConfig({}).trustProxy, false)
  const defaults = loadConfig({})
  t.same(defaults.login, { maxFailures: 10, maxFailuresPerIp: 50, lockoutMinutes: 15 })
  t.same(defaults.rateLimit, { webhooksPerMinute: 12_000, apiPerMinute: 300 })
  t.equal(loadConfig({ PUBLIC_URL: 'https://support.example.com' }).session.secureCookies, true, 'https implies Secure cookies')
  t.same(defaults.passwordHashes, { concurrency: 2, queue: 16 })
  t.throws(() => loadConfig({ PASSWORD_HASH_CONCURRENCY: '4' }), /PASSWORD_HASH_CONCURRENCY must be below the libuv thread pool size \(UV_THREADPOOL_SIZE, 4\)/)
  t.equal(loadConfig({ PASSWORD_HASH_CONCURRENCY: '4', UV_THREADPOOL_SIZE: '8' }).passwordHashes.concurrency, 4)
  t.equal(loadConfig({ UV_THREADPOOL_SIZE: '2' }).passwordHashes.concurrency, 1, 'the default leaves a thread free on a smaller pool')
  t.throws(() => loadConfig({ PASSWORD_HASH_QUEUE: 'lots' }), /PASSWORD_HASH_QUEUE must be a whole number/)
})

t.test('with TRUST_PROXY the client address comes from X-Forwarded-For, so throttling hits the real client', async (t) => {
  const { app, db } = await buildTestApp(t, { env: { ...FAST_HASH_ENV, TRUST_PROXY: '127.0.0.1' } })
  const { loginForm } = await import('./agent-session.js')
  const f = await loginForm(app)
  const attempt = async (remoteAddress: string, forwardedFor: string) => await app.inject({
    method: 'POST',
    url: '/login',
    remoteAddress,
    headers: { ...FORM, cookie: f.cookie, 'x-forwarded-for': forwardedFor },
    payload: form({ email: 'a@example.com', password: 'wrong password!', _csrf: f.csrf })
  })
  t.equal((await attempt('127.0.0.1', '203.0.113.50')).statusCode, 401)
  t.equal((await attempt('198.51.100.2', '192.0.2.99')).statusCode, 401)
  const keys = (await db.selectFrom('login_throttle').select('key').where('key', 'like', 'ip:%').orderBy('key').execute()).map((r) => r.key)
  t.same(keys, ['ip:198.51.100.2', 'ip:203.0.113.50'], 'the forwarded address behind the trusted proxy; an untrusted sender cannot spoof it')
})

t.test('every agent page and action, and the sign-in page, is sent with Cache-Control: no-store', async (t) => {
  const { appRoutes, concrete } = await import('./routes.js')
  const { app, services } = await buildTestApp(t, { env: FAST_HASH_ENV })
  await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'x', from: '+31612345678', to: null, text: 'Hi', channel: 'sms' })
  const agent = await signedInAgent(app)
  await app.ready()
  const routes = appRoutes(app).filter((r) => !r.url.startsWith('/webhooks/') && !r.url.startsWith('/api/') && !r.url.startsWith('/assets/'))
  t.ok(routes.length >= 20, `${routes.length} routes`)
  // Sign-out last: it ends the session the others use.
  routes.sort((a, b) => Number(a.url === '/logout') - Number(b.url === '/logout'))
  for (const route of routes) {
    const url = concrete(route.url)
    const clients: Array<[string, (o: InjectOptions) => Promise<LightMyRequestResponse>]> = [['anonymous', async (o) => await app.inject(o)], ['signed in', agent.inject]]
    for (const [who, inject] of clients) {
      const res = route.method === 'POST'
        ? await inject({ method: 'POST', url, headers: FORM, payload: form({ body: 'A reply', number: '+31612345678', text: 'Hi', mode: 'normal', channel: 'sms', address: '+31612345679' }) })
        : await inject({ method: route.method as 'GET', url, headers: HTML })
      t.equal(res.headers['cache-control'], 'no-store', `${route.method} ${route.url} (${who}): ${res.statusCode}`)
    }
  }
  const page = await app.inject({ method: 'GET', url: '/assets/app.css' })
  t.equal(page.headers['cache-control'], 'public, max-age=300', 'static assets keep their own policy')
})

t.test('with the simulator channel, production refuses to start unless allowed, and says why', async (t) => {
  const { execFile } = await import('node:child_process')
  const { join } = await import('node:path')
  const { loadConfig } = await import('../../src/config.js')
  t.throws(() => loadConfig({ NODE_ENV: 'production' }), /SMS_CHANNEL is simulator \(chosen because MESSAGEBIRD_API_KEY is not set\) in production \(NODE_ENV=production\)\. The simulator accepts every message and sends nothing/)
  t.throws(() => loadConfig({ NODE_ENV: 'production', SMS_CHANNEL: 'simulator' }), /set ALLOW_SIMULATOR_IN_PRODUCTION=true for a demonstration/)
  t.equal(loadConfig({ NODE_ENV: 'production', ALLOW_SIMULATOR_IN_PRODUCTION: 'true' }).smsChannel, 'simulator')
  t.equal(loadConfig({ NODE_ENV: 'development' }).smsChannel, 'simulator', 'development is unaffected')
  t.throws(() => loadConfig({ ALLOW_SIMULATOR_IN_PRODUCTION: 'maybe' }), /ALLOW_SIMULATOR_IN_PRODUCTION must be true or false/)

  // The server itself: exit code 78 (bad configuration) and the reason on stderr, before it listens.
  // The tap environment is kept (it configures the TypeScript loader); channel settings are not.
  const { MESSAGEBIRD_API_KEY: _k, SMS_CHANNEL: _c, ALLOW_SIMULATOR_IN_PRODUCTION: _a, ...inherited } = process.env
  const result = await new Promise<{ code: number | null, stderr: string }>((resolve) => {
    execFile(process.execPath, ['--import', 'file://' + join(process.cwd(), 'node_modules/@tapjs/typescript/dist/esm/import.mjs'), 'src/server.ts'],
      { env: { ...inherited, NODE_ENV: 'production', PORT: '0', DATABASE_URL: 'sqlite:/nonexistent/never-created.sqlite' } },
      (err, _stdout, stderr) => { resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? null, stderr }) })
  })
  t.equal(result.code, 78)
  t.match(result.stderr, /The simulator accepts every message and sends nothing/)
})
