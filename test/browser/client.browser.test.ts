import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import { ContractDouble } from './contract-double.js'
import { checkA11y, launch, person, untilText } from './harness.js'

// public/app.js in Chromium against a stand-in for the contract's server side: what the script
// itself must do that the real server cannot easily provoke or that needs exact request counts
// (coalescing a burst, focus and scroll kept, a refused stream, `reload`, presence cadence, the
// composer's posted fields, drafts through an expired session, the keyboard), each observed from
// the outside. The two-agent test covers the rest against the real server: a dropped stream
// resumed with Last-Event-ID, the layout at both widths.

const browser = await launch(t)

async function setup (t: Test) {
  const double = await new ContractDouble().start(t)
  const agent = await person(t, browser, 'Ada')
  return { double, agent, page: agent.page }
}

/** The smallest gap between two requests for one fragment, in ms (Infinity for fewer than two). */
function minGap (times: number[] = []): number {
  let gap = Infinity
  for (let i = 1; i < times.length; i++) gap = Math.min(gap, times[i] - times[i - 1])
  return gap
}

const text = async (page: Page, selector: string) => ((await page.textContent(selector)) ?? '').trim()

t.test('ticket events refetch the list, counts and open timeline: at most once per 300 ms each, the last change always shown', async (t) => {
  const { double, agent, page } = await setup(t)
  // When the script called fetch() for each path: its own spacing, which a busy network stack
  // (starting one request late and the next on time) would blur. Injected through the debugging
  // protocol, so the page's CSP does not apply.
  await page.addInitScript({ content: 'window.__fetchCalls = []; const fetchOriginal = window.fetch; window.fetch = function (input, init) { window.__fetchCalls.push([new URL(String(input), location.href).pathname, performance.now()]); return fetchOriginal.call(this, input, init) }' })
  await page.goto(`${double.base}/tickets/1`)
  await double.until(() => double.openStreams === 1)
  t.same(double.streams[0], { query: '0', header: null }, 'the first connection asks from the id the page was rendered with')

  double.rows.unshift({ id: 4, customer: 'Lena', preview: 'Hello?', unread: true })
  double.counts = { ...double.counts, open: 4, unread: 2 }
  double.items.push({ id: '102', kind: 'inbound', text: 'Are you there?' })
  double.publish('ticket', { ticketId: 1, change: 'message' })
  await page.locator('#ticket-list .ticket-row[data-ticket-id="4"]').waitFor()
  await page.locator('#timeline li[data-item-id="102"]').waitFor()
  await untilText(page, 'title', '(2) Ticket 1 · Textdesk')
  t.equal(await text(page, '[data-count-for=open]'), '4', 'the counts follow')
  await untilText(page, '#announcer', 'New message from the customer: Are you there?')
  t.equal(await page.inputValue('form.reply input[name=seen]'), '102', 'with the composer empty, what is on screen counts as seen')

  // A change that lands while a refetch has just run still shows: the trailing refetch.
  const first = page.waitForResponse((r) => r.url().includes('/inbox/list'))
  double.publish('ticket', { ticketId: 2, change: 'status' })
  await first
  double.rows = double.rows.filter((r) => r.id !== 2)
  double.publish('ticket', { ticketId: 2, change: 'status' })
  await page.locator('.ticket-row[data-ticket-id="2"]').waitFor({ state: 'detached' })

  // A burst about another ticket: a few list fetches, no timeline fetch.
  const timelineBefore = double.count('GET /tickets/1/timeline')
  const listBefore = double.count('GET /inbox/list')
  for (let i = 0; i < 40; i++) {
    if (i === 39) double.rows.find((r) => r.id === 3)!.preview = 'Burst over'
    double.publish('ticket', { ticketId: 3, change: 'message' })
  }
  await page.locator('.ticket-row[data-ticket-id="3"] .preview', { hasText: 'Burst over' }).waitFor()
  t.ok(double.count('GET /inbox/list') - listBefore <= 2, `40 events, ${double.count('GET /inbox/list') - listBefore} list fetches`)
  t.equal(double.count('GET /tickets/1/timeline'), timelineBefore, 'events about other tickets never refetch this timeline')
  const calls = await page.evaluate('window.__fetchCalls') as Array<[string, number]>
  for (const path of ['/inbox/list', '/inbox/counts', '/tickets/1/timeline']) {
    const times = calls.filter(([p]) => p === path).map(([, at]) => at).sort((a, b) => a - b)
    // The script spaces its runs by performance.now(), from the moment each run's function starts
    // (other microtasks may go first), and waits out a timer that fires early (one fired 288 ms
    // after it was set, in a CI run on Node 24). The function reads the page before it calls
    // fetch() (the list's rows, for instance), which takes a moment on a loaded machine, so 295 is
    // the bar. Without the throttle the closest gap is under 50 ms.
    t.ok(times.length >= 1 && minGap(times) >= 295, `${path}: ${times.length} fetches, called 300 ms apart or more (closest ${minGap(times).toFixed(1)} ms)`)
  }
  await checkA11y(t, page, 'a ticket page after live updates')
  t.same(agent.problems, [], 'no CSP violations, console errors or page errors')
})

t.test('the tab title counts unread tickets as the server writes it: (99+) from 100, nothing at 0', async (t) => {
  const { double, agent, page } = await setup(t)
  double.counts = { ...double.counts, unread: 100 }
  await page.goto(`${double.base}/inbox`)
  t.equal(await page.title(), '(99+) Inbox · Textdesk', 'as rendered')
  await double.until(() => double.openStreams === 1)
  double.counts = { ...double.counts, unread: 7 }
  double.publish('ticket', { ticketId: 1, change: 'read' })
  await untilText(page, 'title', '(7) Inbox · Textdesk')
  double.counts = { ...double.counts, unread: 100 }
  double.publish('ticket', { ticketId: 1, change: 'message' })
  await untilText(page, 'title', '(99+) Inbox · Textdesk')
  double.counts = { ...double.counts, unread: 0 }
  double.publish('ticket', { ticketId: 1, change: 'read' })
  await untilText(page, 'title', 'Inbox · Textdesk')
  t.same(agent.problems, [])
})

t.test('a refetch keeps focus on the same element and the list where it was scrolled', async (t) => {
  const { double, agent, page } = await setup(t)
  for (let i = 10; i < 60; i++) double.rows.push({ id: i, customer: `Customer ${i}`, preview: `Question ${i}`, unread: false })
  await page.goto(`${double.base}/inbox`)
  await double.until(() => double.openStreams === 1)
  const link = page.locator('.ticket-row[data-ticket-id="30"] a')
  await link.focus()
  await link.evaluate((el) => { (el as unknown as { marked: boolean }).marked = true })
  await page.locator('.pane-list').evaluate((el) => { el.scrollTop = 600 })
  const before = (await link.boundingBox())?.y
  double.rows.unshift({ id: 99, customer: 'Newcomer', preview: 'Hi there', unread: true })
  double.rows.find((r) => r.id === 30)!.preview = 'Edited while focused'
  double.publish('ticket', { ticketId: 99, change: 'created' })
  await page.locator('.ticket-row[data-ticket-id="99"]').waitFor()
  await page.locator('.ticket-row[data-ticket-id="30"] .preview', { hasText: 'Edited while focused' }).waitFor()
  t.equal(await page.evaluate('document.activeElement.marked === true && document.activeElement.closest(".ticket-row").dataset.ticketId'), '30', 'the focused link is the same element')
  const after = (await link.boundingBox())?.y
  t.ok(before !== undefined && after !== undefined && Math.abs(after - before) < 2, `the list did not jump: the focused row stays where it was on screen (${before} → ${after})`)
  t.ok(await page.locator('.pane-list').evaluate((el) => el.scrollTop) >= 600, 'the new row arrived above, out of sight')
  await untilText(page, '#announcer', 'New message from Newcomer.')
  t.same(agent.problems, [])
})

t.test('a stream refused for want of a session sends the page to sign-in; `reload` reloads', async (t) => {
  const { double, agent, page } = await setup(t)
  await page.goto(`${double.base}/inbox`)
  await double.until(() => double.openStreams === 1)
  const reloaded = page.waitForEvent('load')
  double.publish('reload', {})
  await reloaded
  await double.until(() => double.openStreams === 1)
  t.equal(double.count('GET /inbox'), 2, 'event: reload reloaded the page')

  agent.expectLoadError(/\/inbox\/events/, 'net::ERR_INCOMPLETE_CHUNKED_ENCODING')
  agent.expectLoadError(/\/inbox\/events/, 401)
  agent.expectLoadError(/\/inbox\/counts/, 401)
  double.signedOut = true
  double.dropStreams()
  await page.waitForURL(/\/login\?next=%2Finbox$/)
  t.same(agent.problems, [])
})

t.test('presence: viewing on open and every 20 s, typing at most every 3 s, left on leaving; colleagues shown', async (t) => {
  const { double, agent, page } = await setup(t)
  await page.clock.install()
  await page.goto(`${double.base}/tickets/1`)
  const presence = () => double.posts.filter((p) => p.path === '/tickets/1/presence').map((p) => p.form.get('state'))
  await double.until(() => presence().length === 1)
  t.same(presence(), ['viewing'])
  const post = double.posts[0]
  t.equal(post.headers['x-csrf-token'], 'csrf-token-1', 'with the CSRF token')
  await page.clock.runFor(20_000)
  await double.until(() => presence().length === 2)
  t.same(presence(), ['viewing', 'viewing'], 'again after 20 s')

  await page.locator('#reply-body').pressSequentially('Hello there')
  await double.until(() => presence().length === 3)
  t.same(presence(), ['viewing', 'viewing', 'typing'], 'eleven keys, one typing signal')
  await page.clock.runFor(3_000)
  await page.locator('#reply-body').press('!')
  await double.until(() => presence().length === 4)
  t.equal(presence()[3], 'typing', 'and another after 3 s')

  double.publish('presence', { ticketId: 1, viewers: [{ agentId: 1, name: 'Ada', typing: false }, { agentId: 2, name: 'Bo', typing: false }] })
  await page.locator('#presence', { hasText: 'Bo is viewing' }).waitFor()
  t.notMatch(await text(page, '#presence'), /Ada/, 'never yourself')
  double.publish('presence', { ticketId: 1, viewers: [{ agentId: 2, name: 'Bo', typing: true }, { agentId: 3, name: 'Cy', typing: false }] })
  await page.locator('#presence', { hasText: 'Bo is typing… · Cy is viewing' }).waitFor()
  double.publish('presence', { ticketId: 2, viewers: [] })
  double.publish('presence', { ticketId: 1, viewers: [] })
  await page.locator('#presence:empty').waitFor({ state: 'attached' })

  await page.goto(`${double.base}/inbox`)
  await double.until(() => presence().includes('left'))
  t.equal(presence()[presence().length - 1], 'left', 'left, on leaving the page')
  t.same(agent.problems, [])
})

t.test('the composer: counter, a visible over-limit warning instead of cutting, confirmation above 3 parts, Ctrl+Enter', async (t) => {
  const { double, agent, page } = await setup(t)
  await page.goto(`${double.base}/tickets/1`)
  const area = page.locator('#reply-body')
  t.equal(await area.getAttribute('maxlength'), null, 'no maxlength: nothing is cut')
  await area.fill('Hello')
  t.equal(await text(page, '#reply-counter'), '5 / 1,600 characters · 1 SMS part · GSM-7')
  await area.fill('Hello 😀')
  t.equal(await text(page, '#reply-counter'), '8 / 1,600 characters · 1 SMS part · UCS-2')

  await area.fill('a'.repeat(1601))
  const warning = page.locator('#reply-limit-warning[role=alert]')
  await warning.waitFor()
  t.equal(await warning.textContent(), 'Too long: 1,601 characters, 1 over the limit of 1,600. Shorten it before sending; nothing is cut.')
  t.equal(await area.getAttribute('aria-invalid'), 'true')
  t.equal((await area.inputValue()).length, 1601, 'all 1,601 characters kept')
  await checkA11y(t, page, 'the composer over the limit')
  await page.click('form.reply button[type=submit]')
  t.equal(double.count('POST /tickets/1/replies'), 0, 'not sent')
  t.equal(await page.evaluate('document.activeElement.id'), 'reply-body', 'back in the text to shorten it')

  await area.fill('b'.repeat(459))
  t.ok(await warning.isHidden(), 'the warning goes once it fits')
  t.match(await text(page, '#reply-counter'), /459 \/ 1,600 characters · 3 SMS parts · GSM-7$/)
  await area.fill('b'.repeat(460))
  t.match(await text(page, '#reply-counter'), /4 SMS parts · GSM-7 · asks before sending more than 3$/)
  await page.click('form.reply button[type=submit]')
  const confirm = page.locator('.confirm-parts')
  await confirm.waitFor()
  t.match(await confirm.textContent(), /This reply is 4 SMS parts/)
  t.equal(await page.evaluate('document.activeElement.textContent'), 'Send 4 parts', 'the confirmation has the focus')
  t.equal(double.count('POST /tickets/1/replies'), 0, 'nothing sent before confirming')
  await checkA11y(t, page, 'the composer asking to confirm 4 parts')
  await Promise.all([page.waitForURL(/\/tickets\/1\?view=open$/), page.click('text=Send 4 parts')])
  const sent = double.posts.find((p) => p.path === '/tickets/1/replies')!
  t.equal(sent.form.get('confirm_parts'), '1')
  t.equal(sent.form.get('body'), 'b'.repeat(460))
  t.match(sent.form.get('return_to'), /^\/tickets\/1\?view=open#sent-[a-z0-9]+$/, 'return_to: the rendered one plus a fragment')
  t.equal(await area.inputValue(), '', 'after a successful send the composer is empty')
  t.equal(await page.evaluate('Object.keys(localStorage).filter((k) => k.startsWith("textdesk.draft.")).length'), 0, 'and its draft forgotten')

  await area.fill('Quick one')
  await Promise.all([page.waitForURL(/\/tickets\/1\?view=open$/), area.press('Control+Enter')])
  t.equal(double.posts.filter((p) => p.path === '/tickets/1/replies').length, 2, 'Ctrl+Enter sends')
  await page.locator('#note-body').fill('Customer is a VIP')
  // The page is already at /tickets/1: wait for the note's POST itself, not for the address.
  await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/tickets/1/notes'), page.locator('#note-body').press('Meta+Enter')])
  t.equal(double.posts.find((p) => p.path === '/tickets/1/notes')?.form.get('body'), 'Customer is a VIP', 'Cmd+Enter sends a note')
  t.same(agent.problems, [])
})

t.test('drafts survive a reload, a refused send and an expired session; they go after a successful send', async (t) => {
  const { double, agent, page } = await setup(t)
  await page.goto(`${double.base}/tickets/1`)
  await page.locator('#reply-body').fill('Half-written answer')
  await page.locator('#note-body').fill('Half-written note')
  await page.reload()
  t.equal(await page.inputValue('#reply-body'), 'Half-written answer', 'the reply after a reload')
  t.equal(await page.inputValue('#note-body'), 'Half-written note', 'the note too')
  t.equal(await text(page, '#reply-body-restored'), 'Your unsent draft was restored.')

  agent.expectLoadError(/\/tickets\/1\/replies$/, 409)
  double.replyStatus = 409
  await Promise.all([page.waitForURL(/\/tickets\/1\/replies$/), page.click('form.reply button[type=submit]')])
  t.match(await text(page, 'form.reply .error'), /Bo replied 40 s ago/)
  t.equal(await page.inputValue('#reply-body'), 'Half-written answer', 'kept through a refused send')

  double.replyStatus = 303
  const booted = double.count('GET /inbox/counts') + 1
  await page.goto(`${double.base}/tickets/1`)
  // Once the page has made its own first requests: then the session ends, and the agent presses Send.
  await double.until(() => double.count('GET /inbox/counts') === booted)
  double.signedOut = true
  await Promise.all([page.waitForURL(/\/login/), page.click('form.reply button[type=submit]')])
  double.signedOut = false
  await page.goto(`${double.base}/tickets/1`)
  t.equal(await page.inputValue('#reply-body'), 'Half-written answer', 'kept through an expired session')

  await Promise.all([page.waitForURL(/\/tickets\/1\?view=open$/), page.click('form.reply button[type=submit]')])
  t.equal(await page.inputValue('#reply-body'), '', 'gone after a successful send')
  await page.reload()
  t.equal(await page.inputValue('#reply-body'), '', 'and stays gone')
  t.equal(await page.inputValue('#note-body'), 'Half-written note', 'the note draft is its own')
  t.same(agent.problems, [])
})

t.test('keyboard: j/k/Enter in the list, r/n/a on a ticket, ? opens an accessible help, never while typing', async (t) => {
  const { double, agent, page } = await setup(t)
  await page.goto(`${double.base}/inbox`)
  const focusedRow = async () => await page.evaluate('document.activeElement.closest(".ticket-row")?.dataset.ticketId ?? null')
  await page.keyboard.press('j')
  t.equal(await focusedRow(), '1')
  await page.keyboard.press('j')
  await page.keyboard.press('j')
  t.equal(await focusedRow(), '3')
  await page.keyboard.press('k')
  t.equal(await focusedRow(), '2')
  t.equal(await page.locator('.ticket-row.selected').getAttribute('data-ticket-id'), '2')
  const back = page.waitForEvent('load')
  await page.keyboard.press('a')
  await back
  t.equal(double.posts.find((p) => p.path === '/tickets/2/assign')?.form.get('assignee'), 'me', 'a takes the selected ticket')
  await page.keyboard.press('j')
  await Promise.all([page.waitForURL(/\/tickets\/1$/), page.keyboard.press('Enter')])

  await page.keyboard.press('r')
  t.equal(await page.evaluate('document.activeElement.id'), 'reply-body', 'r: the reply')
  await page.keyboard.type('jkna?')
  t.equal(await page.inputValue('#reply-body'), 'jkna?', 'letters typed in a field are text, not shortcuts')
  t.equal(double.count('POST /tickets/1/assign'), 0)
  await page.locator('h1').click()
  await page.keyboard.press('n')
  t.equal(await page.evaluate('document.activeElement.id'), 'note-body', 'n: the note')
  await page.locator('h1').click()
  await page.keyboard.press('/')
  t.equal(await page.evaluate('document.activeElement.tagName'), 'BODY', '/ without a search box does nothing')

  await page.keyboard.press('?')
  const dialog = page.getByRole('dialog', { name: 'Keyboard shortcuts' })
  await dialog.waitFor()
  t.equal(await page.evaluate('document.activeElement.closest("dialog")?.id'), 'shortcut-help', 'focus moves into the dialog')
  await page.keyboard.press('Tab')
  await page.keyboard.press('Tab')
  t.equal(await page.evaluate('document.activeElement.closest("dialog")?.id'), 'shortcut-help', 'and stays there')
  t.match(await dialog.textContent(), /Assign the ticket to me/)
  await checkA11y(t, page, 'the shortcut help')
  // Focus goes back in the dialog's `close` event, a task after it is hidden: await that event
  // (under load the check ran between the two and found focus still on the Close button).
  // Listening is set up (and awaited) before the key is pressed; the wait is for that event.
  const escapeAndClose = async (): Promise<void> => {
    await page.evaluate("window.helpClosed = new Promise((resolve) => document.getElementById('shortcut-help').addEventListener('close', () => setTimeout(resolve, 0), { once: true })); true")
    await page.keyboard.press('Escape')
    await page.evaluate('window.helpClosed')
  }
  await escapeAndClose()
  t.equal(await page.evaluate('document.activeElement.tagName'), 'BODY', 'Escape closes it and focus goes back')
  await page.locator('.shortcuts-button').click()
  await dialog.waitFor()
  await escapeAndClose()
  t.equal(await page.evaluate('document.activeElement.className'), 'link shortcuts-button', 'back to the button that opened it')

  await page.locator('h1').click()
  const assigned = page.waitForEvent('load')
  await page.keyboard.press('a')
  await assigned
  t.equal(double.posts.find((p) => p.path === '/tickets/1/assign')?.form.get('assignee'), 'me', 'a on a ticket takes that ticket')
  t.same(agent.problems, [])
})
