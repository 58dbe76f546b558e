import nock from 'nock'
import t, { type Test } from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'
import { OPT_IN_CONFIRMATION, OPT_OUT_CONFIRMATION } from '../../src/tickets/keywords.js'
import { FAST_HASH_ENV, signedInAgent } from '../auth/agent-session.js'
import { FakeClock, form } from '../helper.js'
import { messagebirdApp } from './messagebird-sent.js'

// Automatic answers to HELP, START and STOP are limited per number and keyword, so nobody can use
// the service to text a number over and over. The text itself is always stored; only the answer
// is held back, and the ticket says why. What reached MessageBird's API (nock, under the real SDK)
// is the evidence of what was sent.

const PHONE = '+31612345678'
const HELP_TEXT = 'Acme support: reply with your question. Reply STOP to opt out.'
const MINUTE = 60_000

async function setup (t: Test, env: Record<string, string> = {}, opts: { clock?: FakeClock, databasePath?: string } = {}) {
  const clock = opts.clock ?? new FakeClock()
  const built = await messagebirdApp(t, { clock, databasePath: opts.databasePath, env: { ...FAST_HASH_ENV, SECURE_COOKIES: 'false', HELP_TEXT, ...env } })
  let n = 0
  const text = async (body: string, from = PHONE) => {
    const res = await built.app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ originator: from.slice(1), payload: body, id: `in-${Date.parse(clock.now().toISOString())}-${++n}` }) })
    if (res.statusCode !== 200) throw new Error(`webhook answered ${res.statusCode}: ${res.body}`)
    await built.drain()
    return res.json() as { ticket_id: number }
  }
  /** What went out to a number, in order. */
  const to = (phone = PHONE) => built.sent.filter((s) => s.recipients === phone.slice(1)).map((s) => s.body)
  const inbound = async () => await built.db.selectFrom('messages').select(['body', 'status_reason']).where('direction', '=', 'inbound').orderBy('created_at').orderBy('id').execute()
  const optedOut = async () => (await built.db.selectFrom('contacts').select('opted_out_at').where('phone', '=', PHONE).executeTakeFirstOrThrow()).opted_out_at !== null
  return { ...built, clock, text, to, inbound, optedOut }
}

t.test('HELP is answered once an hour per number; every HELP is stored, and the ticket says why no answer went out', async (t) => {
  const { app, text, to, inbound, clock } = await setup(t)
  const { ticket_id: ticketId } = await text('HELP')
  t.same(to(), [HELP_TEXT])
  for (let i = 0; i < 5; i++) {
    clock.advance(MINUTE)
    await text('help')
  }
  t.same(to(), [HELP_TEXT], 'five more HELPs within the hour: nothing more reached MessageBird')
  const held = (await inbound()).slice(1)
  t.equal(held.length, 5, 'every HELP is stored')
  t.ok(held.every((m) => m.status_reason === 'No automatic answer: HELP was already answered less than 1 hour ago (one answer per keyword and number every 1 hour).'))

  await text('HELP', '+31687654321')
  t.same(to('+31687654321'), [HELP_TEXT], 'another number has its own limit')

  clock.advance(56 * MINUTE)
  await text('HELP')
  t.same(to(), [HELP_TEXT, HELP_TEXT], 'an hour after the last answer, HELP is answered again')

  const agent = await signedInAgent(app)
  const page = await agent.inject({ method: 'GET', url: `/tickets/${ticketId}`, headers: { accept: 'text/html' } })
  t.match(page.body, /<div class="bubble">help<\/div>\s*<div class="msg-meta">\s*Customer[\s\S]*?<span class="reason received">No automatic answer: HELP was already answered less than 1 hour ago/, 'the ticket shows why')
})

t.test('START is answered only when it changes the consent', async (t) => {
  const { text, to, inbound, optedOut, clock } = await setup(t)
  await text('Hi')
  t.equal(to().length, 1, 'the ticket confirmation')
  clock.advance(MINUTE)
  await text('START')
  t.equal(to().length, 1, 'START from a number that never opted out gets no answer')
  t.equal((await inbound()).at(-1)?.status_reason, 'No automatic answer: START changed nothing, as this number had not opted out.')
  clock.advance(MINUTE)
  await text('STOP')
  t.equal(await optedOut(), true)
  clock.advance(MINUTE)
  await text('START')
  t.equal(await optedOut(), false)
  t.same(to().slice(1), [OPT_OUT_CONFIRMATION, OPT_IN_CONFIRMATION], 'START after STOP is confirmed')
  clock.advance(MINUTE)
  await text('unstop')
  t.equal(to().length, 3, 'a second START changes nothing and is not answered')
})

t.test('STOP is confirmed once per opt-out; STOP and START back and forth are held back by the interval, but always change the consent', async (t) => {
  const { text, to, inbound, optedOut, clock } = await setup(t)
  await text('STOP')
  clock.advance(MINUTE)
  await text('STOP')
  t.same(to(), [OPT_OUT_CONFIRMATION], 'one confirmation per opt-out')
  t.equal((await inbound()).at(-1)?.status_reason, 'No automatic answer: this number had already opted out, and an opt-out is confirmed once.')

  clock.advance(MINUTE)
  await text('START')
  t.same(to(), [OPT_OUT_CONFIRMATION, OPT_IN_CONFIRMATION])
  clock.advance(MINUTE)
  await text('STOP')
  t.equal(await optedOut(), true, 'the second STOP opts out')
  clock.advance(MINUTE)
  await text('START')
  t.equal(await optedOut(), false, 'the second START opts in')
  t.same(to(), [OPT_OUT_CONFIRMATION, OPT_IN_CONFIRMATION], 'but neither is answered within the hour')
  t.same((await inbound()).slice(-2).map((m) => m.status_reason), [
    'No automatic answer: STOP was already answered less than 1 hour ago (one answer per keyword and number every 1 hour).',
    'No automatic answer: START was already answered less than 1 hour ago (one answer per keyword and number every 1 hour).'
  ])
  t.equal((await inbound()).length, 5, 'every keyword is stored')
})

t.test('AUTO_REPLY_MAX_PER_DAY caps all keywords together in 24 hours; AUTO_REPLY_INTERVAL_MINUTES=0 lifts the per-keyword limit', async (t) => {
  const { text, to, inbound, clock } = await setup(t, { AUTO_REPLY_INTERVAL_MINUTES: '0', AUTO_REPLY_MAX_PER_DAY: '3' })
  await text('HELP')
  clock.advance(MINUTE)
  await text('HELP')
  clock.advance(MINUTE)
  await text('STOP')
  clock.advance(MINUTE)
  await text('START')
  t.same(to(), [HELP_TEXT, HELP_TEXT, OPT_OUT_CONFIRMATION], 'three answers, then none')
  t.equal((await inbound()).at(-1)?.status_reason, 'No automatic answer: this number already got 3 automatic answers within 24 hours.')
  clock.advance(24 * 60 * MINUTE)
  await text('HELP')
  t.same(to().length, 4, 'a new day, a new allowance')
})

t.test('the limits live in the database: they hold across a restart', async (t) => {
  const clock = new FakeClock()
  const first = await setup(t, {}, { clock })
  await first.text('HELP')
  t.same(first.to(), [HELP_TEXT])
  await first.app.close()
  nock.cleanAll()
  clock.advance(10 * MINUTE)
  const again = await setup(t, {}, { clock, databasePath: first.databasePath })
  await again.text('HELP')
  t.same([...first.to(), ...again.to()], [HELP_TEXT], 'the restarted service remembers the last answer')
  t.equal((await again.db.selectFrom('messages').select('id').where('kind', '=', 'help').execute()).length, 1, 'and queued nothing')
  t.match((await again.inbound()).at(-1)?.status_reason, /already answered less than 1 hour ago/)
})

t.test('HELPs arriving together get one answer', async (t) => {
  const { app, sent, drain, inbound } = await setup(t)
  const results = await Promise.all(Array.from({ length: 6 }, async (_, i) => await app.inject({
    method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ originator: PHONE.slice(1), payload: 'HELP', id: `burst-${i}` })
  })))
  t.ok(results.every((r) => r.statusCode === 200))
  await drain()
  t.equal(sent.length, 1)
  t.equal((await inbound()).length, 6)
})

t.test('the limits are validated at start-up', async (t) => {
  const problems = (env: Record<string, string>): string[] => {
    try {
      loadConfig({ NODE_ENV: 'test', ...env })
      return []
    } catch (err) {
      return err instanceof ConfigError ? err.problems : [String(err)]
    }
  }
  t.same(loadConfig({ NODE_ENV: 'test' }).autoReply, { intervalMinutes: 60, maxPerDay: 5 }, 'the defaults')
  t.match(problems({ AUTO_REPLY_INTERVAL_MINUTES: 'hourly' }), [/AUTO_REPLY_INTERVAL_MINUTES must be a whole number between 0 and 10080/])
  t.match(problems({ AUTO_REPLY_INTERVAL_MINUTES: '10081' }), [/AUTO_REPLY_INTERVAL_MINUTES must be between 0 and 10080/])
  t.match(problems({ AUTO_REPLY_MAX_PER_DAY: '0' }), [/AUTO_REPLY_MAX_PER_DAY must be between 1 and 1000/])
})
