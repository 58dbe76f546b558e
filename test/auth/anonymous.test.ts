import t from 'tap'
import { buildTestApp, form } from '../helper.js'
import { createAgent, FAST_HASH_ENV } from './agent-session.js'
import { appRoutes, concrete, snapshot } from './routes.js'

// Reachable without a session on purpose (health checks answer load balancers). Webhooks authenticate by signature (test/webhooks)
// and the JSON API by API key; everything else must belong to a signed-in agent.
// POST /setup answers 404 once an agent exists (test/auth/first-run.test.ts).
const PUBLIC = new Set(['GET /login', 'HEAD /login', 'POST /login', 'POST /setup', 'GET /assets/:name', 'HEAD /assets/:name', 'GET /healthz', 'HEAD /healthz', 'GET /readyz', 'HEAD /readyz'])
const OWN_AUTH_PREFIXES = ['/webhooks/', '/api/']

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS'])
const BODY = form({ body: 'Hello from nowhere', text: 'STOP', number: '+31612345678', mode: 'failing', email: 'x@example.com', password: 'whatever' })

t.test('every agent route refuses anonymous requests and changes nothing', async (t) => {
  const { app, services, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  await createAgent(services)
  await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'seed-1', from: '+31612345678', to: null, text: 'Where is my order?', channel: 'sms' })
  await app.ready()

  const routes = appRoutes(app)
  const keys = routes.map((r) => `${r.method} ${r.url}`)
  // The tree parser must see the app as it is; if Fastify's format changes, fail loudly here.
  for (const known of ['GET /inbox', 'GET /inbox/list', 'GET /tickets/:id', 'POST /tickets/:id/replies', 'POST /logout', 'POST /login', 'GET /simulator']) {
    t.ok(keys.includes(known), `route list includes ${known}`)
  }

  const guarded = routes.filter((r) => !PUBLIC.has(`${r.method} ${r.url}`) && !OWN_AUTH_PREFIXES.some((p) => r.url.startsWith(p)))
  t.ok(guarded.length >= 12, `${guarded.length} guarded routes`)
  const before = await snapshot(db)
  const modeBefore = services.simulator?.getMode('+31612345678')

  for (const route of guarded) {
    const url = concrete(route.url)
    const name = `${route.method} ${route.url}`
    if (SAFE.has(route.method)) {
      const page = await app.inject({ method: route.method as 'GET', url, headers: { accept: 'text/html,application/xhtml+xml' } })
      t.equal(page.statusCode, 303, `${name} (browser) redirects`)
      t.equal(page.headers.location, `/login?next=${encodeURIComponent(url)}`, `${name} comes back after sign-in`)
      t.notMatch(page.body, /Where is my order/, `${name} shows no customer data`)

      const fetch = await app.inject({ method: route.method as 'GET', url, headers: { accept: 'application/json' } })
      t.equal(fetch.statusCode, 401, `${name} (fetch) is 401`)
      if (route.method === 'GET') t.equal(fetch.json().error, 'UNAUTHENTICATED')
    } else {
      const posted = await app.inject({ method: route.method as 'POST', url, headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' }, payload: BODY })
      t.equal(posted.statusCode, 401, `${name} (form) is 401`)
      t.match(posted.body, /not signed in/, `${name} explains why`)
      t.notMatch(posted.body, /Where is my order/)

      const json = await app.inject({ method: route.method as 'POST', url, headers: { 'content-type': 'application/json' }, payload: { body: 'hi', text: 'hi', number: '+31612345678', mode: 'failing' } })
      t.equal(json.statusCode, 401, `${name} (JSON) is 401`)
    }
  }

  t.same(await snapshot(db), before, 'no table changed')
  t.equal(services.simulator?.getMode('+31612345678'), modeBefore, 'the simulator state did not change')
})

t.test('public routes stay public and reveal nothing', async (t) => {
  const { app } = await buildTestApp(t, { env: FAST_HASH_ENV })
  t.equal((await app.inject({ method: 'GET', url: '/assets/app.js' })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/assets/app.css' })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/login', headers: { accept: 'text/html' } })).statusCode, 200)
})

t.test('unknown addresses get the same bland 404, as HTML for browsers and JSON otherwise', async (t) => {
  const { app } = await buildTestApp(t, { env: FAST_HASH_ENV })
  for (const url of ['/nope', '/tickets/1/nope', '/assets/../package.json', '/assets/secret.env', '/.env', '/webhooks/nope']) {
    const html = await app.inject({ method: 'GET', url, headers: { accept: 'text/html' } })
    t.equal(html.statusCode, 404, url)
    t.match(html.headers['content-type'], /text\/html/)
    t.match(html.body, /There is nothing at this address/)
    t.notMatch(html.body, /Route|GET:|fastify|node_modules|stack/i, `${url}: no framework details`)
    const json = await app.inject({ method: 'GET', url })
    t.equal(json.statusCode, 404)
    t.same(json.json(), { statusCode: 404, error: 'NOT_FOUND', message: 'There is nothing at this address.' })
  }
})
