import t, { type Test } from 'tap'
import { buildTestApp, form } from '../helper.js'
import { createAgent, FAST_HASH_ENV, hiddenCsrf, loginForm, PASSWORD, postLogin, signIn } from './agent-session.js'
import { appRoutes, concrete, snapshot } from './routes.js'

const FORM = { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' }

async function setup (t: Test) {
  const built = await buildTestApp(t, { env: FAST_HASH_ENV })
  await createAgent(built.services)
  const inbound = await built.services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'seed-1', from: '+31612345678', to: null, text: 'Hello', channel: 'sms' })
  const session = await signIn(built.app, 'ada@example.com')
  return { ...built, session, ticketId: inbound.ticketId }
}

// The sign-in and first-run forms use the pre-session token: tested below and in first-run.test.ts.
t.test('every state-changing agent route refuses a missing or wrong CSRF token and changes nothing', async (t) => {
  const { app, db, session, services } = await setup(t)
  await app.ready()
  const unsafe = appRoutes(app).filter((r) => !['GET', 'HEAD', 'OPTIONS'].includes(r.method) && !r.url.startsWith('/webhooks/') && !r.url.startsWith('/api/') && r.url !== '/login' && r.url !== '/setup')
  t.ok(unsafe.some((r) => r.url === '/tickets/:id/replies'), 'replies are among them')
  t.ok(unsafe.some((r) => r.url === '/logout'), 'sign-out is among them')
  const before = await snapshot(db)
  const modeBefore = services.simulator?.getMode('+31612345678')

  const fields = { body: 'Sneaky reply', text: 'Sneaky text', number: '+31612345678', mode: 'failing' }
  for (const route of unsafe) {
    const url = concrete(route.url)
    const name = `${route.method} ${route.url}`
    const cases: Array<[string, string]> = [
      ['missing', form(fields)],
      ['empty', form({ ...fields, _csrf: '' })],
      ['wrong', form({ ...fields, _csrf: 'A'.repeat(43) })],
      ['from another session', form({ ...fields, _csrf: (await signIn(app, 'ada@example.com')).csrfToken })]
    ]
    for (const [label, payload] of cases) {
      const res = await app.inject({ method: route.method as 'POST', url, headers: { ...FORM, cookie: session.cookie }, payload })
      t.equal(res.statusCode, 403, `${name}: ${label} token is refused`)
      t.match(res.body, /This form has expired or did not come from Textdesk, so nothing was changed/, `${name}: clear error page`)
      t.match(res.headers['content-type'], /text\/html/)
    }
    const json = await app.inject({ method: route.method as 'POST', url, headers: { cookie: session.cookie, 'content-type': 'application/json' }, payload: fields })
    t.equal(json.statusCode, 403, `${name}: JSON without token is refused`)
    t.equal(json.json().error, 'CSRF_TOKEN_INVALID')
  }
  // Sessions opened above are the only change allowed.
  const after = await snapshot(db)
  t.same({ ...after, sessions: [] }, { ...before, sessions: [] }, 'nothing but new sessions changed')
  t.equal(services.simulator?.getMode('+31612345678'), modeBefore)
  t.equal((await session.inject({ method: 'GET', url: '/inbox?view=open', headers: { accept: 'text/html' } })).statusCode, 200, 'a refused sign-out left the session alive')
})

t.test('the token from the page is accepted, as a form field or as a header', async (t) => {
  const { app, session, ticketId, db } = await setup(t)
  const page = await app.inject({ method: 'GET', url: `/tickets/${ticketId}`, headers: { accept: 'text/html', cookie: session.cookie } })
  const token = hiddenCsrf(page.body)
  t.equal(token, session.csrfToken, 'every form on a page carries the session token')
  const viaForm = await app.inject({ method: 'POST', url: `/tickets/${ticketId}/replies`, headers: { ...FORM, cookie: session.cookie }, payload: form({ body: 'Via form', _csrf: token }) })
  t.equal(viaForm.statusCode, 303)
  const viaHeader = await app.inject({ method: 'POST', url: `/tickets/${ticketId}/replies`, headers: { ...FORM, cookie: session.cookie, 'x-csrf-token': token }, payload: form({ body: 'Via header' }) })
  t.equal(viaHeader.statusCode, 303)
  const bodies = (await db.selectFrom('messages').select('body').where('kind', '=', 'reply').execute()).map((m) => m.body)
  t.same(bodies.sort(), ['Via form', 'Via header'])
})

t.test('a token from an ended session is stale', async (t) => {
  const { app, session, ticketId, db } = await setup(t)
  const stale = session.csrfToken
  await session.inject({ method: 'POST', url: '/logout', headers: FORM, payload: form({ _csrf: stale }) })
  const fresh = await signIn(app, 'ada@example.com')
  const res = await app.inject({ method: 'POST', url: `/tickets/${ticketId}/replies`, headers: { ...FORM, cookie: fresh.cookie }, payload: form({ body: 'Old form', _csrf: stale }) })
  t.equal(res.statusCode, 403)
  t.equal((await db.selectFrom('messages').select('id').where('kind', '=', 'reply').execute()).length, 0)
})

t.test('the sign-in form needs its own token and the pre-session cookie that goes with it', async (t) => {
  const { app, db } = await setup(t)
  const sessionsBefore = (await db.selectFrom('sessions').select('id').execute()).length
  const good = await loginForm(app)
  const other = await loginForm(app)
  const cases: Array<[string, { cookie: string, csrf: string }]> = [
    ['no token', { cookie: good.cookie, csrf: '' }],
    ['no cookie', { cookie: '', csrf: good.csrf }],
    ['token of another form', { cookie: good.cookie, csrf: other.csrf }],
    ['made-up cookie', { cookie: 'textdesk_login=' + 'B'.repeat(43), csrf: good.csrf }]
  ]
  for (const [label, f] of cases) {
    const res = await postLogin(app, f, { email: 'ada@example.com', password: PASSWORD, next: '/tickets/1' })
    t.equal(res.statusCode, 403, label)
    t.match(res.body, /The sign-in form had expired or did not come from this site/, `${label}: explained`)
    t.match(res.body, /name="next" value="\/tickets\/1"/, `${label}: the form is shown again, ready to retry`)
  }
  t.equal((await db.selectFrom('sessions').select('id').execute()).length, sessionsBefore, 'no session was created')
  t.equal((await postLogin(app, good, { email: 'ada@example.com', password: PASSWORD })).statusCode, 303, 'the matching pair works')
})
