import t from 'tap'
import { createAgent } from '../auth/agent-session.js'
import { FakeClock } from '../helper.js'
import { checkA11y, launch, person, screenshot, screenshotDir, signIn, startApp, textIn } from './harness.js'

// Send later in Chromium against the real service, in quiet hours (21:00–08:00, the customer's
// time): the agent schedules a reply for 21:30 their time, the bubble says it will go at 08:00,
// the worker holds it when its time comes (the injected clock moves; the drain stands for the
// poll), and the agent cancels it. Nothing reaches the customer's phone.

const CUSTOMER = '+31612345678'

t.test('a reply scheduled into quiet hours shows when it will really go, is held at its time, and can be cancelled', async (t) => {
  // 20:00 UTC is 21:00 in the Netherlands (CET): quiet hours have just begun there.
  const clock = new FakeClock('2026-01-01T20:00:00.000Z')
  const { base, services, db } = await startApp(t, { QUIET_HOURS: '21:00-08:00' }, { clock })
  await createAgent(services, { email: 'ada@example.com', name: 'Ada Lovelace' })
  const ticketId = await textIn(base, CUSTOMER, 'Can someone call me tomorrow?', 'later-1')
  const browser = await launch(t)
  const agent = await person(t, browser, 'Ada')
  const page = agent.page
  await signIn(page, base, 'ada@example.com')
  await page.goto(`${base}/tickets/${ticketId}`)

  t.match(await page.locator('fieldset.send-later').textContent(), /Quiet hours: 21:00–08:00 their time/)
  const zones = await page.locator('#send-zone option').allTextContents()
  t.match(zones[0], /^my time \(.+\)$/, 'the script offers the browser\'s zone first')
  t.match(zones, ['my time', /^their time \(Europe\/.+\)$/, 'UTC'])
  await page.fill('#reply-body', 'We will call you at 9 tomorrow')
  await page.fill('#send-at', '2026-01-01T21:30')
  await page.selectOption('#send-zone', 'their')
  await Promise.all([page.waitForEvent('load'), page.click('#send-later')])
  const { id: messageId } = await db.selectFrom('messages').select('id').where('ticket_id', '=', ticketId).where('kind', '=', 'reply').executeTakeFirstOrThrow()
  const bubble = page.locator(`#m-${messageId}`)
  t.equal(await bubble.locator('.bubble').textContent(), 'We will call you at 9 tomorrow')
  t.match(await bubble.locator('.scheduled').textContent(), /Scheduled: will send at 08:00, Fri 2 Jan their time \(held by quiet hours, 21:00–08:00; scheduled for 21:30\)/)

  // Its time comes in quiet hours: the worker holds it until 08:00 their time.
  clock.set('2026-01-01T20:30:00.000Z')
  await services.worker.drain()
  const row = await db.selectFrom('messages').select(['status', 'status_reason']).where('id', '=', messageId).executeTakeFirstOrThrow()
  t.match(row, { status: 'queued', status_reason: /Held for quiet hours/ })
  await page.reload()
  t.match(await bubble.locator('.scheduled').textContent(), /will send at 08:00, Fri 2 Jan their time/)
  await screenshot(page, screenshotDir(t), 'send-later-held')
  await checkA11y(t, page, 'a ticket with a scheduled reply held by quiet hours')

  await Promise.all([page.waitForEvent('load'), bubble.getByRole('button', { name: 'Cancel' }).click()])
  await bubble.locator('.status.blocked').waitFor()
  t.match(await bubble.locator('.reason').textContent(), /Cancelled by Ada Lovelace before it was sent\./)
  t.equal(await bubble.locator('form.cancel-scheduled').count(), 0, 'no Cancel once cancelled')
  t.match(await bubble.locator('.scheduled').textContent(), /Was scheduled for 21:30 their time/)

  clock.set('2026-01-02T07:00:00.000Z')
  await services.worker.drain()
  const sent = await db.selectFrom('messages').select('id').where('ticket_id', '=', ticketId).where('kind', '=', 'reply').where('status', '!=', 'blocked').execute()
  t.same(sent, [], 'nothing went out when quiet hours ended')
})
