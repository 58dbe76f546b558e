import { createHash, randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import { sql } from 'kysely'
import t, { type Test } from 'tap'
import type { Db } from '../../src/db/database.js'
import { buildTestApp, FakeClock, form, refuseInserts } from '../helper.js'
import { ManualChannel } from '../messaging/failover-helpers.js'

// A signed webhook's jti is spent in the same commit as what the webhook stores (invariant 2).
// A failure or a crash between verification and that commit must leave the jti unspent, so
// MessageBird's retry with the same token is accepted, and stored once.

const KEY = 'fixture-signing-key-0001'
const BASE = 'https://support.example.com'
const ENV = { MESSAGEBIRD_SIGNING_KEY: KEY, PUBLIC_URL: BASE }
const NOW = '2026-01-01T09:00:00.000Z'
const FORM = 'application/x-www-form-urlencoded'

const sha256 = (data: string): string => createHash('sha256').update(data).digest('hex')

/** A token as MessageBird makes one: for this URL and body, valid for 60 s from NOW. */
async function mint (url: string, body?: string): Promise<string> {
  const nbf = Math.floor(Date.parse(NOW) / 1000)
  const claims: Record<string, unknown> = { jti: randomUUID(), url_hash: sha256(url) }
  if (body !== undefined) claims.payload_hash = sha256(body)
  return await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuer('MessageBird')
    .setNotBefore(nbf).setExpirationTime(nbf + 60).sign(new TextEncoder().encode(KEY))
}

interface Signed { method: 'GET' | 'POST', url: string, body?: string, type?: string, token: string }

async function signedInbound (id: string, text = 'Where is my order?'): Promise<Signed> {
  const body = form({ originator: '31612345678', payload: text, id })
  return { method: 'POST', url: '/webhooks/messagebird', body, type: FORM, token: await mint(BASE + '/webhooks/messagebird', body) }
}

async function signedReport (reference: string): Promise<Signed> {
  const url = '/webhooks/messagebird/status?' + form({ id: 'mb-report-1', reference, recipient: '31612345678', status: 'delivered', statusDatetime: '2026-01-01T09:00:01+00:00' })
  return { method: 'GET', url, token: await mint(BASE + url) }
}

async function app (t: Test, databasePath?: string) {
  const channel = new ManualChannel()
  return { ...await buildTestApp(t, { clock: new FakeClock(NOW), env: ENV, channel, databasePath }), channel }
}

async function send (target: Awaited<ReturnType<typeof app>>['app'], r: Signed) {
  const headers: Record<string, string> = { 'messagebird-signature-jwt': r.token }
  if (r.type !== undefined) headers['content-type'] = r.type
  return await target.inject({ method: r.method, url: r.url, headers, payload: r.body })
}

async function stored (db: Db) {
  const count = async (q: string): Promise<number> => Number((await sql<{ n: number }>`${sql.raw(q)}`.execute(db)).rows[0].n)
  return {
    inbound: await count("select count(*) n from messages where direction = 'inbound'"),
    events: await count("select count(*) n from message_events where source = 'messagebird'"),
    jtis: await count('select count(*) n from webhook_jtis')
  }
}

/** An outbound message the provider accepted, so a delivery report has something to match. */
async function sentMessage (built: Awaited<ReturnType<typeof app>>): Promise<string> {
  const inbound = await built.services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'setup', from: '+31612345678', to: null, text: 'hello', channel: 'sms' })
  await built.services.worker.drain()
  const confirmation = await built.db.selectFrom('messages').select(['id', 'status']).where('ticket_id', '=', inbound.ticketId).where('direction', '=', 'outbound').executeTakeFirstOrThrow()
  if (confirmation.status !== 'sent') throw new Error(`setup: confirmation is ${confirmation.status}`)
  return confirmation.id
}

t.test('a failure inside the unit that stores an inbound text leaves its jti unspent; the retry is stored once', async (t) => {
  const built = await app(t)
  const request = await signedInbound('mb-in-1')
  // The database refuses the write after the signature was verified (a full disk, say).
  const repaired = await refuseInserts(built.db, 'messages', 'disk I/O error (test)')
  const failed = await send(built.app, request)
  t.equal(failed.statusCode, 500)
  t.same(await stored(built.db), { inbound: 0, events: 0, jtis: 0 }, 'neither the text nor the jti was kept')

  await repaired()
  const retry = await send(built.app, request)
  t.equal(retry.statusCode, 200, 'MessageBird\'s retry with the same token is accepted')
  t.same(await stored(built.db), { inbound: 1, events: 0, jtis: 1 })
  t.equal((await send(built.app, request)).statusCode, 401, 'and now the token is spent')
})

t.test('a failure inside the unit that stores a delivery report leaves its jti unspent; the retry is stored once', async (t) => {
  const built = await app(t)
  const request = await signedReport(await sentMessage(built))
  const repaired = await refuseInserts(built.db, 'message_events', 'disk I/O error (test)')
  t.equal((await send(built.app, request)).statusCode, 500)
  t.same(await stored(built.db), { inbound: 1, events: 0, jtis: 0 })

  await repaired()
  const retry = await send(built.app, request)
  t.equal(retry.statusCode, 200)
  t.same(retry.json(), { ok: true, matched: true })
  t.same(await stored(built.db), { inbound: 1, events: 1, jtis: 1 })
  t.equal((await built.db.selectFrom('messages').select('status').where('direction', '=', 'outbound').executeTakeFirstOrThrow()).status, 'delivered')
})

for (const kind of ['inbound text', 'delivery report'] as const) {
  t.test(`the database closing between verification and storing (${kind}): after a restart, the retry with the same token is accepted and stored once`, async (t) => {
    const first = await app(t)
    const request = kind === 'inbound text' ? await signedInbound('mb-in-2') : await signedReport(await sentMessage(first))
    // The process loses its database after the signature check, before the handler stores anything.
    const { tickets, status, db } = first.services
    const receive = tickets.receiveInbound.bind(tickets)
    const apply = status.applyReport.bind(status)
    tickets.receiveInbound = async (...args) => { await db.destroy(); return await receive(...args) }
    status.applyReport = async (...args) => { await db.destroy(); return await apply(...args) }
    t.equal((await send(first.app, request)).statusCode, 500)

    const restarted = await app(t, first.databasePath)
    const retry = await send(restarted.app, request)
    t.equal(retry.statusCode, 200, 'the retry is not taken for a replay')
    t.same(await stored(restarted.db), kind === 'inbound text' ? { inbound: 1, events: 0, jtis: 1 } : { inbound: 1, events: 1, jtis: 1 })
    t.equal((await send(restarted.app, request)).statusCode, 401, 'and a replay after that is refused')
  })
}

t.test('the same token twice at the same moment: one is stored, the other refused as a replay', async (t) => {
  const built = await app(t)
  const request = await signedInbound('mb-in-3')
  const [a, b] = await Promise.all([send(built.app, request), send(built.app, request)])
  t.same([a.statusCode, b.statusCode].sort(), [200, 401])
  t.match([a, b].find((r) => r.statusCode === 401)?.json(), { error: 'INVALID_SIGNATURE', message: /already been used/ })
  t.same(await stored(built.db), { inbound: 1, events: 0, jtis: 1 })
})

t.test('an event that stores nothing still spends its token before the 200', async (t) => {
  const built = await app(t)
  const body = JSON.stringify({ type: 'conversation.updated', message: { id: 'c-1', status: 'x' } })
  const request: Signed = { method: 'POST', url: '/webhooks/messagebird/conversations', body, type: 'application/json', token: await mint(BASE + '/webhooks/messagebird/conversations', body) }
  const first = await send(built.app, request)
  t.equal(first.statusCode, 200)
  t.match(first.json(), { ok: true, ignored: /conversation.updated/ })
  t.same(await stored(built.db), { inbound: 0, events: 0, jtis: 1 })
  t.equal((await send(built.app, request)).statusCode, 401)
})
