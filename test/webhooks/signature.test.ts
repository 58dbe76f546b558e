import { createHash, randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import t, { type Test } from 'tap'
import { SignatureError, signingKey, verifyMessageBirdSignature } from '../../src/messaging/messagebird-signature.js'
import { snapshot } from '../auth/routes.js'
import { buildTestApp, FakeClock, form } from '../helper.js'

const KEY = 'fixture-signing-key-0001'
const BASE = 'https://support.example.com'
const ENV = { MESSAGEBIRD_SIGNING_KEY: KEY, PUBLIC_URL: BASE }
const NOW = '2026-01-01T09:00:00.000Z'
const FORM = 'application/x-www-form-urlencoded'

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex')
const seconds = (iso: string): number => Math.floor(Date.parse(iso) / 1000)

interface Mint {
  url: string
  body?: string
  key?: string
  alg?: 'HS256' | 'HS384' | 'HS512'
  jti?: string | null
  nbf?: number | null
  exp?: number | null
  iss?: string | null
  urlHash?: string | null
  payloadHash?: string | null
}

/** A token as MessageBird makes one (providers.md §3a): nbf = now, exp = now + 60 s. */
async function mint (opts: Mint): Promise<string> {
  const now = seconds(NOW)
  const claims: Record<string, unknown> = {}
  if (opts.jti !== null) claims.jti = opts.jti ?? randomUUID()
  if (opts.urlHash !== null) claims.url_hash = opts.urlHash ?? sha256(opts.url)
  const payloadHash = opts.payloadHash === undefined ? (opts.body === undefined || opts.body === '' ? undefined : sha256(opts.body)) : opts.payloadHash
  if (payloadHash !== null && payloadHash !== undefined) claims.payload_hash = payloadHash
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: opts.alg ?? 'HS256', typ: 'JWT' })
  if (opts.iss !== null) jwt = jwt.setIssuer(opts.iss ?? 'MessageBird')
  if (opts.nbf !== null) jwt = jwt.setNotBefore(opts.nbf ?? now)
  if (opts.exp !== null) jwt = jwt.setExpirationTime(opts.exp ?? now + 60)
  return await jwt.sign(new TextEncoder().encode(opts.key ?? KEY))
}

async function signedApp (t: Test, env: Record<string, string> = ENV) {
  const clock = new FakeClock(NOW)
  return { ...await buildTestApp(t, { clock, env }), clock }
}

// The three shapes MessageBird uses, with the body bytes exactly as signed.
const inboundForm = (id: string) => ({ method: 'POST' as const, path: '/webhooks/messagebird', type: FORM, body: form({ originator: '31612345678', payload: 'Where is my order?', receiver: '3197010260000', id }) })
const inboundJson = (id: string) => ({ method: 'POST' as const, path: '/webhooks/messagebird', type: 'application/json', body: JSON.stringify({ originator: '31612345678', body: 'JSON hello', id }) })
const statusGet = (id: string) => ({ method: 'GET' as const, path: '/webhooks/messagebird/status?' + form({ id, reference: 'unknown-ref', recipient: '31612345678', status: 'delivered', statusDatetime: '2026-01-01T09:00:00+00:00' }), type: undefined, body: undefined })
type Shape = ReturnType<typeof inboundForm> | ReturnType<typeof statusGet>

async function send (app: Awaited<ReturnType<typeof signedApp>>['app'], shape: Shape, token: string | undefined, opts: { body?: string, path?: string, headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) }
  if (shape.type !== undefined) headers['content-type'] = shape.type
  if (token !== undefined) headers['messagebird-signature-jwt'] = token
  return await app.inject({ method: shape.method, url: opts.path ?? shape.path, headers, payload: opts.body ?? shape.body })
}

const shapes = [['form POST', inboundForm], ['JSON POST', inboundJson], ['GET delivery report', statusGet]] as const

for (const [label, make] of shapes) {
  t.test(`${label}: a valid signature is accepted; every kind of bad one is refused with 401 and stores nothing`, async (t) => {
    const { app, db, clock } = await signedApp(t)
    const shape = make('msg-' + label.replace(/\W/g, ''))
    const url = BASE + shape.path
    const now = seconds(NOW)

    const bad: Array<[string, string | undefined, { body?: string, path?: string }?]> = [
      ['missing header', undefined],
      ['empty header', ''],
      ['garbage', 'not.a.jwt'],
      ['wrong key', await mint({ url, body: shape.body, key: 'someone-elses-key' })],
      ['wrong issuer', await mint({ url, body: shape.body, iss: 'Mallory' })],
      ['no issuer', await mint({ url, body: shape.body, iss: null })],
      ['expired', await mint({ url, body: shape.body, nbf: now - 120, exp: now - 6 })],
      ['not yet valid', await mint({ url, body: shape.body, nbf: now + 6, exp: now + 66 })],
      ['no nbf', await mint({ url, body: shape.body, nbf: null })],
      ['no exp', await mint({ url, body: shape.body, exp: null })],
      ['no jti', await mint({ url, body: shape.body, jti: null })],
      ['no url_hash', await mint({ url, body: shape.body, urlHash: null })],
      ['http instead of https', await mint({ url: url.replace('https:', 'http:'), body: shape.body })],
      ['another port', await mint({ url: url.replace('example.com', 'example.com:8443'), body: shape.body })],
      ['another path', await mint({ url: url.replace('/webhooks/messagebird', '/webhooks/other'), body: shape.body })],
      ['another query', await mint({ url: url + (url.includes('?') ? '&x=1' : '?x=1'), body: shape.body }), { path: shape.path + (shape.path.includes('?') ? '&x=2' : '?x=2') }]
    ]
    if (shape.body !== undefined) {
      bad.push(['tampered body', await mint({ url, body: shape.body }), { body: shape.body.replace('31612345678', '31699999999') }])
      bad.push(['body without payload_hash', await mint({ url, payloadHash: null })])
    } else {
      bad.push(['payload_hash for an empty body', await mint({ url, payloadHash: sha256('x') })])
    }
    if (shape.path.includes('?')) {
      const [path, query] = shape.path.split('?')
      const reordered = path + '?' + query.split('&').reverse().join('&')
      bad.push(['query parameters reordered', await mint({ url, body: shape.body }), { path: reordered }])
    }

    const before = await snapshot(db)
    for (const [name, token, opts] of bad) {
      const res = await send(app, shape, token, opts)
      t.equal(res.statusCode, 401, `${name}: 401`)
      t.equal(res.json().error, 'INVALID_SIGNATURE', `${name}: JSON error`)
      t.match(res.json().message, /MessageBird-Signature-JWT/)
    }
    t.same(await snapshot(db), before, 'nothing was stored, not even a jti')

    const token = await mint({ url, body: shape.body })
    const ok = await send(app, shape, token)
    t.equal(ok.statusCode, 200, 'a valid token is accepted')
    t.equal(ok.json().ok, true)
    const replay = await send(app, shape, token)
    t.equal(replay.statusCode, 401, 'the same token again is a replay')
    t.match(replay.json().message, /already been used/)

    const sameJti = await mint({ url, body: shape.body, jti: (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { jti: string }).jti })
    t.equal((await send(app, shape, sameJti)).statusCode, 401, 'a new token reusing a jti is a replay too')

    clock.advance(4000)
    t.equal((await send(app, shape, await mint({ url, body: shape.body, exp: now + 1 }))).statusCode, 200, 'a few seconds of clock skew are tolerated')
  })
}

t.test('HS384 and HS512 tokens are accepted; alg none is not', async (t) => {
  const { app } = await signedApp(t)
  for (const alg of ['HS384', 'HS512'] as const) {
    const shape = inboundForm('alg-' + alg)
    t.equal((await send(app, shape, await mint({ url: BASE + shape.path, body: shape.body, alg }))).statusCode, 200, alg)
  }
  const shape = inboundForm('alg-none')
  const claims = Buffer.from(JSON.stringify({ iss: 'MessageBird', jti: randomUUID(), nbf: seconds(NOW), exp: seconds(NOW) + 60, url_hash: sha256(BASE + shape.path), payload_hash: sha256(shape.body) })).toString('base64url')
  const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${claims}.`
  t.equal((await send(app, shape, unsigned)).statusCode, 401)
})

t.test('conversations and inbound GET webhooks need a signature too', async (t) => {
  const { app, db } = await signedApp(t)
  const body = JSON.stringify({ type: 'message.created', message: { id: 'c-1', status: 'received', direction: 'received', platform: 'sms', from: '31612345678', content: { text: 'hi' } } })
  const conv = { method: 'POST' as const, path: '/webhooks/messagebird/conversations', type: 'application/json', body }
  t.equal((await send(app, conv, undefined)).statusCode, 401)
  t.equal((await send(app, { ...conv, path: '/webhooks/messagebird/status' }, undefined)).statusCode, 401)
  const get = { method: 'GET' as const, path: '/webhooks/messagebird?' + form({ originator: '31612345678', payload: 'GET hi', id: 'g-1' }), type: undefined, body: undefined }
  t.equal((await send(app, get, undefined)).statusCode, 401)
  t.equal((await db.selectFrom('messages').select('id').execute()).length, 0)
  t.equal((await send(app, get, await mint({ url: BASE + get.path }))).statusCode, 200)
  t.equal((await send(app, conv, await mint({ url: BASE + conv.path, body }))).statusCode, 200)
})

t.test('without PUBLIC_URL the URL is rebuilt from the request: scheme and Host with its port', async (t) => {
  const { app } = await signedApp(t, { MESSAGEBIRD_SIGNING_KEY: KEY })
  const shape = inboundForm('host-1')
  const host = { host: 'support.internal:8080' }
  t.equal((await send(app, shape, await mint({ url: 'http://support.internal/webhooks/messagebird', body: shape.body }), { headers: host })).statusCode, 401, 'the port is part of the URL')
  t.equal((await send(app, shape, await mint({ url: 'http://support.internal:8080/webhooks/messagebird', body: shape.body }), { headers: host })).statusCode, 200)
})

t.test('behind a proxy, PUBLIC_URL (with a path prefix) is what counts', async (t) => {
  const { app } = await signedApp(t, { MESSAGEBIRD_SIGNING_KEY: KEY, PUBLIC_URL: 'https://example.org/textdesk/' })
  const shape = inboundForm('proxy-1')
  const res = await send(app, shape, await mint({ url: 'https://example.org/textdesk/webhooks/messagebird', body: shape.body }), { headers: { host: '10.0.0.5:3000' } })
  t.equal(res.statusCode, 200)
})

t.test('a signed request that is refused stores no jti, so the provider can retry it', async (t) => {
  const { app, db } = await signedApp(t)
  const shape = { ...inboundForm('x'), body: form({ payload: 'no originator' }) }
  const token = await mint({ url: BASE + shape.path, body: shape.body })
  const first = await send(app, shape, token)
  t.equal(first.statusCode, 400)
  t.equal((await db.selectFrom('webhook_jtis').select('jti').execute()).length, 0, 'the jti is spent only with what the request stores')
  const retry = await send(app, shape, token)
  t.equal(retry.statusCode, 400, 'the retry is judged on its content again, not refused as a replay')
})

t.test('used jtis are kept until their token expires, then purged', async (t) => {
  const { app, db, clock } = await signedApp(t)
  const first = inboundForm('p-1')
  t.equal((await send(app, first, await mint({ url: BASE + first.path, body: first.body }))).statusCode, 200)
  const row = await db.selectFrom('webhook_jtis').selectAll().executeTakeFirstOrThrow()
  t.equal(row.expires_at, new Date((seconds(NOW) + 65) * 1000).toISOString(), 'exp plus the clock tolerance')
  clock.advance(120_000)
  const second = inboundForm('p-2')
  const nowS = seconds(clock.now().toISOString())
  t.equal((await send(app, second, await mint({ url: BASE + second.path, body: second.body, nbf: nowS, exp: nowS + 60 }))).statusCode, 200)
  const rows = await db.selectFrom('webhook_jtis').select('jti').execute()
  t.equal(rows.length, 1, 'the expired jti was purged')
})

t.test('the fixed test vectors from providers.md §3a verify', async (t) => {
  const key = signingKey(KEY)
  const now = new Date('2026-01-01T00:00:30Z')
  const inboundBody = 'originator=31612345678&payload=Where+is+my+order%3F&receiver=3197010260000&id=0c2f9c4b6d1e4a7f8b3c5d6e7f8a9b0c'
  const inboundToken = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJqdGkiOiIxMTExMTExMS0yMjIyLTQzMzMtODQ0NC01NTU1NTU1NTU1NTUiLCJ1cmxfaGFzaCI6IjFjZTYwNzdjZWQzYjk2NWYzYzAwNTFhNDFkYzJhODZiNmQzZjg0MjdlZTc5Y2I0YmY5Y2MyYjM0ZDQwOTIxZmQiLCJwYXlsb2FkX2hhc2giOiI5YjE0MzRiNjk5MDY3M2UwMzMxYTNjOTk1ZDgwMmY2ZjdlNjdlNjMwMTFkMjYyN2UwNmYzYTYzYWE0NTVjZDNlIiwiaXNzIjoiTWVzc2FnZUJpcmQiLCJuYmYiOjE3NjcyMjU2MDAsImV4cCI6MTc2NzIyNTY2MH0.svEc5jaolO91bEuv04-5as_R-zj0zLE2Zs5WvsskH6Q'
  const verified = await verifyMessageBirdSignature({ url: 'https://support.example.com/webhooks/messagebird/inbound', body: Buffer.from(inboundBody), token: inboundToken, key, now })
  t.equal(verified.jti, '11111111-2222-4333-8444-555555555555')
  const failure = async (p: Promise<unknown>): Promise<unknown> => await p.then(() => 'accepted', (err: SignatureError) => err.failure)
  t.equal(await failure(verifyMessageBirdSignature({ url: 'https://support.example.com/webhooks/messagebird/inbound', body: Buffer.from(inboundBody + 'x'), token: inboundToken, key, now })), 'wrong-body')
  t.equal(await failure(verifyMessageBirdSignature({ url: 'http://support.example.com/webhooks/messagebird/inbound', body: Buffer.from(inboundBody), token: inboundToken, key, now })), 'wrong-url')
  t.equal(await failure(verifyMessageBirdSignature({ url: 'https://support.example.com/webhooks/messagebird/inbound', body: Buffer.from(inboundBody), token: inboundToken, key, now: new Date('2026-01-01T00:01:06Z') })), 'expired')
  t.equal(await failure(verifyMessageBirdSignature({ url: 'https://support.example.com/webhooks/messagebird/inbound', body: Buffer.from(inboundBody), token: inboundToken, key, now: new Date('2025-12-31T23:59:54Z') })), 'not-yet-valid')
  t.equal(await failure(verifyMessageBirdSignature({ url: 'https://support.example.com/webhooks/messagebird/inbound', body: Buffer.from(inboundBody), token: inboundToken, key: signingKey('other'), now })), 'bad-signature')

  // The delivery-report vector, end to end through the app.
  const clock = new FakeClock('2026-01-01T00:00:30Z')
  const { app, db } = await buildTestApp(t, { clock, env: ENV })
  const path = '/webhooks/messagebird/status?id=b2c3d4e5f60718293a4b5c6d7e8f9012&mccmnc=20416&ported=0&recipient=31612345678&reference=ticket-42&status=delivered&statusDatetime=2026-01-01T00%3A00%3A05%2B00%3A00'
  const dlrToken = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJqdGkiOiI2NjY2NjY2Ni03Nzc3LTQ4ODgtOTk5OS0wMDAwMDAwMDAwMDAiLCJ1cmxfaGFzaCI6ImYyMjYwYTgzYTI1NTk3YTIyMGExYjU2M2JiOWM5MmI1OGE5ZjgwMTJhYWVhMjhmNDgwNzhhZmJhZmRmNjFiZGUiLCJpc3MiOiJNZXNzYWdlQmlyZCIsIm5iZiI6MTc2NzIyNTYwMCwiZXhwIjoxNzY3MjI1NjYwfQ.4dsTTxwCcvlBaB-FUHliIVJ8vssjbdqZW47sPaOPECA'
  const res = await app.inject({ method: 'GET', url: path, headers: { 'messagebird-signature-jwt': dlrToken } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { ok: true, matched: false })
  t.same((await db.selectFrom('webhook_jtis').select('jti').execute()).map((r) => r.jti), ['66666666-7777-4888-9999-000000000000'])
})

t.test('without a signing key, webhooks are accepted unsigned (the server warns at start-up)', async (t) => {
  const { app } = await signedApp(t, {})
  const shape = inboundForm('unsigned-1')
  t.equal((await send(app, shape, undefined)).statusCode, 200)
})

t.test('webhooks are rate limited per address', async (t) => {
  const { app } = await signedApp(t, { WEBHOOK_RATE_LIMIT_PER_MINUTE: '3' })
  const codes: number[] = []
  for (let i = 0; i < 4; i++) codes.push((await send(app, inboundForm(`rl-${i}`), undefined)).statusCode)
  t.same(codes, [200, 200, 200, 429])
  const limited = await send(app, inboundForm('rl-x'), undefined)
  t.equal(limited.json().error, 'RATE_LIMITED')
  t.ok(Number(limited.headers['retry-after']) > 0)
  const other = await app.inject({ method: 'POST', url: '/webhooks/messagebird', remoteAddress: '198.51.100.1', headers: { 'content-type': FORM }, payload: inboundForm('rl-other').body })
  t.equal(other.statusCode, 200, 'another address has its own budget')
  t.equal((await app.inject({ method: 'GET', url: '/login', headers: { accept: 'text/html' } })).statusCode, 200, 'agent pages are not counted against the webhook limit')
})
