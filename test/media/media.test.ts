import { Readable } from 'node:stream'
import nock from 'nock'
import t, { type Test } from 'tap'
import { guardedLookup, isPrivateAddress } from '../../src/media/media-fetch.js'
import { buildTestApp, form } from '../helper.js'
import { createAgent, signIn } from '../auth/agent-session.js'

// The media host of these tests, intercepted by nock (it intercepts node:https, which the proxy uses).
const HOST = 'media.test.example'
const ENV = { MEDIA_HOSTS: `${HOST},media.messagebird.com`, MEDIA_MAX_BYTES: '2048', MEDIA_TIMEOUT_MS: '1000' }
const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex')

t.before(() => nock.disableNetConnect())
t.afterEach(() => nock.cleanAll())
t.teardown(() => nock.enableNetConnect())

type App = Awaited<ReturnType<typeof buildTestApp>>

async function whatsappPhoto (app: App['app'], url: string, id = 'wa-1') {
  return await app.inject({
    method: 'POST',
    url: '/webhooks/messagebird/conversations',
    payload: { type: 'message.created', message: { id, status: 'received', direction: 'received', platform: 'whatsapp', from: '+31612345678', type: 'image', content: { image: { url, caption: 'The broken lid' } } } }
  })
}

async function mediaRows (db: App['db']) {
  return await db.selectFrom('message_media').innerJoin('messages', 'messages.id', 'message_media.message_id')
    .select(['message_media.id', 'message_media.kind', 'message_media.url', 'message_media.caption', 'message_media.content_type', 'message_media.position', 'messages.body', 'messages.channel'])
    .orderBy('messages.provider_message_id').orderBy('message_media.position').execute()
}

async function setUp (t: Test, env: Record<string, string> = {}) {
  const built = await buildTestApp(t, { env: { ...ENV, ...env } })
  await createAgent(built.services)
  const agent = await signIn(built.app, 'ada@example.com')
  return { ...built, agent }
}

t.test('a WhatsApp photo keeps its text line and stores its media in the same commit', async (t) => {
  const { app, db } = await buildTestApp(t, { env: ENV })
  const res = await whatsappPhoto(app, `https://${HOST}/p/1.jpg`)
  t.equal(res.statusCode, 200)
  t.match(await mediaRows(db), [{ kind: 'image', url: `https://${HOST}/p/1.jpg`, caption: 'The broken lid', content_type: null, position: 0, body: '[image] The broken lid', channel: 'whatsapp' }])
  const again = await whatsappPhoto(app, `https://${HOST}/p/1.jpg`)
  t.equal(again.json().duplicate, true)
  t.equal((await mediaRows(db)).length, 1, 'a redelivery stores the media once')
})

t.test('inbound MMS (form with repeated mediaUrls, JSON, GET): a ticket on channel mms with every item in order', async (t) => {
  const { app, db } = await buildTestApp(t, { env: ENV })
  const params = new URLSearchParams({ id: 'mms-1', originator: '12025550123', recipient: '12025550100', subject: 'Receipt' })
  params.append('mediaUrls', `https://${HOST}/a.jpg`)
  params.append('mediaUrls', `https://${HOST}/b.pdf`)
  const res = await app.inject({ method: 'POST', url: '/webhooks/messagebird/mms', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: params.toString() })
  t.equal(res.statusCode, 200, res.body)
  const json = await app.inject({ method: 'POST', url: '/webhooks/messagebird/mms', payload: { id: 'mms-2', originator: '+12025550123', body: 'and this', mediaUrls: [`https://${HOST}/c.png`], mediaContentTypes: ['image/png'] } })
  t.equal(json.statusCode, 200, json.body)
  const get = await app.inject({ method: 'GET', url: '/webhooks/messagebird/mms?' + form({ id: 'mms-3', originator: '12025550123', 'mediaUrls[0]': `https://${HOST}/d.mp4` }) })
  t.equal(get.statusCode, 200, get.body)
  t.equal(json.json().ticket_id, res.json().ticket_id, 'one customer, one ticket')
  t.match(await mediaRows(db), [
    { body: 'Receipt', channel: 'mms', kind: 'image', url: `https://${HOST}/a.jpg`, position: 0 },
    { body: 'Receipt', channel: 'mms', kind: 'file', url: `https://${HOST}/b.pdf`, position: 1 },
    { body: 'and this', kind: 'image', content_type: 'image/png' },
    { body: '[video]', kind: 'video' }
  ])
  const confirmation = await db.selectFrom('messages').select(['channel', 'to_address']).where('kind', '=', 'confirmation').executeTakeFirstOrThrow()
  t.same(confirmation, { channel: 'sms', to_address: '+12025550123' }, 'the confirmation, text only, goes by SMS to the same number, not as an MMS without a picture')
})

t.test('inbound MMS: bad input is a clear 400 and stores nothing', async (t) => {
  const { app, db } = await buildTestApp(t, { env: ENV })
  const bad = await app.inject({ method: 'POST', url: '/webhooks/messagebird/mms', payload: { id: 'x', originator: '12025550123', mediaUrls: ['javascript:alert(1)'] } })
  t.equal(bad.statusCode, 400)
  t.match(bad.json().message, /mediaUrls\[0\] must be an http\(s\) URL/)
  const empty = await app.inject({ method: 'POST', url: '/webhooks/messagebird/mms', payload: { id: 'y', originator: '12025550123' } })
  t.equal(empty.statusCode, 400)
  t.match(empty.json().message, /needs a body, a subject or mediaUrls/)
  const many = await app.inject({ method: 'POST', url: '/webhooks/messagebird/mms', payload: { id: 'z', originator: '12025550123', mediaUrls: Array.from({ length: 11 }, (_, i) => `https://${HOST}/${i}.jpg`) } })
  t.equal(many.statusCode, 400)
  t.equal((await db.selectFrom('messages').select('id').execute()).length, 0)
})

t.test('GET /media/:id: the service fetches the provider URL and passes the image on, with nosniff, inline, private cache', async (t) => {
  const { app, db, agent } = await setUp(t)
  await whatsappPhoto(app, `https://${HOST}/p/1.jpg`)
  const [row] = await mediaRows(db)
  nock(`https://${HOST}`).get('/p/1.jpg').reply(200, PNG, { 'content-type': 'image/png' })
  const res = await agent.inject({ method: 'GET', url: `/media/${row.id}` })
  t.equal(res.statusCode, 200, res.headers['content-type'] === 'image/png' ? 'the image is passed on' : res.body)
  t.same(res.rawPayload, PNG)
  t.equal(res.headers['content-type'], 'image/png')
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.match(res.headers['content-disposition'], /^inline; filename="media-[0-9a-f-]+\.png"$/)
  t.equal(res.headers['cache-control'], 'private, max-age=3600')
})

t.test('GET /media/:id without a session is refused like every page, and fetches nothing', async (t) => {
  const { app, db } = await setUp(t)
  await whatsappPhoto(app, `https://${HOST}/p/1.jpg`)
  const [row] = await mediaRows(db)
  const scope = nock(`https://${HOST}`).get('/p/1.jpg').reply(200, PNG, { 'content-type': 'image/png' })
  const page = await app.inject({ method: 'GET', url: `/media/${row.id}`, headers: { accept: 'text/html' } })
  t.equal(page.statusCode, 303)
  t.match(page.headers.location, /^\/login/)
  const img = await app.inject({ method: 'GET', url: `/media/${row.id}`, headers: { accept: 'image/*' } })
  t.not(img.statusCode, 200)
  t.not(img.rawPayload.toString('hex'), PNG.toString('hex'))
  t.notOk(scope.isDone(), 'the provider was not asked')
})

t.test('the MessageBird access key goes to MessageBird\'s media host only', async (t) => {
  const { app, db, agent } = await setUp(t, { MESSAGEBIRD_API_KEY: 'live_key_abc', MESSAGEBIRD_ORIGINATOR: '12025550100' })
  await whatsappPhoto(app, 'https://media.messagebird.com/v1/media/123', 'wa-mb')
  await whatsappPhoto(app, `https://${HOST}/p/2.jpg`, 'wa-other')
  const [mb, other] = await mediaRows(db)
  let seen: string | undefined = 'unset'
  nock('https://media.messagebird.com').get('/v1/media/123').reply(function () { seen = this.req.headers.authorization as string | undefined; return [200, PNG, { 'content-type': 'image/png' }] })
  t.equal((await agent.inject({ method: 'GET', url: `/media/${mb.id}` })).statusCode, 200)
  t.equal(seen, 'AccessKey live_key_abc')
  nock(`https://${HOST}`).get('/p/2.jpg').reply(function () { seen = this.req.headers.authorization as string | undefined; return [200, PNG, { 'content-type': 'image/png' }] })
  t.equal((await agent.inject({ method: 'GET', url: `/media/${other.id}` })).statusCode, 200)
  t.equal(seen, undefined, 'never to another host')
})

t.test('SSRF: a host not on the list, plain http, a private address, and a redirect elsewhere are refused without fetching', async (t) => {
  const { app, db, agent } = await setUp(t, { MEDIA_HOSTS: `${HOST},127.0.0.1` })
  await whatsappPhoto(app, 'https://evil.example.net/x.jpg', 'a')
  await whatsappPhoto(app, `http://${HOST}/x.jpg`, 'b')
  await whatsappPhoto(app, 'https://127.0.0.1/x.jpg', 'c')
  await whatsappPhoto(app, `https://${HOST}/moved.jpg`, 'd')
  await whatsappPhoto(app, `https://${HOST}/moved-here.jpg`, 'e')
  const [other, http, loopback, redirected, redirectedHere] = await mediaRows(db)
  const evil = nock('https://evil.example.net').get('/x.jpg').reply(200, PNG, { 'content-type': 'image/png' })
  const cases: Array<[string, string, RegExp]> = [
    ['another host', other.id, /evil\.example\.net is not one of the media hosts/],
    ['plain http', http.id, /only https media URLs/],
    ['a loopback address, even when listed', loopback.id, /127\.0\.0\.1 is an address inside the private network/]
  ]
  for (const [name, id, message] of cases) {
    const res = await agent.inject({ method: 'GET', url: `/media/${id}` })
    t.equal(res.statusCode, 502, name)
    t.match(res.json().message, message, name)
  }
  nock(`https://${HOST}`).get('/moved.jpg').reply(302, '', { location: 'https://evil.example.net/x.jpg' })
  const res = await agent.inject({ method: 'GET', url: `/media/${redirected.id}` })
  t.equal(res.statusCode, 502)
  t.match(res.json().message, /redirected elsewhere, and evil\.example\.net is not one of the media hosts/)
  t.notOk(evil.isDone(), 'the other host was never asked')
  nock(`https://${HOST}`).get('/moved-here.jpg').reply(301, '', { location: '/final.jpg' }).get('/final.jpg').reply(200, PNG, { 'content-type': 'image/jpeg' })
  const ok = await agent.inject({ method: 'GET', url: `/media/${redirectedHere.id}` })
  t.equal(ok.statusCode, 200, 'a redirect within the allowed host is followed')
})

t.test('SSRF: a listed name that resolves to a private address is refused at connection time', async (t) => {
  t.ok(isPrivateAddress('127.0.0.1'))
  t.ok(isPrivateAddress('169.254.169.254'), 'cloud metadata')
  t.ok(isPrivateAddress('::1'))
  t.ok(isPrivateAddress('fd00::1'))
  t.ok(isPrivateAddress('::ffff:10.0.0.1'), 'IPv4-mapped')
  t.notOk(isPrivateAddress('93.184.216.34'))
  t.notOk(isPrivateAddress('2a00:1450::1'))
  const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => guardedLookup('localhost', {}, (e) => resolve(e)))
  t.equal(err?.code, 'EMEDIAPRIVATE')
  t.match(err?.message, /localhost resolves to .*inside the private network/)
})

t.test('size limit: an announced or streamed body over MEDIA_MAX_BYTES is cut off with a clear 413', async (t) => {
  const { app, db, agent } = await setUp(t)
  await whatsappPhoto(app, `https://${HOST}/big.jpg`, 'a')
  await whatsappPhoto(app, `https://${HOST}/chunked.jpg`, 'b')
  const [announced, chunked] = await mediaRows(db)
  nock(`https://${HOST}`).get('/big.jpg').reply(200, Buffer.alloc(4096), { 'content-type': 'image/jpeg', 'content-length': '4096' })
  const a = await agent.inject({ method: 'GET', url: `/media/${announced.id}` })
  t.equal(a.statusCode, 413)
  t.match(a.json().message, /is 4096 bytes, larger than 2048 bytes \(MEDIA_MAX_BYTES\)/, 'refused from the announced length, before reading')
  nock(`https://${HOST}`).get('/chunked.jpg').reply(200, () => Readable.from([Buffer.alloc(1500), Buffer.alloc(1500), Buffer.alloc(1500)]), { 'content-type': 'image/jpeg' })
  const b = await agent.inject({ method: 'GET', url: `/media/${chunked.id}` })
  t.equal(b.statusCode, 413)
  t.match(b.json().message, /larger than 2048 bytes/)
})

t.test('content types: HTML and SVG are never rendered, only offered as a download; a PDF is shown', async (t) => {
  const { app, db, agent } = await setUp(t)
  await whatsappPhoto(app, `https://${HOST}/x.html`, 'a')
  await whatsappPhoto(app, `https://${HOST}/x.svg`, 'b')
  await whatsappPhoto(app, `https://${HOST}/x.pdf`, 'c')
  const [html, svg, pdf] = await mediaRows(db)
  nock(`https://${HOST}`)
    .get('/x.html').reply(200, '<script>alert(1)</script>', { 'content-type': 'text/html; charset=utf-8' })
    .get('/x.svg').reply(200, '<svg onload="alert(1)"/>', { 'content-type': 'image/svg+xml' })
    .get('/x.pdf').reply(200, '%PDF-1.4', { 'content-type': 'application/pdf' })
  for (const [name, row] of [['html', html], ['svg', svg]] as const) {
    const res = await agent.inject({ method: 'GET', url: `/media/${row.id}` })
    t.equal(res.statusCode, 200, name)
    t.equal(res.headers['content-type'], 'application/octet-stream', `${name}: not its own type`)
    t.match(res.headers['content-disposition'], /^attachment; filename="media-[0-9a-f-]+\.bin"$/, `${name}: a download`)
    t.equal(res.headers['x-content-type-options'], 'nosniff')
  }
  const res = await agent.inject({ method: 'GET', url: `/media/${pdf.id}` })
  t.equal(res.headers['content-type'], 'application/pdf')
  t.match(res.headers['content-disposition'], /^inline;/)
})

t.test('a provider error, a silent host and an unknown id each get a clear answer', async (t) => {
  const { app, db, agent } = await setUp(t)
  await whatsappPhoto(app, `https://${HOST}/gone.jpg`, 'a')
  await whatsappPhoto(app, `https://${HOST}/slow.jpg`, 'b')
  const [gone, slow] = await mediaRows(db)
  nock(`https://${HOST}`).get('/gone.jpg').reply(404, 'nope')
  const a = await agent.inject({ method: 'GET', url: `/media/${gone.id}` })
  t.equal(a.statusCode, 502)
  t.match(a.json().message, /answered HTTP 404/)
  nock(`https://${HOST}`).get('/slow.jpg').delayConnection(5000).reply(200, PNG)
  const b = await agent.inject({ method: 'GET', url: `/media/${slow.id}` })
  t.equal(b.statusCode, 504)
  t.match(b.json().message, /did not answer within 1000 ms \(MEDIA_TIMEOUT_MS\)/)
  const c = await agent.inject({ method: 'GET', url: '/media/00000000-0000-7000-8000-000000000000' })
  t.equal(c.statusCode, 404)
})

t.test('the ticket page shows an image inline through /media/ and other kinds as links, never the provider URL', async (t) => {
  const { app, agent } = await setUp(t)
  const res = await whatsappPhoto(app, `https://${HOST}/p/1.jpg`)
  await app.inject({
    method: 'POST',
    url: '/webhooks/messagebird/conversations',
    payload: { type: 'message.created', message: { id: 'wa-file', status: 'received', direction: 'received', platform: 'whatsapp', from: '+31612345678', type: 'file', content: { file: { url: `https://${HOST}/invoice.pdf`, caption: 'Invoice' } } } }
  })
  const page = await agent.inject({ method: 'GET', url: `/tickets/${res.json().ticket_id}`, headers: { accept: 'text/html' } })
  t.equal(page.statusCode, 200)
  t.match(page.body, /<img src="\/media\/[0-9a-f-]{36}" alt="image: The broken lid"/)
  t.match(page.body, /<a href="\/media\/[0-9a-f-]{36}"[^>]*>file: Invoice<\/a>/)
  t.notMatch(page.body, HOST, 'the provider URL is not in the page')
})
