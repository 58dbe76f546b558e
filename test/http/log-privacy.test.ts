import { createHash, randomUUID } from 'node:crypto'
import { Writable } from 'node:stream'
import { SignJWT } from 'jose'
import t, { type Test } from 'tap'
import { buildApp, loggerOptions } from '../../src/app.js'
import { maskPhoneNumbers } from '../../src/http/log-privacy.js'
import { createAgent, signIn } from '../auth/agent-session.js'
import { FakeClock, form, freshDatabase, testConfig } from '../helper.js'

// The real app with its real logger options (pino, at trace level) writing to a stream the test
// reads: a customer's text and full number must never appear in any line.

const NUMBER = '31612345678'
const INBOUND_TEXT = 'My card number is in this secret text'
const SECOND_TEXT = 'Another private sentence from the customer'
const REPLY_TEXT = 'Here is your confidential answer from the agent'
const KEY = 'fixture-signing-key-0001'

async function loggedApp (t: Test, env: Record<string, string> = {}) {
  const { db, databaseUrl } = await freshDatabase(t)
  const config = testConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: 'trace', ...env })
  const lines: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'))
      done()
    }
  })
  const options = loggerOptions(config)
  if (typeof options !== 'object' || options === null) throw new Error('the test needs logger options')
  const app = await buildApp({ config, db, clock: new FakeClock(), logger: { ...options, stream } })
  t.teardown(async () => await app.close())
  return { app, db, services: app.services, lines }
}

function assertClean (t: Test, lines: string[]): void {
  const log = lines.join('')
  for (const secret of [INBOUND_TEXT, SECOND_TEXT, REPLY_TEXT, 'secret+text', 'secret%20text']) {
    t.notOk(log.includes(secret), `the log does not contain "${secret}"`)
  }
  for (const number of [NUMBER, `+${NUMBER}`, `%2B${NUMBER}`, '612345678']) {
    t.notOk(log.includes(number), `the log does not contain ${number}`)
  }
}

t.test('a conversation leaves neither its text nor the full number in the log', async (t) => {
  const { app, db, services, lines } = await loggedApp(t, { SIMULATOR_DELIVERY_DELAY_MS: '600000' })
  await createAgent(services)
  const agent = await signIn(app, 'ada@example.com')

  // Inbound by GET (Flow Builder), with the text and number in the query string, and by POST.
  const get = await app.inject({ method: 'GET', url: '/webhooks/messagebird?' + form({ originator: NUMBER, payload: INBOUND_TEXT, id: 'mb-1', receiver: '3197010260000' }) })
  t.equal(get.statusCode, 200)
  const post = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ originator: `+${NUMBER}`, payload: SECOND_TEXT, id: 'mb-2' }) })
  t.equal(post.statusCode, 200)
  const ticketId = get.json().ticket_id as number

  const reply = await agent.inject({ method: 'POST', url: `/tickets/${ticketId}/replies`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ body: REPLY_TEXT }) })
  t.equal(reply.statusCode, 303)
  await services.worker.drain()

  // Delivery reports (GET) carry the full number, and here the text too; one matches, one does not.
  const sent = await db.selectFrom('messages').select(['id', 'provider_message_id']).where('body', '=', REPLY_TEXT).executeTakeFirstOrThrow()
  const report = { id: sent.provider_message_id as string, reference: sent.id, recipient: NUMBER, status: 'delivered', statusDatetime: '2026-01-01T09:00:00+00:00', message: INBOUND_TEXT }
  t.equal((await app.inject({ method: 'GET', url: '/webhooks/messagebird/status?' + form(report) })).json().matched, true)
  t.equal((await app.inject({ method: 'GET', url: '/webhooks/messagebird/status?' + form({ ...report, id: 'unknown', reference: 'unknown' }) })).json().matched, false)
  // An agent page with the number in its query string, and a refused webhook.
  t.equal((await agent.inject({ method: 'GET', url: `/simulator?number=%2B${NUMBER}` })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: `/webhooks/messagebird?originator=not-a-number&payload=${encodeURIComponent(INBOUND_TEXT)}&receiver=${NUMBER}` })).statusCode, 400)

  t.ok(lines.length > 20, `${lines.length} log lines were written`)
  const log = lines.join('')
  t.match(log, /"url":"\/webhooks\/messagebird\/status"/, 'request lines keep the path')
  t.match(log, /\+3161\*\*\*\*678/, 'the ticket service logs the number masked')
  assertClean(t, lines)
})

t.test('a webhook refused for a wrong URL logs the path it was sent to, without the query', async (t) => {
  const { app, lines } = await loggedApp(t, { MESSAGEBIRD_SIGNING_KEY: KEY, PUBLIC_URL: 'https://support.example.com' })
  const path = '/webhooks/messagebird?' + form({ originator: NUMBER, payload: INBOUND_TEXT, id: 'mb-3' })
  const now = Math.floor(Date.parse('2026-01-01T09:00:00.000Z') / 1000)
  const token = await new SignJWT({ jti: randomUUID(), url_hash: createHash('sha256').update('https://elsewhere.example.com' + path).digest('hex') })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuer('MessageBird').setNotBefore(now).setExpirationTime(now + 60)
    .sign(new TextEncoder().encode(KEY))
  const res = await app.inject({ method: 'GET', url: path, headers: { 'messagebird-signature-jwt': token } })
  t.equal(res.statusCode, 401)
  const refused = lines.find((l) => l.includes('webhook refused'))
  t.match(refused, /"reason":"wrong-url","url":"https:\/\/support\.example\.com\/webhooks\/messagebird"/)
  assertClean(t, lines)
})

t.test('phone numbers are masked in any finished line; ids, times and counters are not', async (t) => {
  const cases: Array<[string, string]> = [
    ['{"msg":"from +31612345678"}', '{"msg":"from +3161****678"}'],
    ['{"url":"/x?to=%2B31612345678"}', '{"url":"/x?to=%2B3161****678"}'],
    ['{"msg":"call 31612345678."}', '{"msg":"call 3161****678."}'],
    ['{"msg":"or 0031612345678, thanks"}', '{"msg":"or 0031****678, thanks"}'],
    ['{"msg":"short +1234567 and 612345678"}', '{"msg":"short +****567 and 61****678"}'],
    ['{"err":"\\"+447700900123\\" is not valid"}', '{"err":"\\"+4477****123\\" is not valid"}']
  ]
  for (const [line, masked] of cases) t.equal(maskPhoneNumbers(line), masked, line)
  const untouched = [
    '{"level":30,"time":1767258000000,"pid":12345,"reqId":"req-1","responseTime":12.345678901}',
    '{"messageId":"01935234-7c3e-7000-8000-123456789012","providerMessageId":"sim-12345678-aaaa"}',
    '{"ticketId":12345678901,"when":"2026-01-01T09:00:00.000Z","ip":"203.0.113.9"}',
    '{"id":"a1b2c3d4e5f67890123456789abcdef0"}'
  ]
  for (const line of untouched) t.equal(maskPhoneNumbers(line), line, line)
})
