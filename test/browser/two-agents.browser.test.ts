import t from 'tap'
import type { Page } from 'playwright-core'
import { createAgent } from '../auth/agent-session.js'
import { FakeClock } from '../helper.js'
import { checkA11y, launch, person, screenshot, screenshotDir, signIn, startApp, untilText } from './harness.js'

// Two agents, Ada and Bo, each in a browser context of their own, and a customer on the
// simulator's phone, against the real service: live lists, assignment, presence, a private note
// the phone never receives, a reply collision, a pending ticket reopened by the customer, a stream
// that drops and resumes without losing an event, the keyboard and the composer's safety. Every
// page and view is checked with axe-core; the README's screenshots are taken here.

const NUMBER = '+31612345678'

/** Runs `action` and waits for the page it leads to (a form post's 303 and the page it lands on). */
async function navigates (page: Page, action: () => Promise<unknown>): Promise<void> {
  const loaded = page.waitForEvent('load')
  await action()
  await loaded
}

async function noteWhenShown (page: Page, text: string): Promise<void> {
  await page.evaluate(`(() => {
    window.__shownAt = 0
    const shown = () => Array.from(document.querySelectorAll('#ticket-list .ticket-row')).some((r) => r.textContent.includes(${JSON.stringify(text)}))
    new MutationObserver((changes, observer) => {
      if (shown()) { window.__shownAt = Date.now(); observer.disconnect() }
    }).observe(document.body, { subtree: true, childList: true, characterData: true })
  })()`)
}
async function shownAt (page: Page): Promise<number> {
  return await page.evaluate('window.__shownAt') as number
}

async function notReloaded (page: Page): Promise<void> {
  await page.evaluate('window.__sameDocument = true')
}
async function stillSameDocument (page: Page): Promise<boolean> {
  return await page.evaluate('window.__sameDocument === true') as boolean
}

t.test('Ada and Bo work one customer\'s ticket together, live', async (t) => {
  // The injected clock starts at the real time (the screenshots show today) and moves only when told.
  const clock = new FakeClock(new Date().toISOString())
  const { app, base, services } = await startApp(t, {}, { clock })
  await createAgent(services, { email: 'ada@example.com', name: 'Ada' })
  await createAgent(services, { email: 'bo@example.com', name: 'Bo' })
  const browser = await launch(t)
  const shots = screenshotDir(t)
  const ada = await person(t, browser, 'Ada')
  const bo = await person(t, browser, 'Bo')
  await signIn(ada.page, base, 'ada@example.com')
  await signIn(bo.page, base, 'bo@example.com')
  // The customer's phone: the simulator, in a tab of Ada's browser (it needs a signed-in session).
  const phone = await ada.newPage('phone')
  await phone.goto(`${base}/simulator?number=${encodeURIComponent(NUMBER)}`)

  await ada.page.goto(`${base}/inbox?view=unassigned`)
  await bo.page.goto(`${base}/inbox?view=unassigned`)
  for (const p of [ada.page, bo.page]) await notReloaded(p)
  await checkA11y(t, ada.page, 'an empty Unassigned view')

  // 1. A customer texts; the ticket appears in both lists within a second, without a reload.
  // Measured from the moment the phone's browser sent the text (the request's start, a wall-clock
  // time) to the moment each page shows its row (noted in the page, so the test's own polling adds
  // nothing): the server's handling of the text counts too.
  for (const p of [ada.page, bo.page]) await noteWhenShown(p, 'My parcel never came')
  await phone.fill('#sim-text', 'My parcel never came')
  const posted = phone.waitForRequest((req) => req.method() === 'POST' && req.url().endsWith('/simulator/messages'))
  await navigates(phone, async () => await phone.press('#sim-text', 'Enter'))
  const sentAt = (await posted).timing().startTime
  const newRow = (p: Page) => p.locator('#ticket-list .ticket-row', { hasText: 'My parcel never came' })
  await Promise.all([newRow(ada.page).waitFor({ timeout: 5000 }), newRow(bo.page).waitFor({ timeout: 5000 })])
  const shown = [await shownAt(ada.page), await shownAt(bo.page)]
  const took = Math.max(...shown) - sentAt
  t.ok(sentAt > 0 && shown.every((at) => at > 0), 'the new ticket reached both lists without a reload')
  // The 1 s target is measured by `npm run bench -- live` (event delivery p99), never asserted by a
  // test: a loaded CI machine would make a timed assertion fail for reasons that are not bugs.
  t.comment(`the new ticket reached both lists ${Math.round(took)} ms after the customer sent it`)
  t.ok(await stillSameDocument(ada.page) && await stillSameDocument(bo.page), 'without a reload')
  const ticketId = await newRow(ada.page).getAttribute('data-ticket-id')
  t.ok(ticketId, 'the row names its ticket')
  const row = (p: Page) => p.locator(`#ticket-list .ticket-row[data-ticket-id="${ticketId}"]`)
  t.ok(await row(ada.page).evaluate((el) => el.classList.contains('unread')), 'unread for Ada')
  await untilText(ada.page, 'title', '(1) Unassigned · Textdesk')
  t.equal(await ada.page.title(), '(1) Unassigned · Textdesk', 'the tab title counts the unread ticket')
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
  // The injected clock moves between steps, so the thread's items have distinct times.
  clock.advance(2000)
  await ada.page.keyboard.press('n')
  await ada.page.keyboard.type('VIP customer: offer a free resend')
  await navigates(ada.page, async () => await ada.page.keyboard.press('Control+Enter'))
  await bo.page.locator('#timeline li.note', { hasText: 'VIP customer: offer a free resend' }).waitFor()

  // 5. Bo replies while Ada writes one too: Ada sees Bo typing, and her Send warns of the collision.
  await ada.page.keyboard.press('r')
  await ada.page.keyboard.type('Sorry to hear that!')
  await bo.page.locator('#reply-body').pressSequentially('We will resend it today.')
  await ada.page.locator('#presence', { hasText: 'Bo is typing…' }).waitFor()
  await screenshot(ada.page, shots, 'ticket-presence-wide')
  clock.advance(2000)
  await navigates(bo.page, async () => await bo.page.click('form.reply button[type=submit]'))
  await ada.page.locator('#timeline li.outbound', { hasText: 'We will resend it today.' }).waitFor()
  ada.expectLoadError(new RegExp(`/tickets/${ticketId}/replies$`), 409)
  clock.advance(10_000)
  await navigates(ada.page, async () => await ada.page.click('form.reply button[type=submit]'))
  const collision = ada.page.getByText(/Bo replied .* ago/)
  await collision.waitFor()
  t.match(await collision.textContent(), /Bo replied 10 s ago: .*We will resend it today/, 'the warning says who replied when, and quotes the reply')
  t.equal(await ada.page.inputValue('#reply-body'), 'Sorry to hear that!', 'Ada\'s draft is kept')
  await checkA11y(t, ada.page, 'the collision warning')
  await ada.page.locator('form.reply').scrollIntoViewIfNeeded()
  await screenshot(ada.page, shots, 'collision-wide')

  // Ada reads it and sends hers anyway.
  await navigates(ada.page, async () => await ada.page.getByRole('button', { name: 'Send anyway' }).click())
  await ada.page.locator('#timeline li.outbound', { hasText: 'Sorry to hear that!' }).waitFor()
  t.equal(await ada.page.inputValue('#reply-body'), '', 'the sent draft is cleared')

  // The phone got both replies, live, and never the note.
  await phone.locator('#phone-messages li', { hasText: 'Sorry to hear that!' }).waitFor()
  await phone.locator('#phone-messages li', { hasText: 'We will resend it today.' }).waitFor()
  t.notMatch(await phone.locator('#phone-messages').textContent(), /VIP customer/, 'the note never reached the phone')
  t.equal((await services.tickets.conversationWith(NUMBER, 100)).filter((m) => m.body.includes('VIP')).length, 0, 'nor any message to the customer')
  await screenshot(phone, shots, 'simulator')

  // 6. Bo sets it to waiting on the customer; the customer answers; it turns open for both.
  await ada.page.goto(`${base}/inbox?view=open`)
  await bo.page.goto(`${base}/tickets/${ticketId}?view=pending`)
  await submitStatus(bo.page, ticketId as string, 'pending')
  await row(ada.page).waitFor({ state: 'detached' })
  await bo.page.goto(`${base}/inbox?view=pending`)
  await row(bo.page).waitFor()
  await notReloaded(bo.page)
  await notReloaded(ada.page)
  clock.advance(60_000)
  await phone.fill('#sim-text', 'Thanks, it arrived!')
  await navigates(phone, async () => await phone.press('#sim-text', 'Enter'))
  await row(bo.page).waitFor({ state: 'detached' })
  await row(ada.page).filter({ hasText: 'Thanks, it arrived!' }).waitFor()
  t.equal(await row(ada.page).locator('.badge.open').count(), 1, 'Ada sees it open again')
  t.equal(await bo.page.locator('[data-count-for=pending]').first().textContent(), '0', 'Bo\'s Pending count follows')
  t.ok(await stillSameDocument(ada.page) && await stillSameDocument(bo.page), 'open again for both, live')

  // 7. The stream drops; an event published meanwhile is shown once Ada is back.
  ada.expectLoadError(/\/inbox\//, 'net::ERR_INTERNET_DISCONNECTED')
  ada.expectLoadError(/\/inbox\/events/, 'net::ERR_INCOMPLETE_CHUNKED_ENCODING')
  ada.expectLoadError(/\/inbox\/events/, 'net::ERR_EMPTY_RESPONSE')
  bo.expectLoadError(/\/inbox\/events/, 'net::ERR_INCOMPLETE_CHUNKED_ENCODING')
  bo.expectLoadError(/\/inbox\/events/, 'net::ERR_EMPTY_RESPONSE')
  const resumedFrom: string[] = []
  ada.page.on('request', (req) => {
    if (!req.url().includes('/inbox/events')) return
    resumedFrom.push(req.headers()['last-event-id'] ?? new URL(req.url()).searchParams.get('lastEventId') ?? '')
  })
  await ada.context.setOffline(true)
  app.server.closeAllConnections()
  await ada.page.locator('#live-status', { hasText: 'Reconnecting…' }).waitFor()
  await checkA11y(t, ada.page, 'the inbox while reconnecting')
  await screenshot(ada.page, shots, 'reconnecting-wide')
  await services.tickets.receiveInbound({ provider: 'simulator', providerMessageId: 'while-away', from: '+31687654321', to: null, text: 'Is anyone there?', channel: 'sms' })
  await ada.context.setOffline(false)
  await ada.page.locator('#ticket-list .ticket-row', { hasText: 'Is anyone there?' }).waitFor({ timeout: 15_000 })
  t.ok(await stillSameDocument(ada.page), 'the missed event arrived on reconnect, without a reload')
  t.ok(resumedFrom.length > 0 && resumedFrom.every((id) => id !== ''), `every reconnect named the last event it had seen (${resumedFrom.join(', ')})`)
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
  await navigates(ada.page, async () => await ada.page.click('text=Send 4 parts'))
  await ada.page.locator('#timeline li.outbound', { hasText: 'Here is everything about your resend.' }).waitFor()
  await phone.locator('#phone-messages li', { hasText: 'Here is everything about your resend.' }).waitFor()

  // 9. The keyboard help, and the screenshots for the README.
  await ada.page.keyboard.press('?')
  await ada.page.getByRole('dialog', { name: 'Keyboard shortcuts' }).waitFor()
  await checkA11y(t, ada.page, 'the shortcut help')
  await screenshot(ada.page, shots, 'shortcuts-wide')
  await ada.page.keyboard.press('Escape')
  const list = await ada.page.locator('.pane-list').boundingBox()
  const conversation = await ada.page.locator('.pane-conversation').boundingBox()
  t.ok(list !== null && conversation !== null && list.x + list.width <= conversation.x + 1 && Math.abs(list.y - conversation.y) < 1, 'wide: the list on the left, the conversation on the right')
  t.ok(await ada.page.locator('.back-to-list').isHidden(), 'no back link while both are shown')
  clock.advance(4 * 60_000)
  await ada.page.goto(`${base}/inbox?view=open`)
  await screenshot(ada.page, shots, 'inbox-wide')
  await checkA11y(t, phone, 'the simulator after a conversation')

  await ada.page.setViewportSize({ width: 390, height: 844 })
  await checkA11y(t, ada.page, 'the inbox at 390 px')
  await screenshot(ada.page, shots, 'inbox-390')
  t.equal(await ada.page.evaluate('document.documentElement.scrollWidth'), 390, 'the list is no wider than a phone screen')
  await ada.page.goto(`${base}/tickets/${ticketId}?view=open`)
  t.ok(await ada.page.locator('.pane-list').isHidden(), 'a ticket at 390 px: the conversation only')
  t.ok(await ada.page.locator('.back-to-list').isVisible(), 'with a way back to the list')
  await checkA11y(t, ada.page, 'a ticket at 390 px')
  await screenshot(ada.page, shots, 'ticket-390')
  t.equal(await ada.page.evaluate('document.documentElement.scrollWidth'), 390, 'nothing wider than a phone screen')
  await navigates(ada.page, async () => await ada.page.click('.back-to-list'))
  t.match(ada.page.url(), /\/inbox\?view=open$/, 'back to the view the ticket was opened from')
  t.ok(await ada.page.locator('.pane-list').isVisible() && await ada.page.locator('.pane-conversation').isHidden(), 'the list at 390 px, without the empty conversation pane')

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
