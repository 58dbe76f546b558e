import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { buildTestApp } from '../helper.js'
import { createAgent, FAST_HASH_ENV, loginForm, signIn } from '../auth/agent-session.js'
import { appRoutes, snapshot, type RouteEntry } from '../auth/routes.js'

// Every route of the app, from its own route tree, gets malformed and hostile bodies and query
// strings, anonymous and with credentials. Nothing may answer 5xx (MessageBird retries a 5xx
// forever) and nothing may be stored. Deterministic: a seeded generator, the same every run.

const ENV = {
  ...FAST_HASH_ENV,
  API_RATE_LIMIT_PER_MINUTE: '1000000',
  WEBHOOK_RATE_LIMIT_PER_MINUTE: '1000000',
  LOGIN_MAX_FAILURES: '1000',
  LOGIN_MAX_FAILURES_PER_IP: '100000',
  PASSWORD_HASH_QUEUE: '10000'
}

/** mulberry32: a small seeded generator, so every run sends the same requests. */
function generator (seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

// Field names the app reads anywhere, and names that attack objects.
const FIELDS = ['originator', 'sender', 'from', 'payload', 'body', 'message', 'text', 'receiver', 'recipient', 'to', 'id', 'message_id',
  'status', 'reference', 'statusDatetime', 'price[amount]', 'messagePartCount', 'type', 'contact', 'conversation', 'content', 'channel',
  'number', 'mode', 'email', 'password', 'password2', 'name', 'next', '_csrf', 'token', 'address', 'failover', 'cursor', 'closed',
  'template', 'workflow', 'condition_status', 'expiry_time', 'data', 'event']
const EVIL_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '', '\u0000', 'a\u0000b', 'x'.repeat(300)]

// No value here is valid for any field that leads to storing something: no phone number parses,
// no text is both non-blank and within a limit, no id exists.
const STRINGS = ['', ' ', '\t\n', '\u0000', '\u0000\u0000+31612345678', '+31\u000012345678', '\uD800', '\uDFFF\uD800', '\u202E\u0000',
  'x'.repeat(5000), '9'.repeat(40), '-1', '0x10', 'NaN', 'Infinity', '1e309', '../../../etc/passwd', '%00', '%FF%FE']
const SCALARS: unknown[] = [null, true, false, 0, -1, 1.5, -0, 1e308, Number.MAX_SAFE_INTEGER + 2, ...STRINGS]

function deepArray (n: number): string { return '['.repeat(n) + ']'.repeat(n) }
function deepObject (n: number): string { return '{"a":'.repeat(n) + '1' + '}'.repeat(n) }

function randomValue (rnd: () => number, depth: number): unknown {
  const r = rnd()
  if (depth > 4 || r < 0.55) return SCALARS[Math.floor(rnd() * SCALARS.length)]
  if (r < 0.75) return Array.from({ length: Math.floor(rnd() * 4) }, () => randomValue(rnd, depth + 1))
  return randomObject(rnd, depth + 1)
}

function randomObject (rnd: () => number, depth: number): Record<string, unknown> {
  // A null-prototype object, so `__proto__` becomes a real key of the JSON we send.
  const o: Record<string, unknown> = Object.create(null)
  const n = 1 + Math.floor(rnd() * 6)
  for (let i = 0; i < n; i++) {
    const keys = rnd() < 0.8 ? FIELDS : EVIL_KEYS
    o[keys[Math.floor(rnd() * keys.length)]] = randomValue(rnd, depth)
  }
  return o
}

/** Percent-encodes every byte (encodeURIComponent throws on lone surrogates). */
function enc (value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? ''
  return [...Buffer.from(text, 'utf8')].map((b) => '%' + b.toString(16).padStart(2, '0')).join('')
}

function randomPairs (rnd: () => number): string {
  return Object.entries(randomObject(rnd, 3)).map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&')
}

interface Hostile { name: string, headers: Record<string, string>, payload?: string | Buffer }

const json = (name: string, payload: string | Buffer): Hostile => ({ name, headers: { 'content-type': 'application/json' }, payload })
const formBody = (name: string, payload: string | Buffer): Hostile => ({ name, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload })
const invalidUtf8 = Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82, 0xed, 0xa0, 0x80])

/**
 * Requests that would be accepted and stored but for a nest thousands of levels deep in a field
 * nobody reads: recursive code (the idempotency canonicaliser, the event log's serialiser) would
 * overflow the stack on them. `sentId` is the provider id of a message the app sent.
 */
function validButDeep (sentId: string): Hostile[] {
  const deep = deepArray(15_000)
  return [
    json('a valid API message with a deep extra field', `{"to":"+31612345679","text":"Your order is ready","extra":${deep}}`),
    json('a valid dispatch with a deep extra field', `{"template":"failover","workflow":[{"to":{"type":"sms","number":"+31612345679"},"message":{"content":{"type":"text","text":"Ready"}}}],"extra":${deep}}`),
    json('a valid inbound SMS with a deep extra field', `{"originator":"31612345679","payload":"Hello","id":"deep-1","extra":${deep}}`),
    json('a status update of a sent message with a deep extra field', `{"type":"message.updated","message":{"id":${JSON.stringify(sentId)},"status":"delivered","extra":${deep}}}`)
  ]
}

function hostileBodies (rnd: () => number, sentId: string): Hostile[] {
  const fixed: Hostile[] = [
    ...validButDeep(sentId),
    json('deeply nested arrays', deepArray(20_000)),
    json('deeply nested objects', deepObject(5_000)),
    json('nested just past the limit', `{"to":${deepArray(40)}}`),
    json('huge array', `[${Array(25_000).fill('1').join(',')}]`),
    json('huge workflow', JSON.stringify({ template: 'failover', workflow: Array(4_000).fill({ to: { type: 'sms', number: 'x' } }) })),
    json('many keys', JSON.stringify(Object.fromEntries(Array.from({ length: 3_000 }, (_, i) => [`k${i}`, i])))),
    json('__proto__ key', '{"__proto__":{"polluted":true},"to":"x"}'),
    json('constructor.prototype key', '{"constructor":{"prototype":{"polluted":true}}}'),
    json('nested __proto__', '{"workflow":[{"__proto__":{"isAdmin":true}}]}'),
    json('invalid JSON', '{"originator":'),
    json('JSON null', 'null'),
    json('JSON string', '"just a string"'),
    json('JSON number', '12345'),
    json('NUL bytes', '{"text":"\\u0000","body":"\\u0000","to":"\\u0000","email":"\\u0000@x","originator":"\\u0000"}'),
    json('raw NUL byte', Buffer.from('{"text":"a\u0000b"}')),
    json('invalid UTF-8 in a value', Buffer.concat([Buffer.from('{"text":"'), invalidUtf8, Buffer.from('","to":"'), invalidUtf8, Buffer.from('"}')])),
    json('lone surrogates', '{"text":"\\ud800","body":"\\udfff","email":"\\ud800@example.com"}'),
    json('very long string', JSON.stringify({ text: 'x'.repeat(60_000) })),
    json('empty body', ''),
    formBody('form with prototype keys', '__proto__[polluted]=1&constructor[prototype][polluted]=1&__proto__=x'),
    formBody('form with repeated keys', 'body=a&body=b&email=a&email=b&number=1&number=2&originator=1&originator=2'),
    formBody('form with NUL bytes', 'body=%00&email=%00&password=%00&number=%00&originator=%00&payload=%00'),
    formBody('form with invalid percent-encoding', 'body=%E0%A4%A&email=%&password=%ZZ&number=%C3%28&originator=%FF%FE'),
    formBody('form with invalid UTF-8 bytes', Buffer.concat([Buffer.from('body='), invalidUtf8, Buffer.from('&originator='), invalidUtf8])),
    formBody('form with a JSON body', '{"body":"hi"}'),
    formBody('form with a very long value', `body=${'x'.repeat(60_000)}`),
    formBody('empty form', ''),
    { name: 'text/plain', headers: { 'content-type': 'text/plain' }, payload: 'hello' },
    { name: 'xml', headers: { 'content-type': 'application/xml' }, payload: '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "a">]><x>&a;</x>' },
    { name: 'multipart', headers: { 'content-type': 'multipart/form-data; boundary=x' }, payload: '--x\r\nContent-Disposition: form-data; name="body"\r\n\r\nhi\r\n--x--' },
    { name: 'JSON in UTF-16', headers: { 'content-type': 'application/json; charset=utf-16' }, payload: Buffer.from('{"a":1}', 'utf16le') },
    { name: 'malformed content type', headers: { 'content-type': ';;;=/' }, payload: 'x' },
    { name: 'no content type', headers: {}, payload: 'body=hi' },
    { name: 'no body at all', headers: {} }
  ]
  const random = Array.from({ length: 12 }, (_, i) => json(`random JSON ${i}`, JSON.stringify(randomObject(rnd, 0))))
  const randomForms = Array.from({ length: 6 }, (_, i) => formBody(`random form ${i}`, randomPairs(rnd)))
  return [...fixed, ...random, ...randomForms]
}

function hostileQueries (rnd: () => number): string[] {
  const fixed = [
    '', '?next=' + 'x'.repeat(10_000), '?cursor[]=a&cursor[]=b', '?cursor=%00', '?closed=-1', '?closed=1e309', '?number=%00',
    '?number=%FF%FE', '?number=' + '9'.repeat(100), '?__proto__[polluted]=1', '?constructor[prototype][polluted]=1', '?a=%E0%A4%A',
    '?id=%00&status=%00', '?id=x&status=delivered&statusDatetime=not-a-date&price[amount]=NaN&messagePartCount=-1',
    '?originator=%00&payload=%00', '?originator=' + 'x'.repeat(5000), '?' + 'a=1&'.repeat(2000), '?%=%', '?=&&=', '?next=//evil.example'
  ]
  const random = Array.from({ length: 6 }, () => '?' + randomPairs(rnd))
  return [...fixed, ...random]
}

// Parameter values: one that does not exist (state-changing routes must find nothing to change),
// and hostile ones. GET routes also get the seeded ticket, so real pages see hostile queries.
const HOSTILE_PARAMS = ['999999', '-1', 'abc', '1.5', '9'.repeat(40), '%00', '..%2f..%2fpackage.json', 'x'.repeat(2000), '%FF']

function urlsFor (route: RouteEntry): string[] {
  if (!route.url.includes(':') && !route.url.includes('*')) return [route.url]
  const safe = route.method === 'GET' || route.method === 'HEAD'
  const values = safe ? ['1', ...HOSTILE_PARAMS] : HOSTILE_PARAMS
  return values.map((v) => route.url.replace(/:[A-Za-z_]+/g, v).replace(/\*/g, v))
}

t.test('hostile bodies and query strings on every route: no 5xx, nothing stored', async (t) => {
  // Simulated delivery reports would land in the middle of the run: they wait ten minutes.
  const { app, services, db } = await buildTestApp(t, { env: { ...ENV, SIMULATOR_DELIVERY_DELAY_MS: '600000' } })
  await createAgent(services)
  const seeded = await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'seed', from: '+31612345678', to: null, text: 'Where is my order?', channel: 'sms' })
  t.equal(seeded.ticketId, 1)
  await services.worker.drain()
  const sent = await db.selectFrom('messages').select('provider_message_id').where('direction', '=', 'outbound').executeTakeFirstOrThrow()
  t.match(sent.provider_message_id, /^sim-/, 'the confirmation was sent')
  const session = await signIn(app, 'ada@example.com')
  const { key } = await services.apiKeys.create('fuzz')
  t.equal((await app.inject({ method: 'GET', url: '/api/v1/messages/x', headers: { authorization: `Bearer ${key}` } })).statusCode, 404, 'the key works')
  const login = await loginForm(app)
  // Running, as in production: /readyz answers 200 then (with no worker it answers 503 by design).
  services.worker.start()
  await app.ready()

  type Credentials = Record<string, string>
  const credentialsFor = (url: string): Array<[string, Credentials]> => {
    if (url.startsWith('/webhooks/')) return [['anonymous', {}]]
    // With an Idempotency-Key, so accepted bodies are canonicalised as well.
    if (url.startsWith('/api/')) return [['anonymous', {}], ['API key', { authorization: `Bearer ${key}`, 'idempotency-key': 'fuzz-1' }]]
    if (url === '/login' || url === '/setup' || url.startsWith('/assets/')) return [['anonymous', {}], ['sign-in form', { cookie: login.cookie, 'x-csrf-token': login.csrf }]]
    // Signing out with a valid session is what /logout is for, whatever the body says.
    if (url === '/logout') return [['anonymous', {}]]
    return [['anonymous', {}], ['signed in', { cookie: session.cookie, 'x-csrf-token': session.csrfToken }]]
  }

  const routes = appRoutes(app)
  t.ok(routes.length >= 25, `${routes.length} routes`)
  const rnd = generator(0x7e57de5c)
  const bodies = hostileBodies(rnd, sent.provider_message_id as string)
  const queries = hostileQueries(rnd)
  const before = await snapshot(db)
  let requests = 0
  const failures: string[] = []
  const send = async (opts: InjectOptions, what: string): Promise<LightMyRequestResponse> => {
    const res = await app.inject(opts)
    requests++
    if (res.statusCode >= 500) failures.push(`${what} → ${res.statusCode} ${res.body.slice(0, 200)}`)
    return res
  }

  for (const route of routes) {
    const safe = route.method === 'GET' || route.method === 'HEAD' || route.method === 'OPTIONS'
    const [plain, ...hostileParams] = urlsFor(route)
    for (const [who, credentials] of credentialsFor(route.url)) {
      const accept = rnd() < 0.5 ? 'text/html' : 'application/json'
      const get = async (url: string, query: string) => await send({ method: route.method as 'GET', url: url + query, headers: { accept, ...credentials } }, `${route.method} ${url.slice(0, 60)}${query.slice(0, 60)} (${who})`)
      const post = async (url: string, body: Hostile, query = '') => await send({ method: route.method as 'POST', url: url + query, headers: { accept, ...credentials, ...body.headers }, ...(body.payload !== undefined ? { payload: body.payload } : {}) },
        `${route.method} ${url.slice(0, 60)}${query.slice(0, 40)} ${body.name} (${who})`)
      // HEAD runs the GET handler: a sample is enough. Hostile parameters get one request each.
      if (safe) {
        for (const query of route.method === 'HEAD' ? queries.slice(0, 4) : queries) await get(plain, query)
        for (const url of hostileParams) await get(url, '')
      } else {
        for (const body of bodies) await post(plain, body, rnd() < 0.2 ? queries[Math.floor(rnd() * queries.length)] : '')
        for (const url of hostileParams) await post(url, bodies[Math.floor(rnd() * bodies.length)])
      }
    }
  }

  t.same(failures, [], `no 5xx in ${requests} requests`)
  const after = await snapshot(db)
  // Failed sign-in attempts are counted by design, whatever was typed, and opening a ticket page
  // marks it read for the agent (the team inbox's unread); nothing else may change.
  delete before.login_throttle
  delete after.login_throttle
  delete before.agent_ticket_reads
  delete after.agent_ticket_reads
  t.same(after, before, 'no table changed')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype was not polluted')
  t.equal((Object.prototype as Record<string, unknown>).isAdmin, undefined)
})

t.test('a body nested too deep, or with a prototype key, gets a 400 that says so, on every scope that takes JSON', async (t) => {
  const { app, services, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const { key } = await services.apiKeys.create('depth')
  await createAgent(services)
  const session = await signIn(app, 'ada@example.com')
  // The first use of a key records when it was used: make it before the snapshot.
  await app.inject({ method: 'GET', url: '/api/v1/messages/x', headers: { authorization: `Bearer ${key}` } })
  const before = await snapshot(db)
  const targets: Array<{ url: string, headers: Record<string, string> }> = [
    { url: '/webhooks/messagebird', headers: {} },
    { url: '/webhooks/messagebird/conversations', headers: {} },
    { url: '/api/v1/messages', headers: { authorization: `Bearer ${key}`, 'idempotency-key': 'k1' } },
    { url: '/tickets/1/replies', headers: { cookie: session.cookie, 'x-csrf-token': session.csrfToken } }
  ]
  const nested = (levels: number) => `{"to":"+31612345679","text":"hi","originator":"31612345679","payload":"hi","x":${deepArray(levels - 1)}}`
  for (const { url, headers } of targets) {
    const deep = await app.inject({ method: 'POST', url, headers: { ...headers, 'content-type': 'application/json' }, payload: nested(33) })
    t.equal(deep.statusCode, 400, `${url}: 33 levels`)
    t.equal(deep.json().message, 'The JSON body is nested more than 32 levels deep.')
    const proto = await app.inject({ method: 'POST', url, headers: { ...headers, 'content-type': 'application/json' }, payload: '{"originator":"31612345679","payload":"hi","__proto__":{"x":1}}' })
    t.equal(proto.statusCode, 400, `${url}: __proto__`)
    t.match(proto.json().message, /key named "__proto__"/)
  }
  t.same(await snapshot(db), before, 'nothing stored')
  const ok = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/json' }, payload: nested(32) })
  t.equal(ok.statusCode, 200, '32 levels are accepted')
})

t.test('while no agent exists, the first-run form takes hostile bodies without a 5xx and creates nobody', async (t) => {
  const { app, db, services } = await buildTestApp(t, { env: ENV })
  const login = await loginForm(app)
  const bodies = hostileBodies(generator(0x5e7), 'none')
  const failures: string[] = []
  for (const [who, headers, ip] of [
    ['this machine', { cookie: login.cookie, 'x-csrf-token': login.csrf }, undefined],
    ['another machine', { cookie: login.cookie, 'x-csrf-token': login.csrf }, '203.0.113.5'],
    ['anonymous', {}, '203.0.113.5']
  ] as const) {
    for (const body of bodies) {
      const res = await app.inject({ method: 'POST', url: '/setup', remoteAddress: ip, headers: { accept: 'text/html', ...headers, ...body.headers }, ...(body.payload !== undefined ? { payload: body.payload } : {}) })
      if (res.statusCode >= 500) failures.push(`${body.name} (${who}) → ${res.statusCode}`)
    }
  }
  t.same(failures, [])
  t.equal((await db.selectFrom('agents').select('id').execute()).length, 0, 'no agent was created')
  t.equal(await services.firstRun.isOpen(), true)
})

t.test('a NUL character in a path, query or body gets a 400 that says so, on every scope, and nothing is stored', async (t) => {
  // PostgreSQL cannot store U+0000 in text, so without the check at the edge these were 5xx there.
  const { app, services, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const { key } = await services.apiKeys.create('nul')
  await createAgent(services)
  await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'seed', from: '+31612345678', to: null, text: 'Hi', channel: 'sms' })
  const session = await signIn(app, 'ada@example.com')
  const login = await loginForm(app)
  await app.inject({ method: 'GET', url: '/api/v1/messages/x', headers: { authorization: `Bearer ${key}` } })
  const before = await snapshot(db)
  const api = { authorization: `Bearer ${key}`, 'idempotency-key': 'nul-1' }
  const agent = { cookie: session.cookie, 'x-csrf-token': session.csrfToken }
  const form = { 'content-type': 'application/x-www-form-urlencoded' }
  const json = { 'content-type': 'application/json' }
  const cases: Array<[string, InjectOptions]> = [
    ['inbound SMS, form body', { method: 'POST', url: '/webhooks/messagebird', headers: form, payload: 'originator=31612345679&payload=a%00b' }],
    ['inbound SMS, JSON key', { method: 'POST', url: '/webhooks/messagebird', headers: json, payload: '{"originator":"31612345679","payload":"hi","x\\u0000":1}' }],
    ['inbound SMS, query', { method: 'GET', url: '/webhooks/messagebird?originator=31612345679&payload=%00' }],
    ['status report, query', { method: 'GET', url: '/webhooks/messagebird/status?id=%00&status=delivered' }],
    ['API message, path', { method: 'GET', url: '/api/v1/messages/%00', headers: api }],
    ['API send, JSON body', { method: 'POST', url: '/api/v1/messages', headers: { ...api, ...json }, payload: '{"to":"+31612345679","text":"a\\u0000b"}' }],
    ['reply form', { method: 'POST', url: '/tickets/1/replies', headers: { ...agent, ...form }, payload: 'body=a%00b' }],
    ['sign-in form', { method: 'POST', url: '/login', headers: { cookie: login.cookie, 'x-csrf-token': login.csrf, ...form }, payload: 'email=%00&password=x' }]
  ]
  for (const [what, options] of cases) {
    const res = await app.inject(options)
    t.equal(res.statusCode, 400, `${what}: 400`)
    t.equal(res.json().message, 'The request contains a NUL character (U+0000), which no field accepts.', `${what}: says why`)
  }
  const after = await snapshot(db)
  t.same(after, before, 'nothing stored, not even a sign-in attempt')
  const fine = await app.inject({ method: 'POST', url: '/tickets/1/replies', headers: { ...agent, ...form, accept: 'application/json' }, payload: 'body=' + encodeURIComponent('a\u2400b') })
  t.ok(fine.statusCode < 400, 'the visible NUL symbol (U+2400) is ordinary text')
})
