import t from 'tap'
import { createAgent } from '../auth/agent-session.js'
import { checkA11y, launch, person, screenshot, screenshotDir, signIn, startApp } from './harness.js'

// Canned replies in Chromium against the real service and its CSP: written on the manage page,
// fixed there in one click, inserted in a ticket's composer with `/name` (Tab, Enter, the arrows)
// and with the picker, their variables filled in for the ticket and the agent, and the
// composer's own look-alike fix.

t.test('an agent writes canned replies and inserts them with /name and the picker, variables filled in', async (t) => {
  const { base, services, db } = await startApp(t)
  const ada = await createAgent(services, { email: 'ada@example.com', name: 'Ada Lovelace' })
  const hook = await fetch(`${base}/webhooks/messagebird`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ originator: '31612345678', payload: 'Where is my parcel?', id: 'canned-1' })
  })
  t.equal(hook.status, 200)
  const ticketId = (await hook.json() as { ticket_id: number }).ticket_id
  await services.canned.create(ada.id, { name: 'goodbye', body: 'Bye {{customer.name}}!' })

  const browser = await launch(t)
  const agent = await person(t, browser, 'Ada')
  const page = agent.page
  await signIn(page, base, 'ada@example.com')

  // The manage page, from the header: write one with curly quotes, then fix them in one click.
  await page.goto(`${base}/inbox`)
  await Promise.all([page.waitForURL(/\/canned$/), page.click('header.top a[href="/canned"]')])
  await page.fill('#canned-name', 'greeting')
  await page.fill('#canned-text', 'Hi {{customer.name}}, {{agent.name}} here about ticket {{ticket.ref}} – we’re on it…')
  await Promise.all([page.waitForURL(/\/canned#canned-\d+$/), page.click('#new-canned button[type=submit]')])
  const item = page.locator('.canned-item', { hasText: '/greeting' })
  t.match(await item.locator('.sms-info').textContent(), /UCS-2\s+2 SMS parts · 84 UTF-16 units as written\s+· UCS-2 because of “–” “’” “…”/, 'the list shows parts and encoding, and why')
  const shots = screenshotDir(t)
  await screenshot(page, shots, 'canned-list-wide')
  await checkA11y(t, page, 'the canned replies page')
  await Promise.all([page.waitForURL(/\/canned#canned-\d+$/), item.getByRole('button', { name: /Replace look-alike characters/ }).click()])
  t.match(await item.locator('.canned-body').textContent(), /about ticket \{\{ticket\.ref\}\} - we're on it\.\.\.$/, 'the fix replaced the dash, the apostrophe and the ellipsis')
  t.match(await item.locator('.sms-info').textContent(), /GSM-7\s+1 SMS part · 98 septets/, 'one GSM-7 part now')
  t.equal(await item.getByRole('button', { name: /Replace look-alike/ }).count(), 0, 'nothing left to fix')

  // A customer with a name that is also markup: filled in as text.
  await db.updateTable('contacts').set({ name: 'Zoë "<b>" & Co' }).execute()
  await page.goto(`${base}/tickets/${ticketId}`)
  const area = page.locator('#reply-body')
  await area.focus()
  await page.keyboard.type('Thanks! /gr')
  const options = page.locator('#canned-suggestions [role=option]')
  await options.first().waitFor()
  t.same(await options.allTextContents(), ['/greeting Hi Zoë "<b>" & Co, Ada Lovelace here about ticket ' + ticketId + ' - we\'re on it...'], 'one match, with a preview')
  t.equal(await area.getAttribute('aria-activedescendant'), 'canned-option-0')
  await checkA11y(t, page, 'the composer with its suggestions open')
  await screenshot(page, shots, 'canned-composer-wide')
  await page.keyboard.press('Tab')
  const greeting = `Hi Zoë "<b>" & Co, Ada Lovelace here about ticket ${ticketId} - we're on it...`
  t.equal(await area.inputValue(), `Thanks! ${greeting}`, 'Tab inserts it in place of /gr, every variable filled')
  t.equal(await page.evaluate('document.activeElement && document.activeElement.id'), 'reply-body', 'the focus stays in the reply')
  t.ok(await page.locator('#canned-suggestions').isHidden(), 'and the list closes')
  t.match(await page.textContent('#reply-counter'), /^76 \/ 1,600 characters · 2 SMS parts · UCS-2$/, 'the counter follows (ë is not GSM-7)')
  t.ok(await page.locator('#reply-gsm-fix').isHidden(), 'and ë has no look-alike to offer')

  // Two matches: the arrows choose, Enter inserts (and does not start a new line).
  await page.keyboard.type(' /')
  await options.nth(1).waitFor()
  t.same(await options.locator('strong').allTextContents(), ['/goodbye', '/greeting'])
  await page.keyboard.press('ArrowDown')
  t.equal(await options.nth(1).getAttribute('aria-selected'), 'true')
  await page.keyboard.press('ArrowUp')
  await page.keyboard.press('Enter')
  t.equal(await area.inputValue(), `Thanks! ${greeting} Bye Zoë "<b>" & Co!`, 'Enter inserts the chosen one')
  // Escape closes the list and keeps what was typed.
  await page.keyboard.type(' /x')
  t.ok(await page.locator('#canned-suggestions').isHidden(), 'no name starts with x: no list')
  await page.keyboard.press('Backspace')
  await options.first().waitFor()
  await page.keyboard.press('Escape')
  t.ok(await page.locator('#canned-suggestions').isHidden(), 'Escape closes it')
  t.match(await area.inputValue(), / \/$/, 'and keeps the slash')
  await page.keyboard.press('Backspace')
  await page.keyboard.press('Backspace')

  // The picker inserts at the caret the agent left.
  await page.keyboard.press('Home')
  await page.keyboard.press('Control+Home')
  await page.selectOption('#canned-pick', 'goodbye')
  await page.click('form.canned-pick button[type=submit]')
  t.equal(await area.inputValue(), `Bye Zoë "<b>" & Co!Thanks! ${greeting} Bye Zoë "<b>" & Co!`, 'Insert puts it where the caret was')
  t.equal(new URL(page.url()).search, '', 'without leaving the page')

  // Sent as it reads.
  await area.fill(greeting)
  const sent = page.waitForEvent('load')
  await page.click('form.reply button[type=submit]')
  await sent
  await page.locator('#timeline li.outbound', { hasText: greeting }).waitFor()
  t.same(agent.problems, [], 'no CSP violations, console errors or page errors')
})

t.test('the composer offers to replace look-alike characters when they make a reply UCS-2', async (t) => {
  const { base, services } = await startApp(t)
  await createAgent(services, { email: 'ada@example.com', name: 'Ada Lovelace' })
  const hook = await fetch(`${base}/webhooks/messagebird`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ originator: '31612345678', payload: 'Hello', id: 'canned-2' })
  })
  const ticketId = (await hook.json() as { ticket_id: number }).ticket_id
  const browser = await launch(t)
  const agent = await person(t, browser, 'Ada')
  const page = agent.page
  await signIn(page, base, 'ada@example.com')
  await page.goto(`${base}/tickets/${ticketId}`)
  const area = page.locator('#reply-body')
  const offer = page.locator('#reply-gsm-fix')
  await area.fill('All good')
  t.ok(await offer.isHidden(), 'plain text: no offer')
  const fancy = '“We’ll call you” — tomorrow\u00a0at 10… ' + 'x'.repeat(60)
  await area.fill(fancy)
  await offer.waitFor()
  t.match(await page.textContent('#reply-counter'), /2 SMS parts · UCS-2$/)
  t.match(await offer.textContent(), /^Look-alike characters \(“ ’ ” — … and special spaces\) make this reply UCS-2: 2 SMS parts, 1 in GSM-7 without them\./)
  await checkA11y(t, page, 'the composer with the look-alike fix offered')
  await screenshot(page, screenshotDir(t), 'composer-gsm-fix-wide')
  await offer.getByRole('button', { name: 'Replace look-alike characters' }).click()
  t.equal(await area.inputValue(), '"We\'ll call you" - tomorrow at 10... ' + 'x'.repeat(60))
  t.match(await page.textContent('#reply-counter'), /1 SMS part · GSM-7$/, 'one GSM-7 part now')
  t.ok(await offer.isHidden(), 'the offer is gone')
  t.equal(await page.evaluate('document.activeElement && document.activeElement.id'), 'reply-body', 'the focus is back in the reply')

  await area.fill('Smile 🙂 – ok')
  await offer.waitFor()
  t.match(await offer.textContent(), /can be replaced; other characters keep this reply UCS-2/, 'an emoji stays UCS-2: the offer says so')
  t.same(agent.problems, [], 'no CSP violations, console errors or page errors')
})
