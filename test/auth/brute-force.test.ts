import t from 'tap'
import { accountThrottleKey } from '../../src/auth/login-throttle.js'
import { buildTestApp, FakeClock } from '../helper.js'
import { createAgent, FAST_HASH_ENV, loginForm, PASSWORD, postLogin } from './agent-session.js'

const ENV = { ...FAST_HASH_ENV, LOGIN_MAX_FAILURES: '4', LOGIN_MAX_FAILURES_PER_IP: '6', LOGIN_LOCKOUT_MINUTES: '15' }
const WRONG = 'definitely not it!'

t.test('failures on one account are slowed down, then refused for the lockout period, even with the right password', async (t) => {
  const clock = new FakeClock()
  const { app, services, db } = await buildTestApp(t, { clock, env: ENV })
  await createAgent(services)
  const attempt = async (password: string) => await postLogin(app, await loginForm(app), { email: 'ada@example.com', password })

  t.equal((await attempt(WRONG)).statusCode, 401, 'failure 1')
  const second = await attempt(WRONG)
  t.equal(second.statusCode, 401, 'failure 2')
  t.match(second.body, /Wait 1 second before trying again/, 'the slowdown is announced')

  const tooSoon = await attempt(PASSWORD)
  t.equal(tooSoon.statusCode, 429, 'even the right password must wait')
  t.equal(tooSoon.headers['retry-after'], '1')
  t.match(tooSoon.body, /Too many failed sign-in attempts\. Wait 1 second/)
  t.equal((await db.selectFrom('login_throttle').select('failures').where('key', '=', accountThrottleKey('ada@example.com')).executeTakeFirst())?.failures, 2, 'a refused attempt is not counted')

  clock.advance(1000)
  t.match((await attempt(WRONG)).body, /Wait 2 seconds/, 'failure 3 doubles the wait')
  clock.advance(2000)
  const fourth = await attempt(WRONG)
  t.equal(fourth.statusCode, 401, 'failure 4')
  t.match(fourth.body, /Sign-in is blocked for 15 minutes/)

  clock.advance(14 * 60_000)
  const locked = await attempt(PASSWORD)
  t.equal(locked.statusCode, 429, 'locked out with the right password')
  t.match(locked.body, /Sign-in is blocked for 1 minute;/)
  t.equal(locked.headers['retry-after'], '60')
  t.equal((await db.selectFrom('sessions').select('id').execute()).length, 0)

  clock.advance(60_000)
  const ok = await attempt(PASSWORD)
  t.equal(ok.statusCode, 303, 'after the lockout the right password works')
  t.equal(await db.selectFrom('login_throttle').select('key').where('key', '=', accountThrottleKey('ada@example.com')).executeTakeFirst(), undefined, 'success clears the account count')
})

t.test('one address trying many accounts is locked out; other addresses are not', async (t) => {
  const clock = new FakeClock()
  const { app, services } = await buildTestApp(t, { clock, env: ENV })
  await createAgent(services)
  const from = async (ip: string, email: string, password: string) => await postLogin(app, await loginForm(app), { email, password }, { ip })

  for (let i = 1; i <= 6; i++) {
    const res = await from('203.0.113.9', `guess${i}@example.com`, WRONG)
    t.equal(res.statusCode, 401, `guess ${i}`)
    clock.advance(60_000)
  }
  const refused = await from('203.0.113.9', 'ada@example.com', PASSWORD)
  t.equal(refused.statusCode, 429, 'the address is refused, even for a real account')
  t.match(refused.body, /Sign-in is blocked for/)
  t.equal((await from('198.51.100.7', 'ada@example.com', PASSWORD)).statusCode, 303, 'the same account from elsewhere still works')
})

t.test('failures older than the window are forgotten', async (t) => {
  const clock = new FakeClock()
  const { app, services, db } = await buildTestApp(t, { clock, env: ENV })
  await createAgent(services)
  const attempt = async (password: string) => await postLogin(app, await loginForm(app), { email: 'ada@example.com', password })
  await attempt(WRONG)
  clock.advance(16 * 60_000)
  await attempt(WRONG)
  const row = await db.selectFrom('login_throttle').selectAll().where('key', '=', accountThrottleKey('ada@example.com')).executeTakeFirstOrThrow()
  t.equal(row.failures, 1, 'the count started again')
  t.equal(row.locked_until, null)
})

t.test('an unknown email is throttled like a real one (no account enumeration through lockouts)', async (t) => {
  const clock = new FakeClock()
  const { app } = await buildTestApp(t, { clock, env: ENV })
  let last = await postLogin(app, await loginForm(app), { email: 'ghost@example.com', password: WRONG })
  for (let i = 0; i < 3; i++) {
    clock.advance(60_000)
    last = await postLogin(app, await loginForm(app), { email: 'ghost@example.com', password: WRONG })
  }
  t.match(last.body, /Sign-in is blocked for 15 minutes/)
})

t.test('reset-password lifts a lockout on the account', async (t) => {
  const clock = new FakeClock()
  const { app, services } = await buildTestApp(t, { clock, env: ENV })
  await createAgent(services)
  for (let i = 0; i < 4; i++) {
    await postLogin(app, await loginForm(app), { email: 'ada@example.com', password: WRONG })
    clock.advance(60_000)
  }
  t.equal((await postLogin(app, await loginForm(app), { email: 'ada@example.com', password: PASSWORD })).statusCode, 429)
  await services.agents.resetPassword('ada@example.com', 'a brand new passphrase')
  t.equal((await postLogin(app, await loginForm(app), { email: 'ada@example.com', password: 'a brand new passphrase' })).statusCode, 303)
})
