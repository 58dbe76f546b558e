import t from 'tap'
import { FAST_HASH_ENV, signedInAgent } from '../auth/agent-session.js'
import { buildTestApp, FakeClock, form } from '../helper.js'
import { MAX_SHOWN, PAGE_SIZE, shownCount } from '../../src/simulator/simulator-routes.js'

// The phone-in-a-browser at its HTTP edge: a person's typing mistakes are answered on the phone
// page (never as raw JSON), and the phone shows a bounded page of the latest messages.

const HTML = { accept: 'text/html' }
const FORM = { ...HTML, 'content-type': 'application/x-www-form-urlencoded' }
const NUMBER = '+31612345678'

t.test('switching to a number no country issues keeps the phone on its number and says why, as a page', async (t) => {
  const { app } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agent = await signedInAgent(app)
  const res = await agent.inject({ method: 'GET', url: `/simulator?number=12ab&current=${encodeURIComponent('+31687654321')}`, headers: HTML })
  t.equal(res.statusCode, 400)
  t.match(res.headers['content-type'], /text\/html/)
  t.notMatch(res.body, /"statusCode"|VALIDATION|INVALID_PHONE/, 'no JSON and no error codes')
  t.match(res.body, /role="alert">&quot;12ab&quot; is not a phone number a customer could text from/)
  t.match(res.body, /The phone still shows \+31687654321/)
  t.match(res.body, /id="sim-number" name="number" value="12ab"/, 'the typed text stays in the field')
  t.match(res.body, /aria-invalid="true" aria-describedby="sim-number-error"/)
  t.match(res.body, /name="number" value="\+31687654321"/, 'sending still goes from the number the phone had')

  const noCurrent = await agent.inject({ method: 'GET', url: '/simulator?number=%2B999', headers: HTML })
  t.equal(noCurrent.statusCode, 400)
  t.match(noCurrent.body, /The phone still shows \+31612345678/, 'without a current number, the default one')
})

t.test('mistakes in the send and mode forms are answered on the phone page with the text kept', async (t) => {
  const { app, services } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agent = await signedInAgent(app)
  const empty = await agent.inject({ method: 'POST', url: '/simulator/messages', headers: FORM, payload: form({ number: NUMBER, text: '   ' }) })
  t.equal(empty.statusCode, 422)
  t.match(empty.body, /Type a message before sending/)
  const long = 'x'.repeat(1601)
  const tooLong = await agent.inject({ method: 'POST', url: '/simulator/messages', headers: FORM, payload: form({ number: NUMBER, text: long }) })
  t.equal(tooLong.statusCode, 422)
  t.match(tooLong.body, /This text is 1601 characters long; a phone sends at most 1600/)
  t.ok(tooLong.body.includes(`>${long}</textarea>`), 'the text is kept in the box')
  const badNumber = await agent.inject({ method: 'POST', url: '/simulator/messages', headers: FORM, payload: form({ number: 'nope', text: 'hi' }) })
  t.equal(badNumber.statusCode, 400)
  t.match(badNumber.body, /switch to one first\. Nothing was sent/)
  // A form without a number, or with two, comes from no phone: nothing is received from the default one.
  const noNumber = await agent.inject({ method: 'POST', url: '/simulator/messages', headers: FORM, payload: form({ text: 'hi' }) })
  t.equal(noNumber.statusCode, 400)
  t.match(noNumber.body, /switch to one first\. Nothing was sent/)
  const twoNumbers = await agent.inject({ method: 'POST', url: '/simulator/messages', headers: FORM, payload: `number=${encodeURIComponent(NUMBER)}&number=2&text=hi` })
  t.equal(twoNumbers.statusCode, 400, 'repeated keys are a refused request, not a server error')
  t.match(twoNumbers.headers['content-type'], /text\/html/)
  const modeWithoutNumber = await agent.inject({ method: 'POST', url: '/simulator/mode', headers: FORM, payload: form({ mode: 'failing' }) })
  t.equal(modeWithoutNumber.statusCode, 400)
  t.equal(services.simulator?.getMode(NUMBER), 'normal', 'no mode set for the default number')
  const badMode = await agent.inject({ method: 'POST', url: '/simulator/mode', headers: FORM, payload: form({ number: NUMBER, mode: 'exploding' }) })
  t.equal(badMode.statusCode, 422)
  t.match(badMode.body, /Pick one of the listed behaviours/)
  const schema = await agent.inject({ method: 'GET', url: `/simulator?number=${'1'.repeat(80)}`, headers: HTML })
  t.equal(schema.statusCode, 400)
  t.match(schema.headers['content-type'], /text\/html/, 'even a request the schema refuses gets the phone page')
  t.match(schema.body, /nothing was sent/)
  t.equal((await services.tickets.conversationWith(NUMBER)).length, 0, 'nothing was received')

  const ok = await agent.inject({ method: 'POST', url: '/simulator/messages', headers: FORM, payload: form({ number: NUMBER, text: 'Hello\nthere' }) })
  t.equal(ok.statusCode, 303)
  t.equal(ok.headers.location, `/simulator?number=${encodeURIComponent(NUMBER)}`)
  const mode = await agent.inject({ method: 'POST', url: '/simulator/mode', headers: FORM, payload: form({ number: NUMBER, mode: 'unreachable' }) })
  t.equal(mode.statusCode, 303)
  t.equal(services.simulator?.getMode(NUMBER), 'unreachable')
})

t.test('the phone shows the latest page of messages, oldest first, and a link to older ones', async (t) => {
  const clock = new FakeClock()
  const { app, services } = await buildTestApp(t, { clock, env: FAST_HASH_ENV })
  const agent = await signedInAgent(app)
  // 40 texts plus the automatic confirmation: 41 messages.
  for (let i = 0; i < 40; i++) {
    await services.tickets.receiveInbound({ provider: 'simulator', providerMessageId: `m${i}`, from: NUMBER, to: null, text: `text number ${i}`, channel: 'sms' })
    clock.advance(1000)
  }
  const bodies = (html: string) => [...html.matchAll(/<div class="bubble">([^<]*)<\/div>/g)].map((m) => m[1])

  const page = await agent.inject({ method: 'GET', url: `/simulator?number=${encodeURIComponent(NUMBER)}`, headers: HTML })
  t.equal(page.statusCode, 200)
  const shown = bodies(page.body)
  t.equal(shown.length, PAGE_SIZE, `the page shows ${PAGE_SIZE} messages`)
  t.equal(shown[shown.length - 1], 'text number 39', 'the newest at the bottom')
  t.equal(shown[0], `text number ${40 - PAGE_SIZE}`)
  const html = page.body.replaceAll('&#x3D;', '=').replaceAll('&amp;', '&')
  t.match(html, /<a href="\/simulator\?number=%2B31612345678&show=60">Show older messages<\/a>/)
  t.match(html, /data-live-fragment="\/simulator\/conversation\?number=%2B31612345678&show=30"/)

  const older = await agent.inject({ method: 'GET', url: `/simulator?number=${encodeURIComponent(NUMBER)}&show=60`, headers: HTML })
  const all = bodies(older.body)
  t.equal(all.length, 41, 'all 41 messages once the page is large enough')
  t.notMatch(older.body, /Show older messages/, 'no link when nothing older exists')
  t.equal(all[0], 'text number 0', 'the first text first')
  t.match(all[1], /ticket ID is 1/, 'then the confirmation with the ticket reference')

  const fragment = await agent.inject({ method: 'GET', url: `/simulator/conversation?number=${encodeURIComponent(NUMBER)}&show=30` })
  t.equal(bodies(fragment.body).length, PAGE_SIZE, 'the live fragment shows the same page')
  t.notMatch(fragment.body, /<html/)
  const badFragment = await agent.inject({ method: 'GET', url: '/simulator/conversation?number=x' })
  t.equal(badFragment.statusCode, 400)

  t.equal(shownCount(undefined), PAGE_SIZE)
  t.equal(shownCount('31'), 2 * PAGE_SIZE, 'rounded up to whole pages')
  t.equal(shownCount('0'), PAGE_SIZE)
  t.equal(shownCount('999999'), MAX_SHOWN, 'never more than the cap')
  t.equal(shownCount('-5'), PAGE_SIZE)
})

t.test('a phone switched off gets what was sent to it once it is back on; made unreachable instead, never', async (t) => {
  const { app, services, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agent = await signedInAgent(app)
  const statusOf = async (to: string): Promise<string[]> =>
    (await db.selectFrom('messages').select('status').where('to_address', '=', to).orderBy('created_at').execute()).map((r) => r.status)
  const settle = async (): Promise<void> => {
    while (await services.worker.drain() > 0) await services.simulator?.idle()
    await services.simulator?.idle()
  }
  const OTHER = '+31687654321'
  for (const number of [NUMBER, OTHER]) {
    t.equal((await agent.inject({ method: 'POST', url: '/simulator/mode', headers: FORM, payload: form({ number, mode: 'off' }) })).statusCode, 303)
    await services.tickets.receiveInbound({ provider: 'simulator', providerMessageId: `hi-${number}`, from: number, to: null, text: 'Hello', channel: 'sms' })
  }
  await settle()
  t.same(await statusOf(NUMBER), ['sent'], 'the confirmation waits while the phone is off')
  t.match((await agent.inject({ method: 'GET', url: `/simulator?number=${encodeURIComponent(NUMBER)}`, headers: HTML })).body, /<option value="off" selected>/)

  await agent.inject({ method: 'POST', url: '/simulator/mode', headers: FORM, payload: form({ number: NUMBER, mode: 'normal' }) })
  await agent.inject({ method: 'POST', url: '/simulator/mode', headers: FORM, payload: form({ number: OTHER, mode: 'unreachable' }) })
  await settle()
  t.same(await statusOf(NUMBER), ['delivered'], 'back on: delivered')
  t.same(await statusOf(OTHER), ['sent'], 'unreachable instead: never delivered')
  await agent.inject({ method: 'POST', url: '/simulator/mode', headers: FORM, payload: form({ number: OTHER, mode: 'normal' }) })
  await settle()
  t.same(await statusOf(OTHER), ['sent'], 'what was dropped stays dropped')
})
