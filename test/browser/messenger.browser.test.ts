import t from 'tap'
import { createAgent } from '../auth/agent-session.js'
import { checkA11y, launch, person, screenshot, screenshotDir, signIn, startApp } from './harness.js'

// Messenger end to end in Chromium, on the simulator channel: a customer writes in through the
// simulator's Messenger chat, the agent answers from the inbox, the answer arrives in the chat
// (on Messenger, not by SMS), and the customer's one-click read receipt shows in the thread.

const PSID = '6019876543210987'

t.test('a Messenger customer writes in through the simulator, the agent answers from the inbox, the read receipt is one click', async (t) => {
  const { base, services, db } = await startApp(t)
  await createAgent(services, { email: 'ada@example.com', name: 'Ada Lovelace' })
  const browser = await launch(t)
  const ada = await person(t, browser, 'Ada')
  const { page } = ada
  await signIn(page, base, 'ada@example.com')
  const shots = screenshotDir(t)

  await page.goto(`${base}/simulator`)
  await Promise.all([page.waitForURL(/\/simulator\/messenger$/), page.click('text=Messenger simulator')])
  await page.fill('#sim-user', PSID)
  await page.fill('#sim-name', 'Jane Doe')
  await Promise.all([page.waitForURL(/user=6019876543210987&name=Jane/), page.click('form.phone-number button')])
  t.match(await page.locator('.phone-header').textContent(), /as\s+Jane Doe\s+\(6019876543210987\)/)
  await page.fill('#sim-text', 'My parcel is late')
  await Promise.all([page.waitForURL(/\/simulator\/messenger\?user=/), page.locator('#sim-text').press('Enter')])
  await page.locator('#messenger-messages li.msg.outbound .bubble', { hasText: 'My parcel is late' }).waitFor()
  // The confirmation arrives in the chat: it went back on Messenger.
  await page.locator('#messenger-messages li.msg.inbound .bubble', { hasText: 'Your ticket ID is' }).waitFor()
  await checkA11y(t, page, 'the Messenger simulator')

  await page.goto(`${base}/inbox?view=open`)
  await Promise.all([page.waitForURL(/\/tickets\/\d+/), page.click('text=Jane Doe')])
  t.match(await page.locator('label[for=reply-body]').textContent(), `Reply by Messenger to ${PSID}`, 'the composer says the reply goes to Messenger')
  const inbound = page.locator('#timeline li.inbound', { hasText: 'My parcel is late' })
  t.equal(await inbound.locator('.channel').textContent(), 'Messenger', 'the customer\'s bubble names its channel')
  await page.fill('#reply-body', 'It leaves our warehouse today')
  await Promise.all([page.waitForEvent('load'), page.click('form.reply button[type=submit]')])
  const reply = page.locator('#timeline li.outbound', { hasText: 'It leaves our warehouse today' })
  await reply.locator('.status.delivered').waitFor()
  t.equal(await reply.locator('.channel').textContent(), 'Messenger', 'the reply\'s bubble names its channel')
  await screenshot(page, shots, 'messenger-ticket')
  await checkA11y(t, page, 'a Messenger customer\'s ticket')
  const stored = await db.selectFrom('messages').select(['channel', 'to_address']).where('kind', '=', 'reply').executeTakeFirstOrThrow()
  t.same(stored, { channel: 'messenger', to_address: `messenger:${PSID}` })

  // The customer sees the answer in the chat, delivered but not read, and reads it with one click.
  await page.goto(`${base}/simulator/messenger?user=${PSID}&name=Jane%20Doe`)
  const answer = page.locator('#messenger-messages li.msg.inbound', { hasText: 'It leaves our warehouse today' })
  await answer.locator('.status.delivered').waitFor()
  await Promise.all([page.waitForURL(/\/simulator\/messenger\?user=/), answer.getByRole('button', { name: 'Mark as read' }).click()])
  await answer.locator('.status.read').waitFor()
  t.equal(await answer.getByRole('button', { name: 'Mark as read' }).count(), 0, 'a read message offers no second receipt')
  await screenshot(page, shots, 'messenger-chat')

  await page.goto(`${base}/inbox?view=open`)
  await Promise.all([page.waitForURL(/\/tickets\/\d+/), page.click('text=Jane Doe')])
  await page.locator('#timeline li.outbound', { hasText: 'It leaves our warehouse today' }).locator('.status.read').waitFor()
  t.same(ada.problems, [], 'no CSP violations, console errors or page errors')
})
