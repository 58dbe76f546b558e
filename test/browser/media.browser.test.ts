import nock from 'nock'
import t from 'tap'
import { createAgent } from '../auth/agent-session.js'
import { checkA11y, launch, person, signIn, startApp } from './harness.js'

// A customer's WhatsApp photo, in Chromium against the real service: the thread shows it as a
// thumbnail loaded from /media/ (the service fetched it from the provider's host, intercepted
// here by nock); the browser never asks the provider's host itself.

const HOST = 'media.test.example'
// A 1×1 PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64')

t.teardown(() => nock.cleanAll())

t.test('an inbound photo shows as a thumbnail in the thread, loaded from /media/', async (t) => {
  const { base, services } = await startApp(t, { MEDIA_HOSTS: HOST })
  await createAgent(services, { email: 'ada@example.com', name: 'Ada Lovelace' })
  const provider = nock(`https://${HOST}`).get('/p/lid.png').reply(200, PNG, { 'content-type': 'image/png' })
  const res = await fetch(`${base}/webhooks/messagebird/conversations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'message.created', message: { id: 'wa-photo', status: 'received', direction: 'received', platform: 'whatsapp', from: '+31612345678', type: 'image', content: { image: { url: `https://${HOST}/p/lid.png`, caption: 'The broken lid' } } } })
  })
  t.equal(res.status, 200)
  const ticketId = (await res.json() as { ticket_id: number }).ticket_id

  const browser = await launch(t)
  const agent = await person(t, browser, 'Ada')
  const page = agent.page
  const requested: string[] = []
  page.on('request', (r) => requested.push(r.url()))
  await signIn(page, base, 'ada@example.com')
  const loaded = page.waitForResponse((r) => new URL(r.url()).pathname.startsWith('/media/'))
  await page.goto(`${base}/tickets/${ticketId}`)
  const response = await loaded
  t.equal(response.status(), 200)
  t.equal(response.headers()['content-type'], 'image/png')
  const thumb = page.locator('#timeline li.inbound img.media-thumb')
  t.match(await thumb.getAttribute('src'), /^\/media\/[0-9a-f-]{36}$/)
  t.equal(await thumb.getAttribute('alt'), 'image: The broken lid')
  // Decoded by the browser: a real image, not a broken-image icon.
  const width = await page.evaluate(`new Promise((resolve) => {
    const img = document.querySelector('img.media-thumb')
    if (img.complete) return resolve(img.naturalWidth)
    img.addEventListener('load', () => resolve(img.naturalWidth))
    img.addEventListener('error', () => resolve(0))
  })`)
  t.equal(width, 1, 'the browser decoded the image')
  t.match(await page.locator('#timeline li.inbound .bubble').textContent(), /\[image\] The broken lid/, 'the text line stays')
  t.ok(provider.isDone(), 'the service fetched the provider URL')
  t.notOk(requested.some((u) => u.includes(HOST)), 'the browser never asked the provider host')
  await checkA11y(t, page, 'a ticket with a photo')
})
