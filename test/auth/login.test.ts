import t from 'tap'
import { sessionIdFor } from '../../src/auth/session-service.js'
import { buildTestApp, FakeClock } from '../helper.js'
import { cookieValue, createAgent, FAST_HASH_ENV, hiddenCsrf, loginForm, PASSWORD, postLogin, signIn } from './agent-session.js'

const HTML = { accept: 'text/html' }

t.test('the sign-in page has the form, a pre-session cookie and no session', async (t) => {
  const { app, services } = await buildTestApp(t, { env: FAST_HASH_ENV })
  await createAgent(services)
  const res = await app.inject({ method: 'GET', url: '/login?next=/tickets/7', headers: HTML })
  t.equal(res.statusCode, 200)
  t.match(res.body, /<input id="login-email" name="email"/)
  t.match(res.body, /name="password" type="password"/)
  t.match(res.body, /name="next" value="\/tickets\/7"/)
  t.ok(hiddenCsrf(res.body).length > 20)
  const cookie = (res.cookies as Array<{ name: string, httpOnly?: boolean, sameSite?: string }>).find((c) => c.name === 'textdesk_login')
  t.ok(cookie?.httpOnly, 'login cookie is HttpOnly')
  t.equal(cookie?.sameSite, 'Lax')
  t.equal(cookieValue(res, 'textdesk_session'), undefined)
  t.notMatch(res.body, /No agent account exists yet/, 'no set-up hint once an agent exists')
  t.equal(res.headers['cache-control'], 'no-store')
})

t.test('signing in sets an HttpOnly SameSite=Lax session cookie, stores only its hash and returns to the page asked for', async (t) => {
  const { app, services, db, clock } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agent = await createAgent(services)
  const res = await postLogin(app, await loginForm(app), { email: 'ADA@example.com ', password: PASSWORD, next: '/inbox?cursor=x#top' })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/inbox?cursor=x#top')
  const cookie = (res.cookies as Array<{ name: string, value: string, httpOnly?: boolean, sameSite?: string, secure?: boolean, path?: string, maxAge?: number }>).find((c) => c.name === 'textdesk_session')
  t.ok(cookie !== undefined)
  t.ok(cookie?.httpOnly)
  t.equal(cookie?.sameSite, 'Lax')
  t.notOk(cookie?.secure, 'not Secure over plain http')
  t.equal(cookie?.path, '/')
  t.equal(cookie?.maxAge, 12 * 3600)
  t.match(cookie?.value, /^[A-Za-z0-9_-]{43}$/, '32 random bytes')

  const rows = await db.selectFrom('sessions').selectAll().execute()
  t.equal(rows.length, 1)
  t.equal(rows[0].id, sessionIdFor(cookie?.value as string))
  t.not(rows[0].id, cookie?.value, 'the token itself is not stored')
  t.equal(rows[0].agent_id, agent.id)
  t.equal(rows[0].expires_at, new Date(clock.now().getTime() + 12 * 3600_000).toISOString())

  const inbox = await app.inject({ method: 'GET', url: '/inbox?view=open', headers: { ...HTML, cookie: `textdesk_session=${cookie?.value as string}` } })
  t.equal(inbox.statusCode, 200)
  t.match(inbox.body, /Ada Lovelace/, 'the header names the signed-in agent')
  t.match(inbox.body, /action="\/logout"/)
})

t.test('a wrong password, an unknown email and a disabled account do not sign in', async (t) => {
  const { app, services, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  await createAgent(services)
  await createAgent(services, { email: 'gone@example.com', name: 'Gone' })
  await services.agents.disable('gone@example.com')

  const wrong = await postLogin(app, await loginForm(app), { email: 'ada@example.com', password: 'not the password at all' })
  t.equal(wrong.statusCode, 401)
  t.match(wrong.body, /The email address or password is not right/)
  t.match(wrong.body, /value="ada@example.com"/, 'the email is kept in the form')
  t.notMatch(wrong.body, /not the password/, 'the password is never echoed')

  const unknown = await postLogin(app, await loginForm(app), { email: 'nobody@example.com', password: PASSWORD })
  t.equal(unknown.statusCode, 401)
  t.match(unknown.body, /The email address or password is not right/, 'same answer as a wrong password')

  const disabled = await postLogin(app, await loginForm(app), { email: 'gone@example.com', password: PASSWORD })
  t.equal(disabled.statusCode, 403)
  t.match(disabled.body, /This account is disabled/)

  const empty = await postLogin(app, await loginForm(app), { email: '', password: '' })
  t.equal(empty.statusCode, 400)
  t.match(empty.body, /Enter your email address and password/)

  t.equal((await db.selectFrom('sessions').selectAll().execute()).length, 0)
})

t.test('next must be a path on this site: other targets go to the inbox', async (t) => {
  const { app, services } = await buildTestApp(t, { env: FAST_HASH_ENV })
  await createAgent(services)
  // Each of these leaves the site if followed as it is, or once normalised (dot segments,
  // percent-encoded dots, backslashes read as slashes, stripped tabs and newlines).
  const hostile = [
    'https://evil.example/', '//evil.example/x', '///evil.example', 'http:evil.example', 'javascript:alert(1)', 'inbox',
    '/..//evil.example', '/../..//evil.example', '/inbox/../..//evil.example', '/%2e%2e//evil.example', '/%2E%2E//evil.example',
    '/.%2e//evil.example', '/.//evil.example', '/%2e//evil.example', '/./%2e/..//evil.example',
    '/\\evil.example', '/\\/evil.example', '\\\\evil.example', '/..\\evil.example', '/%5cevil.example', '/%5C%5Cevil.example',
    '/%2f%2fevil.example', '/%2F/evil.example', '/..%2f%2fevil.example',
    '/\t/evil.example', '/\n/evil.example', '/\r\n/evil.example', '/\t\t//evil.example', ' //evil.example', '/ /evil.example',
    '/\u0000//evil.example', '/login', '/logout', '/x/../login', ''
  ]
  for (const next of hostile) {
    const res = await postLogin(app, await loginForm(app), { email: 'ada@example.com', password: PASSWORD, next })
    if (next.includes('\u0000')) {
      // A NUL character is refused at the edge, before the sign-in runs (src/http/text-input.ts).
      t.equal(res.statusCode, 400, JSON.stringify(next))
      t.equal(res.headers.location, undefined, `${JSON.stringify(next)} is not followed`)
      continue
    }
    t.equal(res.statusCode, 303, JSON.stringify(next))
    t.equal(res.headers.location, '/inbox', `${JSON.stringify(next)} is not followed`)
  }
  // Local paths still come back, normalised.
  const local: Array<[string, string]> = [['/tickets/7', '/tickets/7'], ['/inbox?cursor=x#top', '/inbox?cursor=x#top'], ['/tickets/7/../8', '/tickets/8'], ['/simulator?number=%2B31612345678', '/simulator?number=%2B31612345678'],
    // A full-width space is not a slash to any browser: it stays part of a local path, encoded.
    ['/\u3000/evil.example', '/%E3%80%80/evil.example']]
  for (const [next, expected] of local) {
    const res = await postLogin(app, await loginForm(app), { email: 'ada@example.com', password: PASSWORD, next })
    t.equal(res.headers.location, expected, next)
  }
  // The same rule when an agent who is already signed in follows a crafted /login link.
  const session = await signIn(app, 'ada@example.com')
  for (const next of ['/..//evil.example', '/%2e%2e//evil.example', '/.//evil.example']) {
    const res = await session.inject({ method: 'GET', url: `/login?next=${encodeURIComponent(next)}`, headers: HTML })
    t.equal(res.headers.location, '/inbox', `GET /login?next=${next}`)
  }
})

t.test('a signed-in agent visiting /login goes straight on', async (t) => {
  const { app, services } = await buildTestApp(t, { env: FAST_HASH_ENV })
  await createAgent(services)
  const session = await signIn(app, 'ada@example.com')
  const res = await session.inject({ method: 'GET', url: '/login?next=/tickets/3', headers: HTML })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/tickets/3')
})

t.test('signing out deletes the session: the old cookie no longer works', async (t) => {
  const { app, services, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  await createAgent(services)
  const session = await signIn(app, 'ada@example.com')
  const out = await session.inject({ method: 'POST', url: '/logout', headers: { ...HTML, 'content-type': 'application/x-www-form-urlencoded' }, payload: `_csrf=${session.csrfToken}` })
  t.equal(out.statusCode, 303)
  t.equal(out.headers.location, '/login?signed-out=1')
  const cleared = (out.cookies as Array<{ name: string, value: string, maxAge?: number, expires?: Date }>).find((c) => c.name === 'textdesk_session')
  t.ok(cleared !== undefined && cleared.value === '', 'the cookie is cleared')
  t.equal((await db.selectFrom('sessions').selectAll().execute()).length, 0, 'the session row is gone')

  const again = await app.inject({ method: 'GET', url: '/inbox?view=open', headers: { ...HTML, cookie: session.cookie } })
  t.equal(again.statusCode, 303)
  t.equal(again.headers.location, '/login?next=%2Finbox%3Fview%3Dopen')
})

t.test('signing out also works from a script: token in a header, no body', async (t) => {
  const { app, services, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  await createAgent(services)
  const session = await signIn(app, 'ada@example.com')
  const out = await session.inject({ method: 'POST', url: '/logout' })
  t.equal(out.statusCode, 303)
  t.equal((await db.selectFrom('sessions').selectAll().execute()).length, 0)
})

t.test('sessions expire on the server after SESSION_TTL_HOURS', async (t) => {
  const clock = new FakeClock()
  const { app, services, db } = await buildTestApp(t, { clock, env: { ...FAST_HASH_ENV, SESSION_TTL_HOURS: '2' } })
  await createAgent(services)
  const session = await signIn(app, 'ada@example.com')
  clock.advance(2 * 3600_000 - 1000)
  t.equal((await session.inject({ method: 'GET', url: '/inbox?view=open', headers: HTML })).statusCode, 200, 'still valid a second before expiry')
  clock.advance(1000)
  const expired = await session.inject({ method: 'GET', url: '/inbox?view=open', headers: HTML })
  t.equal(expired.statusCode, 303)
  t.match(expired.headers.location, /^\/login\?next=/)
  t.equal((await db.selectFrom('sessions').selectAll().execute()).length, 0, 'the expired row is removed')
})

t.test('disabling an agent ends their sessions at once; reset-password signs them out everywhere', async (t) => {
  const { app, services, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  await createAgent(services)
  const first = await signIn(app, 'ada@example.com')
  const second = await signIn(app, 'ada@example.com')
  t.equal((await first.inject({ method: 'GET', url: '/inbox?view=open', headers: HTML })).statusCode, 200)

  await services.agents.resetPassword('ada@example.com', 'an entirely new passphrase')
  t.equal((await first.inject({ method: 'GET', url: '/inbox?view=open', headers: HTML })).statusCode, 303)
  t.equal((await second.inject({ method: 'GET', url: '/inbox?view=open', headers: HTML })).statusCode, 303)
  t.equal((await postLogin(app, await loginForm(app), { email: 'ada@example.com', password: PASSWORD })).statusCode, 401, 'the old password is gone')

  const third = await signIn(app, 'ada@example.com', 'an entirely new passphrase')
  await services.agents.disable('ada@example.com')
  t.equal((await db.selectFrom('sessions').selectAll().execute()).length, 0)
  const res = await third.inject({ method: 'GET', url: '/inbox/list', headers: { accept: '*/*' } })
  t.equal(res.statusCode, 401)
})

t.test('a disabled agent whose session row survives is still refused', async (t) => {
  const { app, services, db, clock } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agent = await createAgent(services)
  const session = await signIn(app, 'ada@example.com')
  // As if disabled by hand in the database, without the service ending the sessions.
  await db.updateTable('agents').set({ disabled_at: clock.now().toISOString() }).where('id', '=', agent.id).execute()
  const res = await session.inject({ method: 'GET', url: '/inbox?view=open', headers: HTML })
  t.equal(res.statusCode, 303)
})

t.test('a session cookie set before sign-in is not kept (no session fixation)', async (t) => {
  const { app, services, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  await createAgent(services)
  const before = await signIn(app, 'ada@example.com')
  const form = await loginForm(app)
  const res = await postLogin(app, { ...form, cookie: `${form.cookie}; ${before.cookie}` }, { email: 'ada@example.com', password: PASSWORD })
  t.equal(res.statusCode, 303)
  const token = cookieValue(res, 'textdesk_session')
  t.not(token, before.token)
  const ids = (await db.selectFrom('sessions').select('id').execute()).map((r) => r.id)
  t.same(ids, [sessionIdFor(token as string)], 'the earlier session was ended')
})

t.test('with SECURE_COOKIES the cookies are Secure and __Host- prefixed', async (t) => {
  const { app, services } = await buildTestApp(t, { env: { ...FAST_HASH_ENV, SECURE_COOKIES: 'true' } })
  await createAgent(services)
  const page = await app.inject({ method: 'GET', url: '/login', headers: HTML })
  const login = (page.cookies as Array<{ name: string, value: string, secure?: boolean }>).find((c) => c.name === '__Host-textdesk_login')
  t.ok(login?.secure)
  const res = await app.inject({
    method: 'POST',
    url: '/login',
    headers: { ...HTML, cookie: `__Host-textdesk_login=${login?.value as string}`, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ email: 'ada@example.com', password: PASSWORD, _csrf: hiddenCsrf(page.body) }).toString()
  })
  t.equal(res.statusCode, 303)
  const session = (res.cookies as Array<{ name: string, secure?: boolean, httpOnly?: boolean }>).find((c) => c.name === '__Host-textdesk_session')
  t.ok(session?.secure)
  t.ok(session?.httpOnly)
})

t.test('with no agent yet, a page that needs sign-in leads to the form that creates the first admin', async (t) => {
  const { app } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const res = await app.inject({ method: 'GET', url: '/inbox', headers: HTML })
  t.equal(res.statusCode, 303)
  const login = await app.inject({ method: 'GET', url: res.headers.location as string, headers: HTML })
  t.match(login.body, /Create the first admin/)
  t.match(login.body, /No agent account exists yet/)
  t.notMatch(login.body, /npm run agent -- add --email/, 'no command line needed')
  const error = await app.inject({ method: 'POST', url: '/tickets/1/close', headers: HTML })
  t.match(error.body, /No agent account exists yet: create the first admin on the sign-in page/, 'error pages point there too')
})
