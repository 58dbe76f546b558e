import { readFile } from 'node:fs/promises'
import t from 'tap'
import { createAgent } from '../auth/agent-session.js'
import { checkA11y, launch, person, screenshot, screenshotDir, signIn, startApp } from './harness.js'

// Data and privacy in Chromium against the real service and its CSP: an admin downloads a
// customer's export from their profile, then erases the customer through both confirmations and
// sees the profile erased.

t.test('an admin exports a customer as JSON, then erases them with the double confirmation', async (t) => {
  const { base, services } = await startApp(t)
  await createAgent(services, { email: 'grace@example.com', name: 'Grace Admin', role: 'admin' })
  const hook = await fetch(`${base}/webhooks/messagebird`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ originator: '31612345678', payload: 'Please forget about me', id: 'privacy-1' })
  })
  t.equal(hook.status, 200)
  const ticketId = (await hook.json() as { ticket_id: number }).ticket_id

  const browser = await launch(t)
  const admin = await person(t, browser, 'Grace')
  const page = admin.page
  const shots = screenshotDir(t)
  await signIn(page, base, 'grace@example.com')

  await page.goto(`${base}/tickets/${ticketId}`)
  await Promise.all([page.waitForURL(/\/contacts\/\d+$/), page.click('#ticket-head a:has-text("Customer profile")')])
  const contactId = Number(/\/contacts\/(\d+)$/.exec(page.url())?.[1])

  // The export link downloads a JSON file.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#privacy a:has-text("Export all their data")')])
  t.match(download.suggestedFilename(), new RegExp(`^textdesk-customer-${contactId}-\\d{4}-\\d\\d-\\d\\d\\.json$`), 'an attachment named by customer number and date')
  const exported = JSON.parse(await readFile(await download.path(), 'utf8'))
  t.equal(exported.contact.phone, '+31612345678')
  t.equal(exported.tickets[0].messages[0].body, 'Please forget about me')

  // First confirmation: the page that says what happens. Second: typing ERASE.
  await Promise.all([page.waitForURL(/\/contacts\/\d+\/erase$/), page.click('#privacy a:has-text("Erase this customer")')])
  await checkA11y(t, page, 'the erase confirmation')
  await screenshot(page, shots, 'erase-confirm-wide')
  admin.expectLoadError(/\/contacts\/\d+\/erase$/, 422)
  await page.fill('#erase-confirm', 'yes')
  await Promise.all([page.waitForLoadState('load'), page.click('form.erase-form button[type=submit]')])
  await page.locator('#erase-error').waitFor()
  t.match(await page.textContent('#erase-error'), /To erase, type ERASE or the customer's number/)
  t.equal((await services.db.selectFrom('contacts').select('name').where('id', '=', contactId).executeTakeFirstOrThrow()).name, null, 'nothing erased yet')

  await page.fill('#erase-confirm', 'ERASE')
  await Promise.all([page.waitForURL(new RegExp(`/contacts/${contactId}\\?erased=1$`)), page.click('form.erase-form button[type=submit]')])
  t.equal(await page.textContent('h1'), '[erased] ' + (await services.db.selectFrom('contacts').select('phone').where('id', '=', contactId).executeTakeFirstOrThrow()).phone)
  t.match(await page.textContent('#privacy'), /personal data was erased on/)
  t.notMatch(await page.content(), /\+31612345678|Please forget about me/, 'neither the number nor the text is on the page')
  t.equal(await page.locator('#privacy a:has-text("Erase this customer")').count(), 0, 'no second erasure offered')
  await checkA11y(t, page, 'an erased profile')
  await screenshot(page, shots, 'erased-profile-wide')

  await page.goto(`${base}/tickets/${ticketId}`)
  t.notMatch(await page.content(), /Please forget about me/, 'the thread shows the text erased')
  await page.goto(`${base}/admin/audit`)
  t.match(await page.textContent('.audit-log'), new RegExp(`Grace Admin erased customer ${contactId}`))
  t.same(admin.problems, [], 'no CSP violations, console errors or page errors')
})
