import t from 'tap'
import { createAgent } from '../auth/agent-session.js'
import { FakeClock } from '../helper.js'
import { checkA11y, launch, person, screenshot, screenshotDir, signIn, startApp, textIn } from './harness.js'

// Satisfaction and reports in Chromium against the real service: an agent answers and closes a
// ticket from its page, the survey appears in the thread, the customer's "5" comes in through the
// webhook and shows as the ticket's rating, and /reports draws its charts under the CSP.

const CUSTOMER = '+31612345678'

t.test('a customer\'s "5" is the closed ticket\'s rating, on the ticket and in the reports', async (t) => {
  const clock = new FakeClock()
  const { base, services } = await startApp(t, { CSAT: 'on' }, { clock })
  await createAgent(services, { email: 'ada@example.com', name: 'Ada Lovelace' })
  const ticketId = await textIn(base, CUSTOMER, 'My parcel never arrived', 'csat-1')

  const browser = await launch(t)
  const agent = await person(t, browser, 'Ada')
  const page = agent.page
  await signIn(page, base, 'ada@example.com')
  await page.goto(`${base}/tickets/${ticketId}`)
  clock.advance(4 * 60_000)
  await page.fill('#reply-body', 'A new one is on its way')
  await Promise.all([page.waitForEvent('load'), page.click('form.reply button[type=submit]')])
  clock.advance(60_000)
  await Promise.all([page.waitForEvent('load'), page.click('form.status button[value=closed]')])

  // The close queued the survey: the live thread shows it go out.
  const survey = page.locator('#timeline li.outbound', { hasText: 'How did we do?' })
  await survey.locator('.status.delivered').waitFor()
  t.match(await page.locator('#ticket-head').textContent(), /satisfaction survey sent/)

  clock.advance(10 * 60_000)
  t.equal(await textIn(base, CUSTOMER, '5', 'csat-2'), ticketId, 'the rating lands on the closed ticket')
  const rating = page.locator('#timeline li.inbound', { hasText: 'Satisfaction rating: 5 of 5.' })
  await rating.waitFor()
  await page.reload()
  t.equal(await page.locator('#ticket-head .csat-rating').textContent(), 'Rated 5 of 5', 'the rating shows in the ticket\'s header')
  t.equal(await page.locator('#ticket-head .badge.closed').count(), 1, 'still closed: no ticket was opened or reopened')
  const shots = screenshotDir(t)
  await screenshot(page, shots, 'ticket-rated-wide')
  await checkA11y(t, page, 'a closed ticket with its rating')

  await page.getByRole('link', { name: 'Reports' }).click()
  await page.waitForURL(/\/reports$/)
  t.equal(await page.locator('svg.chart[role=img]').count(), 6, 'six charts (failures are drawn when there are some)')
  t.ok(await page.locator('svg.chart').first().isVisible(), 'drawn')
  t.equal(await page.locator('#csat-average').textContent(), '5.00')
  const box = await page.locator('#report-volume rect.bar').first().boundingBox()
  t.ok(box !== null && box.width > 0, 'the bars have a size in the browser')
  await page.fill('#report-from', '2026-01-01')
  await page.fill('#report-to', '2026-01-01')
  await Promise.all([page.waitForURL(/from=2026-01-01&to=2026-01-01/), page.getByRole('button', { name: 'Show' }).click()])
  t.match(await page.locator('#report-volume p').textContent(), /1 opened, 1 closed/)
  const download = page.locator('#report-csat h2 a.csv')
  t.equal(await download.getAttribute('href'), '/reports/csat.csv?from=2026-01-01&to=2026-01-01')
  await screenshot(page, shots, 'reports-wide')
  await checkA11y(t, page, 'the reports page')
  t.same(agent.problems, [], 'no CSP violations, console errors or page errors')
})
