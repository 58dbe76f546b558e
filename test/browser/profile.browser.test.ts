import { join } from 'node:path'
import t from 'tap'
import { createAgent } from '../auth/agent-session.js'
import { checkA11y, launch, person, screenshot, screenshotDir, signIn, startApp } from './harness.js'

// Customer profiles and "New message" in Chromium against the real service, its CSP and its
// outbox worker: an agent names a customer on the profile and sees the name in the inbox list,
// then starts a conversation from "New message" and sees it in the ticket's thread.

t.test('an agent names a customer on their profile, then starts a conversation with "New message"', async (t) => {
  const { base, services, db } = await startApp(t)
  await createAgent(services, { email: 'ada@example.com', name: 'Ada Lovelace' })
  const hook = await fetch(`${base}/webhooks/messagebird`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ originator: '31612345678', payload: 'Where is my parcel?', id: 'profile-1' })
  })
  t.equal(hook.status, 200)
  const ticketId = (await hook.json() as { ticket_id: number }).ticket_id

  const browser = await launch(t)
  const agent = await person(t, browser, 'Ada')
  const page = agent.page
  const shots = screenshotDir(t)
  await signIn(page, base, 'ada@example.com')

  // From the ticket to the profile; name the customer and write a note.
  await page.goto(`${base}/tickets/${ticketId}`)
  await Promise.all([page.waitForURL(/\/contacts\/\d+$/), page.click('#ticket-head a:has-text("Customer profile")')])
  t.equal(await page.textContent('h1'), '+31612345678')
  await page.fill('#contact-name', 'Grace Hopper')
  await page.fill('#contact-notes', 'Prefers a text after 17:00.')
  await Promise.all([page.waitForURL(/\/contacts\/\d+\?saved=1$/), page.click('form.profile-form button[type=submit]')])
  t.match(await page.textContent('h1'), /^Grace Hopper\s+\+31612345678$/)
  t.match(await page.textContent('#history'), /Ada Lovelace set the name to “Grace Hopper”/)
  await checkA11y(t, page, 'the customer profile')
  // The whole page: consent and tickets are below the fold.
  await page.screenshot({ path: join(shots, 'profile-wide.png'), fullPage: true })

  // A refusal keeps what was typed.
  agent.expectLoadError(/\/contacts\/\d+$/, 422)
  await page.fill('#contact-name', 'x'.repeat(101))
  await Promise.all([page.waitForLoadState('load'), page.click('form.profile-form button[type=submit]')])
  await page.locator('#profile-error').waitFor()
  t.match(await page.textContent('#profile-error'), /The name is 101 characters long; the limit is 100/)
  t.equal(await page.inputValue('#contact-name'), 'x'.repeat(101))

  // The inbox list shows the name.
  await page.goto(`${base}/inbox?view=open`)
  t.equal(await page.textContent(`tr.ticket-row[data-ticket-id="${ticketId}"] td:first-child a[href^="/tickets/"]`), 'Grace Hopper')

  // "New message" to a new number, typed as people write numbers; the counter counts.
  await Promise.all([page.waitForURL(/\/conversations\/new$/), page.click('.new-message a')])
  await page.fill('#conversation-number', '+31 6 8765 4321')
  await page.fill('#conversation-body', 'Hello from Textdesk: your new card is ready.')
  t.match(await page.textContent('#conversation-counter'), /^44 \/ 1,600 characters · 1 SMS part · GSM-7$/, 'the composer counter')
  await checkA11y(t, page, 'the New message page')
  await screenshot(page, shots, 'new-message-wide')
  await Promise.all([page.waitForURL(/\/tickets\/\d+$/), page.click('form.new-conversation button[type=submit]')])
  const newTicket = Number(/\/tickets\/(\d+)$/.exec(page.url())?.[1])
  t.not(newTicket, ticketId, 'a new ticket for the new number')
  const message = page.locator('#timeline li.outbound', { hasText: 'Hello from Textdesk: your new card is ready.' })
  await message.waitFor()
  // The worker sends it and the simulator reports delivery; the thread follows live.
  await page.locator('#timeline li.outbound', { hasText: 'Delivered' }).waitFor()
  await screenshot(page, shots, 'new-message-sent-wide')

  // From the profile: "New message" picks the customer; the message joins their open ticket.
  const grace = await db.selectFrom('contacts').select('id').where('phone', '=', '+31612345678').executeTakeFirstOrThrow()
  await page.goto(`${base}/contacts/${grace.id}`)
  await Promise.all([page.waitForURL(/\/conversations\/new\?contact=\d+$/), page.click('.profile-head a.button')])
  t.equal(await page.inputValue('#conversation-contact'), String(grace.id))
  await page.fill('#conversation-body', 'It left our warehouse today.')
  await Promise.all([page.waitForURL(new RegExp(`/tickets/${ticketId}$`)), page.click('form.new-conversation button[type=submit]')])
  await page.locator('#timeline li.outbound', { hasText: 'It left our warehouse today.' }).waitFor()
  t.match(await page.textContent('#ticket-head h1'), /^Grace Hopper/)
  t.same(agent.problems, [], 'no CSP violations, console errors or page errors')
})
