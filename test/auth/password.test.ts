import t from 'tap'
import { defaultParams, hashPassword, needsRehash, passwordProblem, verifyPassword } from '../../src/auth/password.js'
import { buildTestApp } from '../helper.js'
import { FAST_HASH_ENV } from './agent-session.js'

t.test('scrypt hashes are salted, carry their parameters and verify only the right password', async (t) => {
  const params = defaultParams(10)
  const a = await hashPassword('correct horse battery staple', params)
  const b = await hashPassword('correct horse battery staple', params)
  t.match(a, /^\$scrypt\$ln=10,r=8,p=3\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/)
  t.not(a, b, 'a fresh salt each time')
  t.equal(await verifyPassword('correct horse battery staple', a), true)
  t.equal(await verifyPassword('correct horse battery stapl', a), false)
  t.equal(await verifyPassword('', a), false)
  t.equal(await verifyPassword('correct horse battery staple', a.replace('ln=10', 'ln=11')), false, 'the parameters are part of what is checked')
  t.equal(await verifyPassword('x', 'plaintext'), false, 'a malformed hash is a failed check, not a crash')
  t.equal(await verifyPassword('x', '$scrypt$ln=30,r=8,p=1$AAAA$AAAA'), false, 'absurd parameters are refused')
  t.equal(needsRehash(a, defaultParams(10)), false)
  t.equal(needsRehash(a, defaultParams(15)), true)
  t.equal(await verifyPassword('café au lait mornings', await hashPassword('cafe\u0301 au lait mornings', params)), true, 'Unicode is normalised')
})

t.test('password rules', async (t) => {
  t.match(passwordProblem('short pass'), /too short \(10 characters\): use at least 12/)
  t.equal(passwordProblem('twelve chars'), null)
  t.match(passwordProblem(' leading space pw'), /spaces/)
  t.match(passwordProblem('x'.repeat(1025)), /too long/)
})

t.test('agent accounts: validation, duplicates, rehash on sign-in with stronger parameters', async (t) => {
  const { services, db, config } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agents = services.agents
  await t.rejects(agents.add({ email: 'not-an-email', name: 'X', role: 'agent', password: 'long enough pass' }), /is not an email address/)
  await t.rejects(agents.add({ email: 'a@example.com', name: ' ', role: 'agent', password: 'long enough pass' }), /name must be 1 to 100/)
  await t.rejects(agents.add({ email: 'a@example.com', name: 'A', role: 'agent', password: 'short' }), /too short/)
  const ada = await agents.add({ email: ' Ada@Example.com ', name: 'Ada', role: 'admin', password: 'long enough pass' })
  t.equal(ada.email, 'ada@example.com', 'emails are stored lower-case')
  await t.rejects(agents.add({ email: 'ADA@example.com', name: 'Ada 2', role: 'agent', password: 'long enough pass' }), /An agent with the email ada@example.com already exists/)
  const stored = await db.selectFrom('agents').select('password_hash').executeTakeFirstOrThrow()
  t.notMatch(stored.password_hash, /long enough pass/)
  t.equal(config.passwordHashLogN, 10)

  await db.updateTable('agents').set({ password_hash: await hashPassword('long enough pass', { logN: 10, r: 8, p: 1 }) }).execute()
  t.same(await agents.authenticate('ada@example.com', 'long enough pass'), { ok: true, agent: { id: ada.id, name: 'Ada', email: 'ada@example.com', role: 'admin' } })
  const upgraded = await db.selectFrom('agents').select('password_hash').executeTakeFirstOrThrow()
  t.match(upgraded.password_hash, /^\$scrypt\$ln=10,r=8,p=3\$/, 'a weaker hash is upgraded after a successful sign-in')

  await t.rejects(agents.disable('nobody@example.com'), /nobody@example.com was not found/)
  await agents.disable('ada@example.com')
  t.same(await agents.authenticate('ada@example.com', 'long enough pass'), { ok: false, reason: 'disabled' })
  t.same(await agents.authenticate('ada@example.com', 'wrong password!'), { ok: false, reason: 'invalid' }, 'disabled is only told to someone with the password')
  t.equal(await agents.hasActiveAgents(), false)
  await agents.enable('ada@example.com')
  t.equal(await agents.hasActiveAgents(), true)
})

t.test('PASSWORD_SCRYPT_LOG_N below 15 is refused outside tests', async (t) => {
  const { loadConfig } = await import('../../src/config.js')
  t.throws(() => loadConfig({ NODE_ENV: 'production', PASSWORD_SCRYPT_LOG_N: '10' }), /PASSWORD_SCRYPT_LOG_N below 15 is only allowed with NODE_ENV=test/)
  t.equal(loadConfig({ NODE_ENV: 'development' }).passwordHashLogN, 15)
})
