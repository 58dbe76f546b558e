import t from 'tap'
import { createAgent } from '../auth/agent-session.js'
import { FakeClock } from '../helper.js'
import { checkA11y, launch, person, screenshot, screenshotDir, signIn, startApp, textIn } from './harness.js'

// Retrying a failed message and a customer's `#<ref>`, in Chromium against the real service: the
// simulator rejects the customer's number, so the agent's reply fails; the agent retries it to the
// customer's other number from the bubble; the customer's next text names the ticket and shows as
// a tag.

const CUSTOMER = '+31612345678'
const OTHER = '+31687654321'

t.test('a failed reply shows Retry; retrying to another number shows the new bubble; a #ref text shows its tag', async (t) => {
  // The clock moves a minute between the steps, so the thread reads in the order things happened.
  const clock = new FakeClock()
  const { base, services, db } = await startApp(t, {}, { clock })
  await createAgent(services, { email: 'ada@example.com', name: 'Ada Lovelace' })
  // The customer's phone rejects everything from the start (the confirmation too); their other does not.
  if (services.simulator === null) throw new Error('the browser test runs on the simulator channel')
  services.simulator.setMode(CUSTOMER, 'failing')
  const ticketId = await textIn(base, CUSTOMER, 'Where is my parcel?', 'retry-1')
  await services.contacts.add(ticketId, 'sms', OTHER)

  const browser = await launch(t)
  const agent = await person(t, browser, 'Ada')
  const page = agent.page
  await signIn(page, base, 'ada@example.com')
  await page.goto(`${base}/tickets/${ticketId}`)
  clock.advance(60_000)
  await page.fill('#reply-body', 'Your parcel left today')
  await Promise.all([page.waitForEvent('load'), page.click('form.reply button[type=submit]')])

  // The simulator rejects the number at once: the bubble turns failed and offers Retry (live).
  const failed = page.locator('#timeline li.outbound', { hasText: 'Your parcel left today' }).first()
  await failed.locator('form.retry').waitFor()
  t.match(await failed.locator('.status').textContent(), /Failed/)
  t.match(await failed.locator('.reason').textContent(), /rejected/)
  t.same(await failed.locator('select[name=to] option').allTextContents(), [`SMS ${CUSTOMER}`, `SMS ${OTHER}`], 'the customer\'s addresses to choose from')
  const shots = screenshotDir(t)
  await failed.scrollIntoViewIfNeeded()
  await screenshot(page, shots, 'retry-failed-wide')
  await checkA11y(t, page, 'a ticket with a failed message and its Retry form')

  clock.advance(60_000)
  await failed.locator('select[name=to]').selectOption(`sms:${OTHER}`)
  await Promise.all([page.waitForURL(/#m-[0-9a-f-]+$/), failed.getByRole('button', { name: 'Retry' }).click()])
  const retryId = new URL(page.url()).hash.slice('#m-'.length)
  const retry = page.locator(`#m-${retryId}`)
  t.equal(await retry.locator('.bubble').textContent(), 'Your parcel left today', 'the new bubble holds the same text')
  t.match(await retry.locator('.msg-meta').textContent(), new RegExp(`to SMS \\${OTHER}[\\s\\S]*retry of the failed message of`), 'to the other number, linked to the failed one')
  t.match(await page.locator('#timeline li.outbound', { hasText: 'retried as' }).first().textContent(), /retried as the message of/, 'the failed bubble links to the retry')
  t.equal(await page.locator('#timeline li.outbound', { hasText: 'Your parcel left today' }).locator('form.retry').count(), 0, 'the reply offers Retry no more')
  await retry.locator('.status.delivered').waitFor()
  const stored = await db.selectFrom('messages').select(['to_address', 'status', 'retry_of']).where('id', '=', retryId).executeTakeFirstOrThrow()
  t.same(stored, { to_address: OTHER, status: 'delivered', retry_of: stored.retry_of }, 'delivered to the other number')

  // The customer names the ticket: the live timeline shows the text with a tag.
  clock.advance(60_000)
  await textIn(base, CUSTOMER, `#${ticketId} thanks, got it on my other phone`, 'retry-2')
  const tagged = page.locator('#timeline li.inbound', { hasText: 'thanks, got it' })
  await tagged.waitFor()
  t.equal(await tagged.locator('.ref-tag').textContent(), `#${ticketId}`)
  t.equal(await tagged.locator('.bubble').textContent(), `#${ticketId} thanks, got it on my other phone`, 'the tag, then the text without the prefix')
  await tagged.scrollIntoViewIfNeeded()
  await screenshot(page, shots, 'ticket-ref-tag-wide')
  await checkA11y(t, page, 'a ticket with a retried message and a tagged text')
  t.same(agent.problems, [], 'no CSP violations, console errors or page errors')
})
