import { existsSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { chromium, type Browser } from 'playwright-core'
import t from 'tap'
import { FAST_HASH_ENV } from '../auth/agent-session.js'
import { buildTestApp } from '../helper.js'
import { afterCommit } from '../../src/db/after-commit.js'

// The inbox in a real browser, with the real Content-Security-Policy: sign in, open a ticket,
// reply, watch the status arrive through the live refresh, sign out.

const CHROMIUM = '/usr/bin/chromium'

t.test('an agent signs in, answers a ticket and signs out, with the CSP active and never violated', async (t) => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the browser test needs Debian's Chromium (apt-get install -y chromium)`)
  }
  const { app, services } = await buildTestApp(t, { env: { ...FAST_HASH_ENV, INBOX_REFRESH_SECONDS: '1' } })
  await services.agents.add({ email: 'ada@example.com', name: 'Ada Lovelace', role: 'agent', password: 'correct horse battery staple' })
  await app.listen({ host: '127.0.0.1', port: 0 })
  services.worker.start()
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  const hook = await fetch(`${base}/webhooks/messagebird`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ originator: '31612345678', payload: 'My order #4411 has not arrived', id: 'browser-1' })
  })
  t.equal(hook.status, 200)

  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update']
  })
  t.teardown(async () => await browser.close())
  const page = await browser.newPage()
  page.setDefaultTimeout(10_000)

  const problems: string[] = []
  page.on('console', (msg) => { if (msg.type() === 'error' || /Content Security Policy/i.test(msg.text())) problems.push(`console ${msg.type()}: ${msg.text()} (${msg.location().url})`) })
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  await page.exposeFunction('reportCspViolation', (v: string) => problems.push(`CSP violation: ${v}`))
  // Runs in the page (injected by the browser's debugging protocol, so the CSP does not apply to it).
  await page.addInitScript({ content: "document.addEventListener('securitypolicyviolation', (e) => window.reportCspViolation(e.violatedDirective + ' ' + e.blockedURI))" })

  const first = await page.goto(`${base}/inbox`)
  t.match(page.url(), /\/login\?next=%2Finbox$/, 'an anonymous visit lands on the sign-in page')
  t.match(first?.headers()['content-security-policy'], /script-src 'self'/, 'the CSP is active')
  await page.fill('input[name=email]', 'ada@example.com')
  await page.fill('input[name=password]', 'correct horse battery staple')
  await Promise.all([page.waitForURL(`${base}/inbox?view=unassigned`), page.click('button[type=submit]')])
  t.match(await page.textContent('header.top'), /Ada Lovelace/, 'signed in')

  const row = page.locator('tr.ticket-row', { hasText: 'My order #4411 has not arrived' })
  await row.waitFor()
  await Promise.all([page.waitForURL(/\/tickets\/\d+(\?view=\w+)?$/), row.locator('a').first().click()])
  t.match(await page.textContent('#timeline'), /My order #4411 has not arrived/)

  // Resolves once the simulator's delivery report for the reply has committed.
  const delivered = new Promise<void>((resolve) => {
    services.status.addListener(async (_trx, message, status) => {
      if (message.kind === 'reply' && status === 'delivered') afterCommit(services.db, resolve)
    })
  })
  await page.fill('#reply-body', 'Sorry about that! It ships today.')
  t.match(await page.textContent('#reply-counter'), /33 characters · 1 SMS · GSM-7/, 'app.js runs under the CSP')
  await Promise.all([page.waitForURL(/\/tickets\/\d+(\?view=\w+)?$/), page.click('form.reply button[type=submit]')])
  const reply = page.locator('li.msg.outbound', { hasText: 'Sorry about that! It ships today.' })
  await reply.waitFor()
  t.match(await reply.locator('.msg-meta').textContent(), /Ada Lovelace/, 'the reply names its agent')
  // The simulator reports delivery; the live update without a reload is the two-agent test's
  // (it needs /inbox/events); here the reloaded page shows it.
  await delivered
  await page.reload()
  await reply.locator('.status.delivered').waitFor()
  t.ok(await reply.locator('.status.delivered').isVisible(), 'the reply shows as delivered')

  await Promise.all([page.waitForURL(/\/login\?signed-out=1$/), page.click('header form[action="/logout"] button')])
  t.match(await page.textContent('main'), /You are signed out\./)
  await page.goto(`${base}/inbox`)
  t.match(page.url(), /\/login\?next=%2Finbox$/, 'after signing out the inbox asks for sign-in again')

  t.same(problems, [], 'no CSP violations, console errors or page errors')
})
