import t from 'tap'
import { createAgent } from '../auth/agent-session.js'
import { FakeClock } from '../helper.js'
import { checkA11y, launch, person, signIn, startApp, textIn } from './harness.js'

// Merging two tickets of one customer in Chromium against the real service: the agent picks the
// customer's other ticket on the ticket page, lands on it with "merged into", and the old ticket's
// address leads there too.

const CUSTOMER = '+31612345678'

t.test('merging a ticket into the customer\'s other ticket: the agent lands on it, sees "merged into", and the old address redirects', async (t) => {
  const clock = new FakeClock()
  const { base, services } = await startApp(t, {}, { clock })
  await createAgent(services, { email: 'ada@example.com', name: 'Ada Lovelace' })
  const first = await textIn(base, CUSTOMER, 'My parcel never came', 'merge-1')
  await services.tickets.close(first, null)
  clock.advance(60_000)
  const second = await textIn(base, CUSTOMER, 'Still nothing, any news?', 'merge-2')

  const browser = await launch(t)
  const agent = await person(t, browser, 'Ada')
  const page = agent.page
  await signIn(page, base, 'ada@example.com')
  await page.goto(`${base}/tickets/${second}`)
  clock.advance(60_000)
  await page.locator('#merge-into').selectOption(String(first))
  await Promise.all([page.waitForURL(new RegExp(`/tickets/${first}\\?merged=${second}$`)), page.getByRole('button', { name: 'Merge', exact: true }).click()])

  t.match(await page.locator('.merged-notice').textContent(), new RegExp(`Ticket #${second} was merged into #${first}`), 'the notice says where it went')
  t.match(await page.locator('#timeline').textContent(), /My parcel never came[\s\S]*Still nothing, any news\?/, 'both tickets\' messages in one thread')
  t.match(await page.locator('#timeline').textContent(), new RegExp(`Ada Lovelace merged #${second} into this ticket`), 'the merge is in the timeline')
  await checkA11y(t, page, 'a ticket another one was merged into')

  await page.goto(`${base}/tickets/${second}`)
  t.match(page.url(), new RegExp(`/tickets/${first}\\?merged=${second}$`), 'the old ticket\'s address redirects to the target')
  t.match(await page.locator('.merged-notice').textContent(), new RegExp(`merged into #${first}`))
  t.same(agent.problems, [], 'no CSP violations, console errors or page errors')
})
