import t from 'tap'
import { createAgent } from '../auth/agent-session.js'
import { checkA11y, launch, person, signIn, startApp } from './harness.js'

// One agent's day in the smallest form, against the real service with its real
// Content-Security-Policy: a text arrives through the MessageBird webhook, the agent signs in,
// answers it, sees the delivery report arrive without a reload, closes and undoes it, meets the
// not-found page, and signs out.

t.test('an agent signs in, answers a ticket and signs out, with the CSP active and never violated', async (t) => {
  const { base, services } = await startApp(t)
  await createAgent(services, { email: 'ada@example.com', name: 'Ada Lovelace' })
  const hook = await fetch(`${base}/webhooks/messagebird`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ originator: '31612345678', payload: 'My order #4411 has not arrived', id: 'browser-1' })
  })
  t.equal(hook.status, 200)

  const browser = await launch(t)
  const ada = await person(t, browser, 'Ada')
  const page = ada.page
  const first = await page.goto(`${base}/inbox`)
  t.match(page.url(), /\/login\?next=%2Finbox$/, 'an anonymous visit lands on the sign-in page')
  t.match(first?.headers()['content-security-policy'], /script-src 'self'/, 'the CSP is active')
  await checkA11y(t, page, 'the sign-in page')
  await signIn(page, base, 'ada@example.com')
  await page.goto(`${base}/inbox`)
  t.match(page.url(), /\/inbox\?view=unassigned$/, 'with nothing assigned to her, the inbox opens on Unassigned')
  t.match(await page.textContent('header.top'), /Ada Lovelace/, 'signed in')

  const row = page.locator('#ticket-list .ticket-row', { hasText: 'My order #4411 has not arrived' })
  const loaded = page.waitForEvent('load')
  await row.locator('a').first().click()
  await loaded
  t.match(await page.textContent('#timeline'), /My order #4411 has not arrived/)

  // The customer's phone is switched off in the simulator: the reply stays "sent" until the test
  // switches it back on, however long the page takes to render on a loaded machine.
  services.simulator?.setMode('+31612345678', 'off')
  await page.fill('#reply-body', 'Sorry about that! It ships today.')
  t.match(await page.textContent('#reply-counter'), /33 \/ 1,600 characters · 1 SMS part · GSM-7/, 'app.js runs under the CSP')
  const sent = page.waitForEvent('load')
  await page.click('form.reply button[type=submit]')
  await sent
  await page.evaluate('window.__sameDocument = true')
  const reply = page.locator('#timeline li.outbound', { hasText: 'Sorry about that! It ships today.' })
  t.match(await reply.locator('.msg-meta').textContent(), /Ada Lovelace/, 'the reply names its agent')
  t.equal(await reply.locator('.status.delivered').count(), 0, 'not delivered yet when the page is shown')
  // The phone comes back on after the page has rendered (the reply may still be queued or already
  // sent by then): the delivery report the simulator then sends reaches the page through the
  // event stream.
  services.simulator?.setMode('+31612345678', 'normal')
  await reply.locator('.status.delivered').waitFor()
  t.equal(await page.evaluate('window.__sameDocument'), true, 'the reply shows as delivered without a reload')

  // Closing offers an undo; the closed ticket's page says what the customer's next text does.
  const closed = page.waitForEvent('load')
  await page.click('form.status button[value=closed]')
  await closed
  await page.locator('.closed-notice', { hasText: 'This ticket is closed' }).waitFor()
  await checkA11y(t, page, 'a closed ticket with its undo')
  const undone = page.waitForEvent('load')
  await page.getByRole('button', { name: 'Undo close' }).click()
  await undone
  t.equal(await page.locator('.ticket-head .badge.open').count(), 1, 'Undo close: open again')

  // Waiting on the customer; their answer turns the header (badge and buttons) open without a reload.
  const pending = page.waitForEvent('load')
  await page.click('form.status button[value=pending]')
  await pending
  await page.locator('.ticket-head .badge.pending').waitFor()
  await page.evaluate('window.__sameDocument = true')
  const answer = await fetch(`${base}/webhooks/messagebird`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ originator: '31612345678', payload: 'Great, thank you', id: 'browser-2' })
  })
  t.equal(answer.status, 200)
  await page.locator('#timeline li.inbound', { hasText: 'Great, thank you' }).waitFor()
  await page.locator('.ticket-head .badge.open').waitFor()
  t.equal(await page.locator('form.status button[value=pending]').count(), 1, 'the header offers Pending again, not Mark open')
  t.equal(await page.evaluate('window.__sameDocument'), true, 'the header followed the customer\'s answer without a reload')

  ada.expectLoadError(/\/tickets\/abc$/, 404)
  await page.goto(`${base}/tickets/abc`)
  t.match(await page.textContent('main'), /There is no ticket abc/, 'a ticket address that is not one gets a sentence')
  await checkA11y(t, page, 'the not-found page')

  const out = page.waitForEvent('load')
  await page.click('header form[action="/logout"] button')
  await out
  t.match(page.url(), /\/login/, 'signing out lands on the sign-in page')
  t.match(await page.textContent('main'), /You are signed out\./, 'which says so')
  await page.goto(`${base}/inbox`)
  t.match(page.url(), /\/login\?next=%2Finbox$/, 'after signing out the inbox asks for sign-in again')

  t.same(ada.problems, [], 'no CSP violations, console errors or page errors')
})
