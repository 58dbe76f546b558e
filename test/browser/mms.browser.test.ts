import nock from 'nock'
import t from 'tap'
import type { Page } from 'playwright-core'
import { createAgent } from '../auth/agent-session.js'
import { checkA11y, launch, person, screenshot, screenshotDir, signIn, startApp } from './harness.js'

// MMS end to end in Chromium, on the simulator channel: a customer on the simulator's phone (a
// +1 number) sends a sample picture, the agent sees it in the thread, answers with an image link
// from the composer, and the phone shows that MMS with its picture. Every picture is loaded from
// /media/ and decoded by the browser; the agent's image is fetched by the service from the
// media host (intercepted here by nock), never by the browser.

const US = '+12025550123'
const HOST = 'media.test.example'
const IMAGE = `https://${HOST}/labels/lid-7.png`
// A 1×1 PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64')

t.teardown(() => nock.cleanAll())

/** The decoded width of the image `selector` finds (0: broken), once it has loaded or failed. */
async function naturalWidth (page: Page, selector: string): Promise<number> {
  await page.locator(selector).first().waitFor()
  return await page.evaluate(`new Promise((resolve) => {
    const img = document.querySelector(${JSON.stringify(selector)})
    if (img.complete) return resolve(img.naturalWidth)
    img.addEventListener('load', () => resolve(img.naturalWidth))
    img.addEventListener('error', () => resolve(0))
  })`) as number
}

t.test('a picture from the simulator phone reaches the agent, and the agent\'s image reply reaches the phone', async (t) => {
  const { base, services, db } = await startApp(t, { MEDIA_HOSTS: HOST })
  await createAgent(services, { email: 'ada@example.com', name: 'Ada Lovelace' })
  const provider = nock(`https://${HOST}`).get('/labels/lid-7.png').reply(200, PNG, { 'content-type': 'image/png' }).persist()
  const browser = await launch(t)
  const ada = await person(t, browser, 'Ada')
  const { page } = ada
  const requested: string[] = []
  page.on('request', (r) => requested.push(r.url()))
  await signIn(page, base, 'ada@example.com')
  const shots = screenshotDir(t)

  // The customer sends a sample picture with a few words.
  await page.goto(`${base}/simulator?number=${encodeURIComponent(US)}`)
  await page.selectOption('#sim-picture', 'lid.png')
  await page.fill('#sim-text', 'The lid arrived cracked')
  await Promise.all([page.waitForURL(/\/simulator\?number=/), page.getByRole('button', { name: 'Send', exact: true }).click()])
  await page.locator('#phone-messages li.msg.outbound .bubble', { hasText: 'The lid arrived cracked' }).waitFor()
  const mine = '#phone-messages li.msg.outbound img.media-thumb'
  t.equal(await naturalWidth(page, mine), 96, 'the phone shows the picture it sent')
  await checkA11y(t, page, 'the simulator phone with a picture')

  // The agent sees the ticket with the thumbnail.
  const inbound = await db.selectFrom('messages').select(['ticket_id', 'channel']).where('from_address', '=', US).where('direction', '=', 'inbound').executeTakeFirstOrThrow()
  t.equal(inbound.channel, 'mms')
  await page.goto(`${base}/tickets/${inbound.ticket_id}`)
  t.equal(await naturalWidth(page, '#timeline li.inbound img.media-thumb'), 96, 'Chromium decoded the customer\'s picture')
  t.match(await page.locator('#timeline li.inbound .bubble').textContent(), /The lid arrived cracked/)

  // The agent answers with an image link.
  await page.locator('#reply-image').waitFor()
  t.match(await page.locator('#reply-image-hint').textContent(), /the provider fetches it/)
  await page.fill('#reply-body', 'Here is the lid that fits')
  await page.fill('#reply-media-url', IMAGE)
  await Promise.all([page.waitForEvent('load'), page.click('form.reply button[type=submit]')])
  const reply = page.locator('#timeline li.outbound', { hasText: 'Here is the lid that fits' })
  await reply.locator('.status.delivered').waitFor()
  t.equal(await reply.locator('.channel').textContent(), 'MMS', 'the bubble names its channel')
  t.equal(await naturalWidth(page, '#timeline li.outbound img.media-thumb'), 1, 'the agent sees the image through the proxy')
  await screenshot(page, shots, 'mms-ticket')
  await checkA11y(t, page, 'a ticket with an MMS reply')
  const stored = await db.selectFrom('messages').innerJoin('message_media', 'message_media.message_id', 'messages.id')
    .select(['messages.channel', 'messages.to_address', 'messages.status', 'message_media.url']).where('messages.kind', '=', 'reply').executeTakeFirstOrThrow()
  t.same(stored, { channel: 'mms', to_address: US, status: 'delivered', url: IMAGE })

  // The phone shows the MMS with its picture.
  await page.goto(`${base}/simulator?number=${encodeURIComponent(US)}`)
  const received = page.locator('#phone-messages li.msg.inbound', { hasText: 'Here is the lid that fits' })
  await received.waitFor()
  t.match(await received.locator('.msg-meta').textContent(), /MMS/)
  t.equal(await naturalWidth(page, '#phone-messages li.msg.inbound img.media-thumb'), 1, 'the phone shows the agent\'s picture')
  await screenshot(page, shots, 'mms-phone')
  t.ok(provider.isDone(), 'the service fetched the image')
  t.notOk(requested.some((u) => u.includes(HOST)), 'the browser never asked the media host')
  t.same(ada.problems, [], 'no CSP violations, console errors or page errors')
})
