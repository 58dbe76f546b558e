import t from 'tap'
import { createAgent } from '../auth/agent-session.js'
import { FakeClock } from '../helper.js'
import { checkA11y, launch, person, screenshot, screenshotDir, signIn, startApp } from './harness.js'

// The WhatsApp window in Chromium against the real service on the simulator: a customer writes on
// WhatsApp, the clock moves past 24 h, the composer says the window is closed; an admin adds an
// approved template, sends it to the customer, then sends a text as SMS instead in one click.

const CUSTOMER = '+31612345678'

t.test('outside the WhatsApp window: the composer says closed, a template goes out, then "Send as SMS instead"', async (t) => {
  const clock = new FakeClock()
  const { base, services, db } = await startApp(t, { SESSION_TTL_HOURS: '720' }, { clock })
  await createAgent(services, { email: 'grace@example.com', name: 'Grace Hopper', role: 'admin' })
  const res = await fetch(`${base}/webhooks/messagebird/conversations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'message.created', message: { id: 'wa-in-1', status: 'received', direction: 'received', platform: 'whatsapp', from: CUSTOMER, type: 'text', content: { text: 'Where is my order?' } } })
  })
  t.equal(res.status, 200)
  const { ticket_id: ticketId } = await db.selectFrom('messages').select('ticket_id').where('provider_message_id', '=', 'wa-in-1').executeTakeFirstOrThrow()
  clock.advance(25 * 3600_000)

  const browser = await launch(t)
  const grace = await person(t, browser, 'Grace')
  const page = grace.page
  await signIn(page, base, 'grace@example.com')

  await page.goto(`${base}/admin/templates`)
  await page.fill('#template-namespace', 'cdb2df51_9816_c754')
  await page.fill('#template-name', 'order_update')
  await page.fill('#template-language', 'en')
  await page.fill('#template-params', 'customer name')
  await Promise.all([page.waitForEvent('load'), page.click('#template-form button[type=submit]')])
  t.match(await page.locator('table.templates tbody tr').first().textContent(), /order_update[\s\S]*en[\s\S]*1: customer name/, 'the list shows the new template')
  await checkA11y(t, page, 'the WhatsApp templates page')

  await page.goto(`${base}/tickets/${ticketId}`)
  t.equal(await page.locator('#whatsapp-window').textContent(), 'WhatsApp window closed: free text cannot be sent', 'the composer says closed')
  t.equal(await page.locator('label[for=reply-body]').textContent(), `Reply by WhatsApp to ${CUSTOMER}`, 'the channel the customer wrote from')
  await page.selectOption('#reply-to', `sms:${CUSTOMER}`)
  t.equal(await page.locator('label[for=reply-body]').textContent(), `Reply by SMS to ${CUSTOMER}`, 'the label follows "Send to"')
  await page.selectOption('#reply-to', `whatsapp:${CUSTOMER}`)
  t.ok(await page.locator('#send-as-sms').isVisible(), '"Send as SMS instead" is offered')
  await page.fill('#reply-body', 'Your order ships today')
  t.equal(await page.locator('#reply-counter').textContent(), '22 / 4,096 characters', 'WhatsApp\'s limit, in characters')
  await page.selectOption('#reply-to', `sms:${CUSTOMER}`)
  t.match(await page.locator('#reply-counter').textContent(), /22 \/ 1,600 characters · 1 SMS part · GSM-7/, 'SMS counts parts')
  t.ok(await page.locator('#whatsapp-window').isHidden(), 'no window for SMS')
  await page.selectOption('#reply-to', `whatsapp:${CUSTOMER}`)
  const shots = screenshotDir(t)
  await page.locator('#template-send').scrollIntoViewIfNeeded()
  await screenshot(page, shots, 'whatsapp-window-closed-wide')
  await checkA11y(t, page, 'a ticket outside the WhatsApp window')

  clock.advance(60_000)
  const form = page.locator('form.template-one', { hasText: 'order_update' })
  await form.getByLabel('customer name').fill('Ada')
  await Promise.all([page.waitForEvent('load'), form.getByRole('button', { name: 'Send template order_update' }).click()])
  const template = page.locator('#timeline li.outbound', { hasText: 'WhatsApp template order_update (en): Ada' })
  await template.waitFor()
  await template.locator('.status.delivered, .status.read').first().waitFor()

  clock.advance(60_000)
  t.equal(await page.locator('#reply-body').inputValue(), 'Your order ships today', 'the draft survived the template send')
  await Promise.all([page.waitForEvent('load'), page.click('#send-as-sms')])
  const sms = page.locator('#timeline li.outbound', { hasText: 'Your order ships today' })
  await sms.waitFor()
  const stored = await db.selectFrom('messages').select(['channel', 'to_address', 'template']).where('body', 'in', ['Your order ships today', 'WhatsApp template order_update (en): Ada']).orderBy('created_at').execute()
  t.same(stored.map((m) => [m.channel, m.to_address, m.template !== null]), [['whatsapp', CUSTOMER, true], ['sms', CUSTOMER, false]], 'a template on WhatsApp, then the text by SMS')
  t.same(grace.problems, [], 'no CSP violations, console errors or page errors')
})
