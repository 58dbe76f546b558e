import { once } from 'node:events'
import t from 'tap'
import { addressThrottleKey } from '../../src/auth/login-throttle.js'
import { buildTestApp, FakeClock, form } from '../helper.js'
import { createAgent, FAST_HASH_ENV, loginForm, PASSWORD, postLogin } from './agent-session.js'

// Parallel guesses must get exactly the password checks the same guesses one after another would
// get: the attempt is counted before its hash runs. Hashes are counted at the gate every password
// check passes through (services.passwordHashes), not inferred from answers.

const ENV = { ...FAST_HASH_ENV, LOGIN_MAX_FAILURES: '4', LOGIN_MAX_FAILURES_PER_IP: '6', LOGIN_LOCKOUT_MINUTES: '15', PASSWORD_HASH_QUEUE: '1000' }
const WRONG = 'definitely not it!'
const BURST = 50

function countHashes (services: { passwordHashes: NodeJS.EventEmitter }): { readonly n: number } {
  const counter = { n: 0 }
  services.passwordHashes.on('hash', () => { counter.n++ })
  return counter
}

function tally (codes: number[]): Record<number, number> {
  const out: Record<number, number> = {}
  for (const c of codes) out[c] = (out[c] ?? 0) + 1
  return out
}

t.test('a burst of parallel guesses on one account gets exactly the checks the limit allows, and the right password after the limit does not sign in', async (t) => {
  const clock = new FakeClock()
  const { app, services, db } = await buildTestApp(t, { clock, env: { ...ENV, LOGIN_MAX_FAILURES_PER_IP: '1000' } })
  await createAgent(services)
  const login = await loginForm(app)
  const hashes = countHashes(services)
  const burst = async (passwords: string[]) => await Promise.all(passwords.map(async (password) => await postLogin(app, login, { email: 'ada@example.com', password })))

  // LOGIN_MAX_FAILURES=4 slows down from failure 2 (half the limit): two checks at once, then a
  // 1 s wait that every other guess in the burst meets.
  const first = await burst(Array(BURST).fill(WRONG))
  t.equal(hashes.n, 2, 'two password checks for 50 parallel guesses')
  t.same(tally(first.map((r) => r.statusCode)), { 401: 2, 429: BURST - 2 })
  for (const r of first.filter((r) => r.statusCode === 429)) {
    t.match(r.body, /Too many failed sign-in attempts\. Wait 1 second before trying again/)
    t.equal(r.headers['retry-after'], '1')
  }

  clock.advance(1000)
  t.same(tally((await burst(Array(BURST).fill(WRONG))).map((r) => r.statusCode)), { 401: 1, 429: BURST - 1 }, 'one check per wait in the slowdown')
  clock.advance(2000)
  const last = await burst(Array(BURST).fill(WRONG))
  t.same(tally(last.map((r) => r.statusCode)), { 401: 1, 429: BURST - 1 })
  t.equal(hashes.n, 4, 'LOGIN_MAX_FAILURES checks in all')
  t.match(last.find((r) => r.statusCode === 401)?.body, /Sign-in is blocked for 15 minutes/)

  clock.advance(60_000)
  const withRight = await burst([...Array(BURST - 1).fill(WRONG), PASSWORD])
  t.equal(hashes.n, 4, 'no check once locked out')
  t.same(tally(withRight.map((r) => r.statusCode)), { 429: BURST })
  for (const r of withRight) t.match(r.body, /Too many failed sign-in attempts\. Sign-in is blocked for 14 minutes/)
  t.equal((await db.selectFrom('sessions').select('id').execute()).length, 0, 'the right password inside the burst did not sign in')
})

t.test('a burst of parallel guesses from one address across accounts gets exactly the checks its limit allows', async (t) => {
  const clock = new FakeClock()
  const { app, services, db } = await buildTestApp(t, { clock, env: ENV })
  await createAgent(services)
  const login = await loginForm(app)
  // Unknown emails cost a decoy hash; make it once, outside the count.
  await postLogin(app, login, { email: 'warm-up@example.com', password: WRONG }, { ip: '192.0.2.1' })
  const hashes = countHashes(services)
  let n = 0
  const burst = async (ip: string) => await Promise.all(Array.from({ length: BURST }, async () => await postLogin(app, login, { email: `guess${++n}@example.com`, password: WRONG }, { ip })))

  // LOGIN_MAX_FAILURES_PER_IP=6 slows down from failure 3: waits of 1, 2 and 4 s, then the lockout.
  const attacker = '203.0.113.9'
  t.same(tally((await burst(attacker)).map((r) => r.statusCode)), { 401: 3, 429: BURST - 3 })
  for (const wait of [1000, 2000, 4000]) {
    clock.advance(wait)
    t.same(tally((await burst(attacker)).map((r) => r.statusCode)), { 401: 1, 429: BURST - 1 }, `one check after ${wait} ms`)
  }
  t.equal(hashes.n, 6, 'LOGIN_MAX_FAILURES_PER_IP checks in all')
  const row = await db.selectFrom('login_throttle').select('failures').where('key', '=', addressThrottleKey(attacker)).executeTakeFirstOrThrow()
  t.equal(row.failures, 6)

  clock.advance(60_000)
  const right = await Promise.all(Array.from({ length: 10 }, async () => await postLogin(app, login, { email: 'ada@example.com', password: PASSWORD }, { ip: attacker })))
  t.same(tally(right.map((r) => r.statusCode)), { 429: 10 }, 'the real account from the locked address is refused')
  t.match(right[0].body, /Sign-in is blocked for/)
  t.equal(hashes.n, 6)
  t.equal((await postLogin(app, login, { email: 'ada@example.com', password: PASSWORD }, { ip: '198.51.100.7' })).statusCode, 303, 'from elsewhere it works')
})

t.test('a right password gives its reserved attempt back: parallel sign-ins of one office do not lock it out', async (t) => {
  const clock = new FakeClock()
  const { app, services, db } = await buildTestApp(t, { clock, env: ENV })
  const login = await loginForm(app)
  for (let i = 1; i <= 12; i++) await createAgent(services, { email: `agent${i}@example.com`, name: `Agent ${i}` })
  const office = '198.51.100.20'
  // Twelve colleagues behind one address sign in at once: more than LOGIN_MAX_FAILURES_PER_IP (6),
  // but a successful check is not a failure, so no wait ever builds up past half the limit.
  const all = await Promise.all(Array.from({ length: 12 }, async (_, i) => await postLogin(app, login, { email: `agent${i + 1}@example.com`, password: PASSWORD }, { ip: office })))
  const codes = tally(all.map((r) => r.statusCode))
  t.ok((codes[303] ?? 0) >= 3, `at least half the limit sign in at once (${JSON.stringify(codes)})`)
  t.equal((codes[303] ?? 0) + (codes[429] ?? 0), 12, 'the others are asked to wait, never told they failed')
  t.equal(await db.selectFrom('login_throttle').select('key').where('key', '=', addressThrottleKey(office)).executeTakeFirst(), undefined, 'no failure is left counted against the address')
})

t.test('password checks are bounded process-wide: extra sign-ins wait in a short queue or get 503, and webhooks are not held up', async (t) => {
  const { app, services, db } = await buildTestApp(t, { env: { ...ENV, LOGIN_MAX_FAILURES: '1000', PASSWORD_HASH_CONCURRENCY: '1', PASSWORD_HASH_QUEUE: '3' } })
  await createAgent(services)
  const login = await loginForm(app)
  const gate = services.passwordHashes

  // The one hash slot is taken, as by a slow check already running.
  let release = (): void => {}
  const holding = gate.run(async () => await new Promise<void>((resolve) => { release = resolve }))
  t.equal(gate.active, 1)

  // Ten sign-ins from ten addresses, with a generous account limit: the throttle lets each through.
  const queuedAll = (async () => { while (gate.queued < 3) await once(gate, 'queued') })()
  const answered: number[] = []
  let sevenAnswered = (): void => {}
  const refusedAll = new Promise<void>((resolve) => { sevenAnswered = resolve })
  const attempts = Array.from({ length: 10 }, (_, i) => postLogin(app, login, { email: 'ada@example.com', password: WRONG }, { ip: `192.0.2.${i + 10}` })
    .then((res) => {
      answered.push(i)
      if (answered.length === 7) sevenAnswered()
      return res
    }))
  await queuedAll
  await refusedAll

  const hook = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ originator: '31612345678', payload: 'Hello during a burst', id: 'burst-1' }) })
  t.equal(hook.statusCode, 200, 'the webhook is answered')
  t.equal(gate.queued, 3, '...while three password checks are still waiting for their turn')
  t.equal(answered.length, 7, '...and their sign-ins are not answered yet')
  t.equal(gate.active, 1, 'never more hashes at once than PASSWORD_HASH_CONCURRENCY')

  for (const res of await Promise.all(answered.map(async (i) => await attempts[i]))) {
    t.equal(res.statusCode, 503, 'the seven beyond the queue were refused at once')
    t.equal(res.headers['retry-after'], '1')
    t.match(res.body, /Sign-in is busy right now/)
  }

  release()
  await holding
  const all = await Promise.all(attempts)
  t.same(tally(all.map((r) => r.statusCode)), { 401: 3, 503: 7 }, 'the queued three were checked in turn')
  const counted = await db.selectFrom('login_throttle').select('key').where('key', 'like', 'ip:%').execute()
  t.equal(counted.length, 3, 'a sign-in that was never checked is not counted against its address')
})
