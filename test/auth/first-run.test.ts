import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { sql } from 'kysely'
import { freshDatabase, buildTestApp, postgresOnly } from '../helper.js'
import { cookieValue, createAgent, FAST_HASH_ENV, hiddenCsrf, loginForm, postLogin, type LoginForm } from './agent-session.js'
import { snapshot } from './routes.js'

const HTML = { accept: 'text/html' }
const PASSWORD = 'a long first admin passphrase'
const ADMIN = { name: 'Grace Hopper', email: 'grace@example.com', password: PASSWORD, password2: PASSWORD }

async function postSetup (app: FastifyInstance, form: LoginForm, fields: Record<string, string>, opts: { ip?: string, headers?: Record<string, string> } = {}) {
  return await app.inject({
    method: 'POST',
    url: '/setup',
    remoteAddress: opts.ip,
    headers: { ...HTML, cookie: form.cookie, 'content-type': 'application/x-www-form-urlencoded', ...(opts.headers ?? {}) },
    payload: new URLSearchParams({ _csrf: form.csrf, ...fields }).toString()
  })
}

async function setupPage (app: FastifyInstance, opts: { ip?: string, headers?: Record<string, string> } = {}) {
  const res = await app.inject({ method: 'GET', url: '/login', remoteAddress: opts.ip, headers: { ...HTML, ...(opts.headers ?? {}) } })
  return { res, form: { cookie: `textdesk_login=${cookieValue(res, 'textdesk_login') as string}`, csrf: hiddenCsrf(res.body) } }
}

t.test('on this machine, with no agent yet, the sign-in page creates the first admin and signs them in', async (t) => {
  const { app, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const { res, form } = await setupPage(app)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  t.match(res.body, /<h1>Create the first admin<\/h1>/)
  t.match(res.body, /action="\/setup"/)
  for (const field of ['name', 'email', 'password', 'password2']) t.match(res.body, new RegExp(`name="${field}"`), `asks for ${field}`)
  t.notMatch(res.body, /name="token"/, 'no token asked of this machine')
  t.notMatch(res.body, /action="\/login"/, 'no sign-in form: nobody could sign in')

  const created = await postSetup(app, form, ADMIN)
  t.equal(created.statusCode, 303)
  t.equal(created.headers.location, '/inbox')
  const session = cookieValue(created, 'textdesk_session')
  t.ok(session !== undefined, 'signed in')
  const agents = await db.selectFrom('agents').select(['name', 'email', 'role', 'disabled_at']).execute()
  t.same(agents, [{ name: 'Grace Hopper', email: 'grace@example.com', role: 'admin', disabled_at: null }])
  const inbox = await app.inject({ method: 'GET', url: '/inbox?view=open', headers: { ...HTML, cookie: `textdesk_session=${session as string}` } })
  t.equal(inbox.statusCode, 200)
  t.match(inbox.body, /Grace Hopper/)

  // The form and its route are gone.
  const after = await app.inject({ method: 'GET', url: '/login', headers: HTML })
  t.match(after.body, /action="\/login"/)
  t.notMatch(after.body, /action="\/setup"|Create the first admin/)
  const again = await postSetup(app, await loginForm(app), { ...ADMIN, email: 'mallory@example.com' })
  t.equal(again.statusCode, 404)
  t.match(again.body, /There is nothing at this address/)
  t.equal((await db.selectFrom('agents').select('id').execute()).length, 1)
  t.equal((await postLogin(app, await loginForm(app), { email: 'grace@example.com', password: PASSWORD })).statusCode, 303, 'the admin signs in with that password')
})

t.test('from another machine the form needs the one-time token; nothing is created without it', async (t) => {
  const { app, db, services } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const remote = '203.0.113.5'
  const { res, form } = await setupPage(app, { ip: remote })
  t.match(res.body, /name="token"/, 'the token is asked for')
  t.match(res.body, /start-up log/)
  const before = await snapshot(db)
  for (const token of [undefined, '', 'guess', services.firstRun.token + 'x', services.firstRun.token.slice(1)]) {
    const refused = await postSetup(app, form, { ...ADMIN, ...(token !== undefined ? { token } : {}) }, { ip: remote })
    t.equal(refused.statusCode, 403, `token ${JSON.stringify(token)}`)
    t.match(refused.body, /needs the set-up token that the server printed in its start-up log\. Nothing was created/)
    t.match(refused.body, /value="Grace Hopper"/, 'the name is kept')
  }
  t.same(await snapshot(db), before, 'nothing was created')
  const created = await postSetup(app, form, { ...ADMIN, token: services.firstRun.token }, { ip: remote })
  t.equal(created.statusCode, 303)
  t.equal((await db.selectFrom('agents').select('role').execute())[0]?.role, 'admin')
})

t.test('this machine is judged on the socket, not on what a client or a proxy says', async (t) => {
  const cases: Array<{ name: string, env?: Record<string, string>, ip?: string, headers?: Record<string, string>, local: boolean }> = [
    { name: 'loopback socket', local: true },
    { name: 'IPv6 loopback socket', ip: '::1', local: true },
    { name: 'IPv4-mapped loopback', ip: '::ffff:127.0.0.1', local: true },
    { name: 'another address', ip: '198.51.100.7', local: false },
    { name: 'another address claiming to be loopback', ip: '198.51.100.7', headers: { 'x-forwarded-for': '127.0.0.1' }, local: false },
    { name: 'a proxy on this machine (X-Forwarded-For), no TRUST_PROXY', headers: { 'x-forwarded-for': '203.0.113.5' }, local: false },
    { name: 'a proxy on this machine (Forwarded), no TRUST_PROXY', headers: { forwarded: 'for=203.0.113.5' }, local: false },
    { name: 'a proxy on this machine (X-Real-IP), no TRUST_PROXY', headers: { 'x-real-ip': '203.0.113.5' }, local: false },
    { name: 'a trusted proxy forwarding another machine', env: { TRUST_PROXY: '127.0.0.1' }, headers: { 'x-forwarded-for': '203.0.113.5' }, local: false },
    { name: 'a trusted proxy forwarding this machine', env: { TRUST_PROXY: '127.0.0.1' }, headers: { 'x-forwarded-for': '127.0.0.1' }, local: true },
    { name: 'an untrusted sender claiming a trusted chain', env: { TRUST_PROXY: '127.0.0.1' }, ip: '198.51.100.7', headers: { 'x-forwarded-for': '127.0.0.1' }, local: false },
    { name: 'TRUST_PROXY=true trusts any claim, so nothing is local', env: { TRUST_PROXY: 'true' }, local: false }
  ]
  for (const c of cases) {
    const { app, db } = await buildTestApp(t, { env: { ...FAST_HASH_ENV, ...c.env } })
    const { res, form } = await setupPage(app, { ip: c.ip, headers: c.headers })
    t.equal(/name="token"/.test(res.body), !c.local, `${c.name}: ${c.local ? 'no token asked' : 'token asked'}`)
    const posted = await postSetup(app, form, ADMIN, { ip: c.ip, headers: c.headers })
    t.equal(posted.statusCode, c.local ? 303 : 403, `${c.name}: ${c.local ? 'created' : 'refused'} without a token`)
    t.equal((await db.selectFrom('agents').select('id').execute()).length, c.local ? 1 : 0)
  }
})

t.test('the form checks what the CLI checks, and CSRF as every form does; a refusal creates nothing', async (t) => {
  const { app, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const { form } = await setupPage(app)
  const bad: Array<[Record<string, string>, number, RegExp]> = [
    [{ ...ADMIN, password2: PASSWORD + '!' }, 422, /The two passwords are not the same/],
    [{ ...ADMIN, password: 'short', password2: 'short' }, 422, /The password is too short \(5 characters\): use at least 12/],
    [{ ...ADMIN, password: ' padded password ', password2: ' padded password ' }, 422, /must not start or end with spaces/],
    [{ ...ADMIN, email: 'not-an-email' }, 422, /&quot;not-an-email&quot; is not an email address/],
    [{ ...ADMIN, name: '   ' }, 422, /The name must be 1 to 100 characters long/],
    [{ ...ADMIN, password: '', password2: '' }, 422, /The password is too short/],
    [{ ...ADMIN, _csrf: 'forged' }, 403, /The form had expired or did not come from this site\. Nothing was created/],
    [{ ...ADMIN, _csrf: '' }, 403, /The form had expired/]
  ]
  for (const [fields, status, message] of bad) {
    const res = await postSetup(app, form, fields)
    t.equal(res.statusCode, status, JSON.stringify(fields))
    t.match(res.body, message)
    t.match(res.body, /Create the first admin/, 'the form is shown again')
  }
  const noCookie = await app.inject({ method: 'POST', url: '/setup', headers: { ...HTML, 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ _csrf: form.csrf, ...ADMIN }).toString() })
  t.equal(noCookie.statusCode, 403, 'no pre-session cookie')
  t.equal((await db.selectFrom('agents').select('id').execute()).length, 0)
})

t.test('of two concurrent setups, exactly one creates an admin', async (t) => {
  const { app, db, services } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const { form } = await setupPage(app)
  const answers = await Promise.all(['ada@example.com', 'grace@example.com', 'linus@example.com'].map(async (email) => await postSetup(app, form, { ...ADMIN, email })))
  t.same(answers.map((r) => r.statusCode).sort(), [303, 404, 404])
  t.equal((await db.selectFrom('agents').select('id').execute()).length, 1)

  // The guard is the insert itself: without the route's early check, still one admin.
  const other = await buildTestApp(t, { env: FAST_HASH_ENV })
  const results = await Promise.all(Array.from({ length: 5 }, async (_, i) => await other.services.agents.addFirstAdmin({ name: `Admin ${i}`, email: `admin${i}@example.com`, password: PASSWORD })))
  t.equal(results.filter((r) => r !== null).length, 1, 'one insert succeeds')
  t.equal((await other.db.selectFrom('agents').select('id').execute()).length, 1)
  t.equal(await services.firstRun.isOpen(), false)
})

t.test('PostgreSQL: a first-admin insert still in flight holds the second back, which then finds an admin', postgresOnly('two transactions overlapping on a server'), async (t) => {
  // Made deterministic: a trigger holds the first insert's transaction open (it waits for an
  // advisory lock this test holds) while the second starts. Without the insert's own lock, the
  // second sees no committed agent under READ COMMITTED and inserts as well: two admins.
  const { db, services } = await buildTestApp(t, { env: FAST_HASH_ENV })
  await sql`create function hold_agents() returns trigger language plpgsql as $$ begin perform pg_advisory_lock(7007); perform pg_advisory_unlock(7007); return null; end $$`.execute(db)
  await sql`create trigger hold_agents after insert on agents for each row execute function hold_agents()`.execute(db)
  const waiting = async (): Promise<number> => (await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`.execute(db)).rows[0].n
  await db.connection().execute(async (holder) => {
    await sql`select pg_advisory_lock(7007)`.execute(holder)
    const first = services.agents.addFirstAdmin({ name: 'Ada', email: 'ada@example.com', password: PASSWORD })
    while (await waiting() < 1) await new Promise((resolve) => setImmediate(resolve))
    const second = services.agents.addFirstAdmin({ name: 'Grace', email: 'grace@example.com', password: PASSWORD })
    while (await waiting() < 2) await new Promise((resolve) => setImmediate(resolve))
    await sql`select pg_advisory_unlock(7007)`.execute(holder)
    const results = await Promise.all([first, second])
    t.same(results.map((r) => r?.email ?? null), ['ada@example.com', null], 'the first creates the admin, the second finds one')
  })
  t.same((await db.selectFrom('agents').select('email').execute()).map((r) => r.email), ['ada@example.com'])
})

t.test('with an agent already there (even a disabled one) there is no setup, and the hints say what to do', async (t) => {
  const { app, services } = await buildTestApp(t, { env: FAST_HASH_ENV })
  await createAgent(services)
  await services.agents.disable('ada@example.com')
  const page = await app.inject({ method: 'GET', url: '/login', headers: HTML })
  t.notMatch(page.body, /action="\/setup"/)
  t.match(page.body, /Every agent account is disabled\. Enable one on the server with: npm run agent -- enable --email &lt;address&gt;/)
  t.equal((await postSetup(app, await loginForm(app), ADMIN)).statusCode, 404)
})

t.test('npm start on an empty database names the browser setup and its token in the start-up log, and that token works', async (t) => {
  const { dir } = await freshDatabase(t)
  const { MESSAGEBIRD_API_KEY: _k, SMS_CHANNEL: _c, NODE_ENV: _n, ...inherited } = process.env
  const child = spawn(process.execPath, ['--import', 'file://' + join(process.cwd(), 'node_modules/@tapjs/typescript/dist/esm/import.mjs'), 'src/server.ts'], {
    env: { ...inherited, NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', PASSWORD_SCRYPT_LOG_N: '10', DATABASE_URL: `sqlite:${join(dir, 'fresh.sqlite')}` },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let line: { msg: string } | undefined
  for await (const text of createInterface({ input: child.stdout })) {
    const entry = JSON.parse(text) as { msg: string }
    if (entry.msg.startsWith('No agent account exists yet')) {
      line = entry
      break
    }
  }
  const m = /open (http:\/\/127\.0\.0\.1:\d+)\/login on this machine, or from anywhere else enter this one-time set-up token in the form: ([A-Za-z0-9_-]{43})$/.exec(line?.msg ?? '')
  t.ok(m !== null, `the log names the setup page and the token: ${line?.msg ?? '(no line)'}`)
  t.notMatch(line?.msg, /npm run agent/, 'no CLI needed')
  const [, origin, token] = m ?? []

  // Through a proxy on this machine, so the token is needed, over the real socket.
  const viaProxy = { 'x-forwarded-for': '203.0.113.5' }
  const page = await fetch(`${origin}/login`, { headers: { ...HTML, ...viaProxy } })
  const html = await page.text()
  t.match(html, /name="token"/)
  const cookie = (page.headers.get('set-cookie') ?? '').split(';')[0]
  const body = new URLSearchParams({ _csrf: hiddenCsrf(html), ...ADMIN, token }).toString()
  const created = await fetch(`${origin}/setup`, { method: 'POST', redirect: 'manual', headers: { ...HTML, ...viaProxy, cookie, 'content-type': 'application/x-www-form-urlencoded' }, body })
  t.equal(created.status, 303)
  t.equal(created.headers.get('location'), '/inbox')
  child.kill('SIGTERM')
  await once(child, 'exit')
})
