import { existsSync, mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join, resolve } from 'node:path'
import axe from 'axe-core'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import type { Test } from 'tap'
import { FAST_HASH_ENV, PASSWORD } from '../auth/agent-session.js'
import { buildTestApp, type FakeClock } from '../helper.js'

// What every browser test shares: Debian's Chromium, pages that fail the test on any CSP
// violation, console error or page error, axe-core on demand, signing in, and screenshots.

export const CHROMIUM = '/usr/bin/chromium'

export async function launch (t: Test): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the browser tests need Debian's Chromium (apt-get install -y chromium)`)
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update']
  })
  t.teardown(async () => await browser.close())
  return browser
}

export interface Agent {
  name: string
  context: BrowserContext
  page: Page
  /** Every CSP violation, console error and page error seen on any of this agent's pages. */
  problems: string[]
  /**
   * Chromium logs a console error for every response of 400 or more, including a page the server
   * re-renders on purpose (a refused form answers 409 or 422 with the page), and for a stream the
   * test cuts on purpose (net::ERR_INCOMPLETE_CHUNKED_ENCODING). A test names each failure it
   * provokes, by URL pattern and status or network error name: only that one is not a problem.
   */
  expectLoadError: (url: RegExp, failure: number | string) => void
  /** Another tab in this person's context, guarded like the first; its problems are prefixed with `label`. */
  newPage: (label: string) => Promise<Page>
}

/**
 * A browser context of its own (cookies, storage) for one person, with its page guarded. Checked
 * at the test's end: no CSP violation, console error or page error.
 */
export async function person (t: Test, browser: Browser, name: string, opts: { width?: number, height?: number } = {}): Promise<Agent> {
  const context = await browser.newContext({ viewport: { width: opts.width ?? 1280, height: opts.height ?? 800 } })
  const problems: string[] = []
  const expected: Array<{ url: RegExp, failure: string }> = []
  await context.exposeFunction('reportCspViolation', (v: string) => { problems.push(`CSP violation: ${v}`) })
  // Runs in each page through the debugging protocol, so the page's CSP does not apply to it.
  await context.addInitScript({ content: "document.addEventListener('securitypolicyviolation', (e) => window.reportCspViolation(e.violatedDirective + ' ' + e.blockedURI))" })
  async function guarded (label: string): Promise<Page> {
    const page = await context.newPage()
    page.setDefaultTimeout(10_000)
    const prefix = label === '' ? '' : `${label} `
    page.on('console', (msg) => {
      if (msg.type() !== 'error' && !/Content Security Policy/i.test(msg.text())) return
      const failure = /^Failed to load resource: (?:the server responded with a status of (\d+)|(net::[A-Z_]+))/.exec(msg.text())
      const url = msg.location().url
      if (failure !== null && expected.some((e) => (e.failure === failure[1] || e.failure === failure[2]) && e.url.test(url))) return
      problems.push(`${prefix}console ${msg.type()}: ${msg.text()} (${url})`)
    })
    page.on('pageerror', (err) => { problems.push(`${prefix}page error: ${err.message}`) })
    return page
  }
  const page = await guarded('')
  t.teardown(async () => await context.close())
  return { name, context, page, problems, expectLoadError: (url, failure) => { expected.push({ url, failure: String(failure) }) }, newPage: guarded }
}

export async function signIn (page: Page, base: string, email: string, password = PASSWORD): Promise<void> {
  await page.goto(`${base}/login`)
  await page.fill('input[name=email]', email)
  await page.fill('input[name=password]', password)
  await Promise.all([page.waitForURL((url) => !url.pathname.startsWith('/login')), page.click('button[type=submit]')])
}

/**
 * Waits until the element's whole text is `text` (visible or not: the title, a live region),
 * failing after 10 s. Watched from a script evaluated through the debugging protocol, not with
 * page.waitForFunction: its predicate is polled as an eval in the page, which the page's CSP (no
 * 'unsafe-eval') refuses.
 */
export async function untilText (page: Page, selector: string, text: string): Promise<void> {
  const found = await page.evaluate(`new Promise((resolve) => {
    const matches = () => document.querySelector(${JSON.stringify(selector)})?.textContent === ${JSON.stringify(text)}
    if (matches()) return resolve(true)
    const observer = new MutationObserver(() => { if (matches()) { observer.disconnect(); resolve(true) } })
    observer.observe(document.documentElement, { subtree: true, childList: true, characterData: true })
    setTimeout(() => { observer.disconnect(); resolve(false) }, 10000)
  })`)
  if (found !== true) throw new Error(`${selector} never read ${JSON.stringify(text)} (it reads ${JSON.stringify(await page.textContent(selector))})`)
}

interface AxeResult { violations: Array<{ id: string, impact: string | null, help: string, nodes: Array<{ target: unknown[], failureSummary?: string }> }> }

/**
 * Runs axe-core on the page as it is now (evaluated through the debugging protocol: the page's
 * CSP does not apply) and returns its violations, one readable line each.
 */
export async function axeViolations (page: Page): Promise<string[]> {
  const loaded = await page.evaluate('typeof window.axe === "object"')
  if (loaded !== true) await page.evaluate(axe.source)
  const result = await page.evaluate('window.axe.run(document, { resultTypes: ["violations"] })') as AxeResult
  return result.violations.map((v) => `${v.id} (${v.impact ?? 'n/a'}): ${v.help} at ${v.nodes.map((n) => JSON.stringify(n.target)).join(', ')}`)
}

/** Asserts axe-core finds nothing on the page as it is now. */
export async function checkA11y (t: Test, page: Page, what: string): Promise<void> {
  t.same(await axeViolations(page), [], `axe-core: no violations on ${what}`)
}

/**
 * Screenshots for the README go to docs/screenshots when SCREENSHOTS=1 (`npm run screenshots`);
 * otherwise to a temporary folder, so the same code runs in every test run.
 */
export function screenshotDir (t: Test): string {
  if (process.env.SCREENSHOTS !== '1') return t.testdir()
  const dir = resolve('docs/screenshots')
  mkdirSync(dir, { recursive: true })
  return dir
}

export async function screenshot (page: Page, dir: string, name: string): Promise<string> {
  const path = join(dir, `${name}.png`)
  await page.screenshot({ path, fullPage: false })
  return path
}

/** The real app on a loopback port, with its outbox worker running, as `npm start` has it. */
export async function startApp (t: Test, env: Record<string, string> = {}, opts: { clock?: FakeClock } = {}) {
  const built = await buildTestApp(t, { env: { ...FAST_HASH_ENV, SIMULATOR_DELIVERY_DELAY_MS: '50', ...env }, clock: opts.clock })
  await built.app.listen({ host: '127.0.0.1', port: 0 })
  built.services.worker.start()
  const base = `http://127.0.0.1:${(built.app.server.address() as AddressInfo).port}`
  return { ...built, base }
}

/** A customer's text through the MessageBird webhook of a started app; resolves with its ticket id. */
export async function textIn (base: string, from: string, payload: string, id: string): Promise<number> {
  const res = await fetch(`${base}/webhooks/messagebird`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ originator: from.replace(/^\+/, ''), payload, id })
  })
  if (res.status !== 200) throw new Error(`webhook answered ${res.status}`)
  return (await res.json() as { ticket_id: number }).ticket_id
}
