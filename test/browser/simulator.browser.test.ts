import t from 'tap'
import { createAgent } from '../auth/agent-session.js'
import { checkA11y, launch, person, signIn, startApp } from './harness.js'

// The simulator's phone in Chromium: Enter sends and Shift+Enter starts a line, the screen keeps
// the newest message in view, an invalid number gets a sentence instead of JSON.

const NUMBER = '+31612345678'

t.test('the phone: Enter sends, Shift+Enter is a new line, newest at the bottom, friendly number errors', async (t) => {
  const { base, services, clock } = await startApp(t)
  await createAgent(services, { email: 'ada@example.com', name: 'Ada' })
  const browser = await launch(t)
  const ada = await person(t, browser, 'Ada')
  const { page } = ada
  await signIn(page, base, 'ada@example.com')

  await page.goto(`${base}/simulator?number=${encodeURIComponent(NUMBER)}`)
  await checkA11y(t, page, 'the simulator, empty')
  const box = page.locator('#sim-text')
  await box.fill('First line')
  await box.press('Shift+Enter')
  await box.pressSequentially('second line')
  t.equal(await box.inputValue(), 'First line\nsecond line', 'Shift+Enter adds a line and sends nothing')
  await Promise.all([page.waitForURL(/\/simulator\?number=/), box.press('Enter')])
  await page.locator('#phone-messages li.msg.outbound .bubble', { hasText: 'second line' }).waitFor()
  t.equal(await page.locator('#sim-text').inputValue(), '', 'the box is empty after sending')
  const short = await page.evaluate('document.documentElement.scrollHeight') as number
  t.equal((await services.tickets.conversationWith(NUMBER))[0].body, 'First line\r\nsecond line', 'the text arrived as typed (the form sends CRLF)')

  await page.locator('#sim-text').press('Enter')
  t.equal(page.url(), `${base}/simulator?number=%2B31612345678`, 'Enter on an empty box sends nothing')

  for (let i = 0; i < 45; i++) {
    clock.advance(1000)
    await services.tickets.receiveInbound({ provider: 'simulator', providerMessageId: `bulk-${i}`, from: NUMBER, to: null, text: `Message ${i} of a long chat`, channel: 'sms' })
  }
  await page.goto(`${base}/simulator?number=${encodeURIComponent(NUMBER)}`)
  const screen = page.locator('#phone-messages')
  t.equal(await screen.locator('li.msg').count(), 30, 'the phone shows a bounded page of messages')
  const geometry = await screen.evaluate((el) => ({ top: el.scrollTop, height: el.scrollHeight, client: el.clientHeight, pageHeight: el.ownerDocument.documentElement.scrollHeight }))
  t.ok(geometry.height > geometry.client, 'the screen scrolls inside the phone')
  t.ok(geometry.top + geometry.client >= geometry.height - 2, 'scrolled to the newest message at the bottom')
  t.equal(geometry.pageHeight, short, 'the page is as tall with 47 messages as with 1')
  t.ok(await page.locator('#phone-messages li.msg').last().locator('.bubble', { hasText: 'Message 44 of a long chat' }).isVisible())
  await checkA11y(t, page, 'the simulator with a long chat')
  await Promise.all([page.waitForURL(/show=60/), page.click('text=Show older messages')])
  t.equal(await page.locator('#phone-messages li.msg').count(), 47, 'older messages on request')

  ada.expectLoadError(/\/simulator\?current=.*&number=12ab$/, 400)
  await page.fill('#sim-number', '12ab')
  await Promise.all([page.waitForURL(/number=12ab/), page.click('form.phone-number button')])
  const alert = page.locator('#sim-number-error[role=alert]')
  t.match(await alert.textContent(), /"12ab" is not a phone number a customer could text from\. Type it in international format/)
  t.notMatch(await page.textContent('body'), /statusCode|INVALID_PHONE/, 'no raw JSON')
  t.equal(await page.locator('.phone-header strong').textContent(), NUMBER, 'the phone stays on its number')
  await checkA11y(t, page, 'the simulator with a number error')

  t.same(ada.problems, [], 'no CSP violations, console errors or page errors')
})
