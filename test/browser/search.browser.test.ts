import t from 'tap'
import { createAgent } from '../auth/agent-session.js'
import { checkA11y, launch, person, signIn, startApp } from './harness.js'

// Search in the browser, against the real service and its CSP: `/` focuses the box (and only
// when the agent is not typing in a field), a number typed in local format finds the customer's
// ticket, words find a text with the match highlighted, and a result opens the ticket.

t.test('an agent presses /, types a local number and a word, and opens the ticket found', async (t) => {
  const { base, services } = await startApp(t, { DEFAULT_COUNTRY: 'NL' })
  await createAgent(services, { email: 'ada@example.com', name: 'Ada Lovelace' })
  const webhook = async (originator: string, payload: string, id: string) => {
    const res = await fetch(`${base}/webhooks/messagebird`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ originator, payload, id })
    })
    t.equal(res.status, 200)
    return (await res.json() as { ticket_id: number }).ticket_id
  }
  const wanted = await webhook('31612345678', 'My <b>parcel</b> never arrived', 'search-1')
  await webhook('31687654321', 'Where is my invoice?', 'search-2')

  const browser = await launch(t)
  const ada = await person(t, browser, 'Ada')
  const page = ada.page
  await signIn(page, base, 'ada@example.com')
  await page.goto(`${base}/inbox?view=open`)

  await page.locator('#search').waitFor()
  await page.keyboard.press('/')
  t.equal(await page.evaluate('document.activeElement && document.activeElement.id'), 'search', '/ focuses the search box')
  await page.keyboard.type('06 1234 5678')
  t.equal(await page.inputValue('#search'), '06 1234 5678', 'the / itself is not typed into the box')
  const searched = page.waitForEvent('load')
  await page.keyboard.press('Enter')
  await searched
  t.match(page.url(), /\/inbox\?view=open&q=06\+1234\+5678/)
  const hits = page.locator('#ticket-list li.ticket-row')
  t.equal(await hits.count(), 1, 'one ticket found')
  t.equal(await hits.first().getAttribute('data-ticket-id'), String(wanted))
  t.match(await hits.first().textContent(), /\+31612345678[\s\S]*Number \+31612345678/, 'the customer\'s number, read with the default country')
  await checkA11y(t, page, 'search results')

  // Pressing / again selects the query, so typing replaces it.
  await page.locator('body').click({ position: { x: 5, y: 5 } })
  await page.keyboard.press('/')
  await page.keyboard.type('parcel')
  const again = page.waitForEvent('load')
  await page.keyboard.press('Enter')
  await again
  const mark = page.locator('#ticket-list li.text-hit mark')
  t.equal(await mark.first().textContent(), 'parcel', 'the match is highlighted')
  t.match(await page.locator('#ticket-list li.text-hit .snippet').first().textContent(), /My <b>parcel<\/b> never arrived/, 'the customer\'s text shown as written, never as markup')

  // The results follow new texts without a reload, as a view's list does.
  await page.evaluate('window.__sameDocument = true')
  const later = await webhook('31611112222', 'Another parcel question', 'search-3')
  await page.locator(`#ticket-list li.text-hit[data-ticket-id="${later}"]`, { hasText: 'Another parcel question' }).waitFor()
  t.equal(await page.evaluate('window.__sameDocument'), true, 'a new matching text joins the results without a reload')
  t.equal(await page.inputValue('#search'), 'parcel', 'the query stays in the box')

  const opened = page.waitForEvent('load')
  await page.locator(`#ticket-list li.text-hit[data-ticket-id="${wanted}"] a`).first().click()
  await opened
  t.match(page.url(), new RegExp(`/tickets/${wanted}\\?view=open$`), 'the result opens its ticket')
  t.match(await page.textContent('#timeline'), /My <b>parcel<\/b> never arrived/)

  // In the reply box, / is a character, not the shortcut.
  await page.click('#reply-body')
  await page.keyboard.type('a/b')
  t.equal(await page.inputValue('#reply-body'), 'a/b', '/ while typing in a field stays in the field')
  t.not(await page.evaluate('document.activeElement && document.activeElement.id'), 'search')

  t.same(ada.problems, [], 'no CSP violations, console errors or page errors')
})
