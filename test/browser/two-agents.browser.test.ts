import t from 'tap'
import type { Page } from 'playwright-core'
import { createAgent } from '../auth/agent-session.js'
import { checkA11y, launch, person, screenshot, screenshotDir, signIn, startApp } from './harness.js'

// Two agents, Ada and Bo, each in a browser context of their own, and a customer on the
// simulator's phone, against the real service: live lists, assignment, presence, a private note
// the phone never receives, a reply collision, a pending ticket reopened by the customer, a stream
// that drops and resumes without losing an event, the keyboard and the composer's safety. Every
// page and view is checked with axe-core; the README's screenshots are taken here.

const NUMBER = '+31612345678'
const LIVE_MS = 1000

async function notReloaded (page: Page): Promise<void> {
  await page.evaluate('window.__sameDocument = true')
}
async function stillSameDocument (page: Page): Promise<boolean> {
  return await page.evaluate('window.__sameDocument === true') as boolean
}

t.test('Ada and Bo work one customer\'s ticket together, live', async (t) => {
  const { app, base, services } = await startApp(t)
  await createAgent(services, { email: 'ada@example.com', name: 'Ada' })
  await createAgent(services, { email: 'bo@example.com', name: 'Bo' })
  const browser = await launch(t)
  const shots = screenshotDir(t)
  const ada = await person(t, browser, 'Ada')
  const bo = await person(t, browser, 'Bo')
  await signIn(ada.page, base, 'ada@example.com')
  await signIn(bo.page, base, 'bo@example.com')
  // The customer's phone: the simulator, in a tab of Ada's browser (it needs a signed-in session).
  const phone = await ada.context.newPage()
  phone.setDefaultTimeout(10_000)
  phone.on('console', (msg) => { if (msg.type() === 'error') ada.problems.push(`phone console: ${msg.text()}`) })
  phone.on('pageerror', (err) => { ada.problems.push(`phone page error: ${err.message}`) })
  await phone.goto(`${base}/simulator?number=${encodeURIComponent(NUMBER)}`)

  await ada.page.goto(`${base}/inbox?view=unassigned`)
  await bo.page.goto(`${base}/inbox?view=unassigned`)
  for (const p of [ada.page, bo.page]) await notReloaded(p)
  await checkA11y(t, ada.page, 'an empty Unassigned view')

  // 1. A customer texts; the ticket appears in both lists within a second, without a reload.
  await phone.fill('#sim-text', 'My parcel never came')
  await Promise.all([phone.waitForURL(/\/simulator\?/), phone.press('#sim-text', 'Enter')])
  const sentAt = Date.now()
  const row = (p: Page) => p.locator('#ticket-list .ticket-row', { hasText: 'My parcel never came' })
  await Promise.all([row(ada.page).waitFor({ timeout: 5000 }), row(bo.page).waitFor({ timeout: 5000 })])
  const took = Date.now() - sentAt
  t.ok(took < LIVE_MS, `the new ticket reached both lists in ${took} ms`)
  t.ok(await stillSameDocument(ada.page) && await stillSameDocument(bo.page), 'without a reload')
  const ticketId = await row(ada.page).getAttribute('data-ticket-id')
  t.ok(ticketId, 'the row names its ticket')
  t.ok(await row(ada.page).evaluate((el) => el.classList.contains('unread')), 'unread for Ada')
  await ada.page.waitForFunction('/^\\(1\\) /.test(document.title)')
  t.match(await ada.page.title(), /^\(1\) /, 'the tab title counts the unread ticket')
  await checkA11y(t, ada.page, 'the Unassigned view with a ticket')

  // 2. Ada takes it from the list with the keyboard; Bo sees it leave Unassigned, live.
  await ada.page.keyboard.press('j')
  const taken = ada.page.waitForEvent('load')
  await ada.page.keyboard.press('a')
  await taken
  await row(bo.page).waitFor({ state: 'detached' })
  t.equal(await bo.page.locator('[data-count-for=unassigned]').first().textContent(), '0', 'Bo\'s Unassigned count follows')
  t.ok(await stillSameDocument(bo.page), 'Bo never reloaded')

  // Every view, for Ada.
  for (const view of ['mine', 'unassigned', 'open', 'pending', 'closed']) {
    await ada.page.goto(`${base}/inbox?view=${view}`)
    await checkA11y(t, ada.page, `the ${view} view`)
  }
  await ada.page.goto(`${base}/inbox?view=mine`)
  t.equal(await row(ada.page).count(), 1, 'the ticket is in Ada\'s Mine view')

  // 3. Bo opens it; Ada, on the same ticket, sees Bo viewing.
  await ada.page.goto(`${base}/tickets/${ticketId}?view=mine`)
  await bo.page.goto(`${base}/tickets/${ticketId}?view=open`)
  await ada.page.locator('#presence', { hasText: 'Bo is viewing' }).waitFor()
  await bo.page.locator('#presence', { hasText: 'Ada is viewing' }).waitFor()
  await checkA11y(t, ada.page, 'a ticket page with a colleague viewing')

  // 4. Ada writes a private note; Bo sees it live; the phone never receives it.
  await ada.page.keyboard.press('n')
  await ada.page.keyboard.type('VIP customer: offer a free resend')
  await Promise.all([ada.page.waitForURL(new RegExp(`/tickets/${ticketId}`)), ada.page.keyboard.press('Control+Enter')])
  await bo.page.locator('#timeline li.note', { hasText: 'VIP customer: offer a free resend' }).waitFor()

  // 5. Bo replies while Ada writes one too: Ada sees Bo typing, and her Send warns of the collision.
  await ada.page.keyboard.press('r')
  await ada.page.keyboard.type('Sorry to hear that!')
  await bo.page.locator('#reply-body').pressSequentially('We will resend it today.')
  await ada.page.locator('#presence', { hasText: 'Bo is typing…' }).waitFor()
  await Promise.all([bo.page.waitForURL(new RegExp(`/tickets/${ticketId}`)), bo.page.click('form.reply button[type=submit]')])
  await ada.page.locator('#timeline li.outbound', { hasText: 'We will resend it today.' }).waitFor()
  ada.expectLoadError(new RegExp(`/tickets/${ticketId}/replies$`), 409)
  await Promise.all([ada.page.waitForLoadState('load'), ada.page.click('form.reply button[type=submit]')])
  const collision = ada.page.getByText(/Bo replied .* ago/)
  await collision.waitFor()
  t.match(await collision.textContent(), /We will resend it today/, 'the warning quotes Bo\'s reply')
  t.equal(await ada.page.inputValue('#reply-body'), 'Sorry to hear that!', 'Ada\'s draft is kept')
  await checkA11y(t, ada.page, 'the collision warning')
  await screenshot(ada.page, shots, 'collision-wide')

  // The phone got Bo's reply, live, and never the note.
  await phone.locator('#phone-messages li', { hasText: 'We will resend it today.' }).waitFor()
  t.notMatch(await phone.locator('#phone-messages').textContent(), /VIP customer/, 'the note never reached the phone')
  t.equal((await services.tickets.conversationWith(NUMBER, 100)).filter((m) => m.body.includes('VIP')).length, 0, 'nor any message to the customer')

  // 6. Bo sets it to waiting on the customer; the customer answers; it turns open for both.
  await ada.page.goto(`${base}/inbox?view=open`)
  await bo.page.goto(`${base}/tickets/${ticketId}?view=pending`)
  await submitStatus(bo.page, ticketId as string, 'pending')
  await row(ada.page).waitFor({ state: 'detached' })
  await bo.page.goto(`${base}/inbox?view=pending`)
  await row(bo.page).waitFor()
  await notReloaded(bo.page)
  await notReloaded(ada.page)
  await phone.fill('#sim-text', 'Thanks, it arrived!')
  await Promise.all([phone.waitForURL(/\/simulator\?/), phone.press('#sim-text', 'Enter')])
  await bo.page.locator('#ticket-list .ticket-row', { hasText: 'Thanks, it arrived!' }).waitFor({ state: 'detached' })
  await ada.page.locator('#ticket-list .ticket-row', { hasText: 'Thanks, it arrived!' }).waitFor()
  t.ok(await stillSameDocument(ada.page) && await stillSameDocument(bo.page), 'open again for both, live')

  // 7. The stream drops; an event published meanwhile is shown once Ada is back.
  ada.expectLoadError(/\/inbox\//, 'net::ERR_INTERNET_DISCONNECTED')
  ada.expectLoadError(/\/inbox\/events/, 'net::ERR_INCOMPLETE_CHUNKED_ENCODING')
  ada.expectLoadError(/\/inbox\/events/, 'net::ERR_EMPTY_RESPONSE')
  bo.expectLoadError(/\/inbox\/events/, 'net::ERR_INCOMPLETE_CHUNKED_ENCODING')
  bo.expectLoadError(/\/inbox\/events/, 'net::ERR_EMPTY_RESPONSE')
  await ada.context.setOffline(true)
  app.server.closeAllConnections()
  await ada.page.locator('#live-status', { hasText: 'Reconnecting…' }).waitFor()
  await checkA11y(t, ada.page, 'the inbox while reconnecting')
  await screenshot(ada.page, shots, 'reconnecting-wide')
  await services.tickets.receiveInbound({ provider: 'simulator', providerMessageId: 'while-away', from: '+31687654321', to: null, text: 'Is anyone there?', channel: 'sms' })
  await ada.context.setOffline(false)
  await ada.page.locator('#ticket-list .ticket-row', { hasText: 'Is anyone there?' }).waitFor({ timeout: 15_000 })
  t.ok(await stillSameDocument(ada.page), 'the missed event arrived on reconnect, without a reload')
  await ada.page.locator('#live-status', { hasText: 'Live again' }).waitFor()

  // 8. The composer: over the limit it warns and keeps every character; above 3 parts it asks.
  await ada.page.goto(`${base}/tickets/${ticketId}?view=open`)
  await ada.page.locator('#reply-body').fill('x'.repeat(1700))
  await ada.page.locator('#reply-limit-warning', { hasText: 'Too long: 1,700 characters' }).waitFor()
  await ada.page.click('form.reply button[type=submit]')
  t.equal((await ada.page.inputValue('#reply-body')).length, 1700, 'nothing cut, nothing sent')
  await checkA11y(t, ada.page, 'the composer over the limit')
  const long = 'Here is everything about your resend. '.repeat(14).trim()
  await ada.page.locator('#reply-body').fill(long)
  await ada.page.click('form.reply button[type=submit]')
  await ada.page.locator('.confirm-parts', { hasText: 'This reply is 4 SMS parts' }).waitFor()
  await screenshot(ada.page, shots, 'composer-confirm-wide')
  await Promise.all([ada.page.waitForURL(new RegExp(`/tickets/${ticketId}`)), ada.page.click('text=Send 4 parts')])
  await ada.page.locator('#timeline li.outbound', { hasText: 'Here is everything about your resend.' }).waitFor()
  await phone.locator('#phone-messages li', { hasText: 'Here is everything about your resend.' }).waitFor()

  // 9. The keyboard help, and the screenshots for the README.
  await ada.page.keyboard.press('?')
  await ada.page.getByRole('dialog', { name: 'Keyboard shortcuts' }).waitFor()
  await checkA11y(t, ada.page, 'the shortcut help')
  await screenshot(ada.page, shots, 'shortcuts-wide')
  await ada.page.keyboard.press('Escape')
  await screenshot(ada.page, shots, 'ticket-wide')
  await ada.page.goto(`${base}/inbox?view=open`)
  await screenshot(ada.page, shots, 'inbox-wide')
  await checkA11y(t, phone, 'the simulator after a conversation')
  await screenshot(phone, shots, 'simulator')

  await ada.page.setViewportSize({ width: 390, height: 844 })
  await checkA11y(t, ada.page, 'the inbox at 390 px')
  await screenshot(ada.page, shots, 'inbox-390')
  t.equal(await ada.page.evaluate('document.documentElement.scrollWidth'), 390, 'nothing wider than a phone screen')
  await ada.page.goto(`${base}/tickets/${ticketId}?view=open`)
  t.ok(await ada.page.locator('.back-to-list').isVisible(), 'the conversation has a way back to the list')
  await checkA11y(t, ada.page, 'a ticket at 390 px')
  await screenshot(ada.page, shots, 'ticket-390')
  t.equal(await ada.page.evaluate('document.documentElement.scrollWidth'), 390)

  t.same(ada.problems, [], 'Ada: no CSP violations, console errors or page errors')
  t.same(bo.problems, [], 'Bo: no CSP violations, console errors or page errors')
})

async function submitStatus (page: Page, ticketId: string, status: string): Promise<void> {
  const form = page.locator(`form[action="/tickets/${ticketId}/status"]`)
  const button = form.locator(`button[name=status][value=${status}]`)
  const loaded = page.waitForEvent('load')
  if (await button.count() > 0) {
    await button.first().click()
  } else {
    await form.locator('select[name=status]').selectOption(status)
    await form.locator('button[type=submit]').click()
  }
  await loaded
}
