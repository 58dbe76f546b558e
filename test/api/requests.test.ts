import t from 'tap'
import { buildTestApp, FakeClock } from '../helper.js'
import { runDue } from '../messaging/failover-helpers.js'
import { apiClient, bakeryWorkflow } from './api-helpers.js'

t.test('401 with a JSON error and a Bearer challenge, without a valid key; nothing is stored', async (t) => {
  const { app, services, db } = await buildTestApp(t)
  const { key } = await services.apiKeys.create('bakery')
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['no header', {}, /Missing API key/],
    ['not Bearer', { authorization: `Basic ${key}` }, /must be "Bearer <api key>"/],
    ['unknown key', { authorization: 'Bearer tdk_not-a-real-key' }, /not valid, or it has been revoked/],
    ['not our format', { authorization: 'Bearer abc' }, /not valid/]
  ]
  for (const [name, headers, message] of cases) {
    for (const [method, url] of [['POST', '/api/v1/messages'], ['POST', '/api/v1/dispatch'], ['GET', '/api/v1/messages/x'], ['GET', '/api/v1/dispatch/x']] as const) {
      const res = await app.inject({ method, url, headers, ...(method === 'POST' ? { payload: { to: '31612345678', text: 'hi' } } : {}) })
      t.equal(res.statusCode, 401, `${name}: ${method} ${url}`)
      t.match(res.headers['content-type'], /application\/json/)
      t.match(res.headers['www-authenticate'], /^Bearer/)
      t.match(res.json(), { statusCode: 401, error: 'UNAUTHORIZED', message })
    }
  }
  await services.apiKeys.revoke('bakery')
  const revoked = await app.inject({ method: 'POST', url: '/api/v1/messages', headers: { authorization: `Bearer ${key}` }, payload: { to: '31612345678', text: 'hi' } })
  t.equal(revoked.statusCode, 401, 'a revoked key stops working at once')
  t.equal((await db.selectFrom('messages').select('id').execute()).length, 0)
})

t.test('422 names every bad field of a message', async (t) => {
  const { app, services } = await buildTestApp(t)
  const api = await apiClient(app, services)
  const res = await api.post('/api/v1/messages', { to: '12', channel: 'telegram', text: '' })
  t.equal(res.statusCode, 422)
  const body = res.json()
  t.match(body, { statusCode: 422, error: 'VALIDATION_FAILED', message: /3 fields are not valid/ })
  t.same(body.details.map((d: { field: string }) => d.field).sort(), ['channel', 'text', 'to'])
  t.match(body.details.find((d: { field: string }) => d.field === 'channel').message, /unknown channel: must be one of "sms", "whatsapp"/)
  t.match(body.details.find((d: { field: string }) => d.field === 'to').message, /not a valid phone number/)
  const missing = await api.post('/api/v1/messages', {})
  t.same(missing.json().details.map((d: { field: string }) => d.field).sort(), ['text', 'to'])
  const long = await api.post('/api/v1/messages', { to: '31612345678', text: 'x'.repeat(1601) })
  t.match(long.json().details, [{ field: 'text', message: /1601 characters long; sms allows at most 1600/ }])
  const wa = await api.post('/api/v1/messages', { to: '31612345678', channel: 'whatsapp', text: 'x'.repeat(1601) })
  t.equal(wa.statusCode, 202, 'WhatsApp allows longer texts')
  const notJson = await app.inject({ method: 'POST', url: '/api/v1/messages', headers: { authorization: `Bearer ${api.key}`, 'content-type': 'application/json' }, payload: '{"to":' })
  t.equal(notJson.statusCode, 400)
  t.match(notJson.json(), { statusCode: 400, message: /JSON/i })
})

t.test('422 names every bad field of a dispatch workflow', async (t) => {
  const { app, services, db } = await buildTestApp(t)
  const api = await apiClient(app, services)
  const check = async (body: unknown, expected: Record<string, RegExp>) => {
    const res = await api.post('/api/v1/dispatch', body)
    t.equal(res.statusCode, 422, JSON.stringify(body).slice(0, 80))
    const details = res.json().details as Array<{ field: string, message: string }>
    for (const [field, message] of Object.entries(expected)) {
      t.match(details.find((d) => d.field === field)?.message, message, field)
    }
    t.equal(details.length, Object.keys(expected).length, `only the bad fields: ${details.map((d) => d.field).join(', ')}`)
  }
  const good = bakeryWorkflow()
  const step = (i: number) => JSON.parse(JSON.stringify(good.workflow[i]))

  await check({ template: 'failover', workflow: [] }, { workflow: /at least one step/ })
  await check({ ...good, template: 'broadcast' }, { template: /must be one of "failover"/ })
  await check({ template: 'failover', workflow: [{ ...step(0), failover: { condition_status: 'delivered', expiry_time: 14 } }, step(1)] }, { 'workflow[0].failover.expiry_time': /from 15 to 86400 \(got 14\)/ })
  await check({ template: 'failover', workflow: [{ ...step(0), failover: { condition_status: 'delivered', expiry_time: 86_401 } }, step(1)] }, { 'workflow[0].failover.expiry_time': /got 86401/ })
  await check({ template: 'failover', workflow: [{ ...step(0), failover: { condition_status: 'delivered', expiry_time: 20.5 } }, step(1)] }, { 'workflow[0].failover.expiry_time': /whole number/ })
  await check({ template: 'failover', workflow: [{ ...step(0), failover: { condition_status: 'read', expiry_time: 600 } }, step(1)] }, { 'workflow[0].failover.condition_status': /"read" cannot be used with sms/ })
  await check({ template: 'failover', workflow: [{ ...step(0), failover: undefined }, step(1)] }, { 'workflow[0].failover': /required on every step but the last/ })
  await check({ template: 'failover', workflow: [{ ...step(0), to: { type: 'viber_service_msg', id: 'x' } }, step(1)] }, { 'workflow[0].to.type': /viber_service_msg \(Viber Service Messages\) is not offered by the configured provider/ })
  await check({ template: 'failover', workflow: [{ ...step(0), to: { type: 'telegram', id: 'x' } }, step(1)] }, { 'workflow[0].to.type': /unknown channel/ })
  await check({ template: 'failover', workflow: [{ ...step(0), to: { type: 'sms', number: '0612' } }, step(1)] }, { 'workflow[0].to.number': /not a valid phone number/ })
  await check({ template: 'failover', workflow: [step(0), { ...step(1), to: { type: 'whatsapp', id: 'abc' } }] }, { 'workflow[1].to.number': /is required: whatsapp messages go to a phone number \(id is for Messenger\)/, 'workflow[1].from.type': /same as to.type \("whatsapp"\)/ })
  await check({ template: 'failover', workflow: [step(0), { ...step(1), from: { type: 'whatsapp', number: '1' } }] }, { 'workflow[1].from.type': /same as to.type/ })
  await check({ template: 'failover', workflow: [step(0), { ...step(1), message: { content: { type: 'image', url: 'x' } } }] }, { 'workflow[1].message.content.type': /^image content is sent as MMS: use to.type mms/ })
  await check({ template: 'failover', workflow: [step(0), { ...step(1), message: { content: { type: 'text' } } }] }, { 'workflow[1].message.content.text': /is required for text content/ })
  await check({ template: 'failover', workflow: [step(0), { ...step(1), message: { content: { type: 'audio', text: 'x' } } }] }, { 'workflow[1].message.content.type': /^unknown content type \(text on every channel, image on an mms step\): must be one of "text", "image"$/ })
  await check({ template: 'failover', workflow: Array.from({ length: 11 }, () => step(0)) }, { workflow: /at most 10 steps/ })
  // Several at once, from the schema and from the rules, in one answer.
  await check({
    template: 'failover',
    workflow: [
      { ...step(0), failover: { condition_status: 'read', expiry_time: 5 } },
      { ...step(0), to: { type: 'messenger', id: 'x' }, failover: undefined },
      { to: { type: 'sms', number: 'abc' }, message: { content: { type: 'text', text: '   ' } } }
    ]
  }, {
    'workflow[0].failover.condition_status': /cannot be used with sms/,
    'workflow[0].failover.expiry_time': /got 5/,
    'workflow[1].to.id': /not a Messenger page-scoped id/,
    'workflow[1].from.type': /same as to.type \("messenger"\)/,
    'workflow[1].failover': /required/,
    'workflow[2].to.number': /not a valid phone number/,
    'workflow[2].message.content.text': /must not be empty/
  })
  t.equal((await db.selectFrom('dispatches').select('id').execute()).length, 0, 'nothing was started')
})

t.test('WhatsApp is refused up front when the channel does not offer it', async (t) => {
  const { ManualChannel } = await import('../messaging/failover-helpers.js')
  const channel = new ManualChannel()
  channel.supports = (c) => c === 'sms'
  const { app, services } = await buildTestApp(t, { channel })
  const api = await apiClient(app, services)
  const res = await api.post('/api/v1/messages', { to: '31612345678', channel: 'whatsapp', text: 'hi' })
  t.equal(res.statusCode, 422)
  t.match(res.json().details, [{ field: 'channel', message: /whatsapp is not configured on this server \(MESSAGEBIRD_WHATSAPP_CHANNEL_ID is not set\)/ }])
})

t.test('Idempotency-Key: the same request within 24 h gets the first answer and sends nothing new', async (t) => {
  const clock = new FakeClock()
  const { app, services, db } = await buildTestApp(t, { clock })
  const api = await apiClient(app, services)
  const body = { to: '31612345678', text: 'Your cupcakes are ready' }
  const first = await api.post('/api/v1/messages', body, { 'idempotency-key': 'order-1001' })
  t.equal(first.statusCode, 202)
  t.notOk(first.headers['idempotent-replayed'])
  await runDue(services)
  clock.advance(23 * 3600_000)
  const again = await api.post('/api/v1/messages', { text: body.text, to: body.to }, { 'idempotency-key': 'order-1001' })
  t.equal(again.statusCode, 202)
  t.same(again.json(), first.json(), 'the first answer, even with the keys in another order')
  t.equal(again.headers['idempotent-replayed'], 'true')
  await runDue(services)
  t.equal((await db.selectFrom('messages').select('id').where('kind', '=', 'notification').execute()).length, 1, 'sent once')

  const different = await api.post('/api/v1/messages', { ...body, text: 'Something else' }, { 'idempotency-key': 'order-1001' })
  t.equal(different.statusCode, 422)
  t.match(different.json(), { error: 'IDEMPOTENCY_KEY_REUSED', message: /already used with a different request/, details: [{ field: 'Idempotency-Key' }] })
  const otherEndpoint = await api.post('/api/v1/dispatch', bakeryWorkflow(), { 'idempotency-key': 'order-1001' })
  t.equal(otherEndpoint.statusCode, 422, 'a key is for one request, whatever the endpoint')

  const otherClient = await apiClient(app, services, 'florist')
  const theirs = await otherClient.post('/api/v1/messages', body, { 'idempotency-key': 'order-1001' })
  t.equal(theirs.statusCode, 202, 'keys are per API key')
  t.not(theirs.json().message_uuid, first.json().message_uuid)

  clock.advance(3600_000 + 1)
  const later = await api.post('/api/v1/messages', body, { 'idempotency-key': 'order-1001' })
  t.equal(later.statusCode, 202)
  t.not(later.json().message_uuid, first.json().message_uuid, 'after 24 hours the key is new again')

  const bad = await api.post('/api/v1/messages', body, { 'idempotency-key': 'x'.repeat(256) })
  t.equal(bad.statusCode, 422)
  t.match(bad.json().details, [{ field: 'Idempotency-Key' }])
})

t.test('Idempotency-Key on a dispatch: a retry starts no second workflow; a refused request is not remembered', async (t) => {
  const { app, services, db } = await buildTestApp(t)
  const api = await apiClient(app, services)
  const [a, b] = await Promise.all([
    api.post('/api/v1/dispatch', bakeryWorkflow(), { 'idempotency-key': 'd-1' }),
    api.post('/api/v1/dispatch', bakeryWorkflow(), { 'idempotency-key': 'd-1' })
  ])
  t.equal(a.statusCode, 202)
  t.equal(b.statusCode, 202)
  t.equal(a.json().dispatch_uuid, b.json().dispatch_uuid, 'concurrent retries share one dispatch')
  t.equal((await db.selectFrom('dispatches').select('id').execute()).length, 1)

  const invalidFirst = await api.post('/api/v1/dispatch', { template: 'failover', workflow: [] }, { 'idempotency-key': 'd-2' })
  t.equal(invalidFirst.statusCode, 422)
  const corrected = await api.post('/api/v1/dispatch', bakeryWorkflow(), { 'idempotency-key': 'd-2' })
  t.equal(corrected.statusCode, 202, 'the corrected request may reuse the key')
})

t.test('the OpenAPI description documents every endpoint, the key, the errors and the callbacks', async (t) => {
  const { app } = await buildTestApp(t)
  const res = await app.inject({ method: 'GET', url: '/api/openapi.json' })
  t.equal(res.statusCode, 200)
  const doc = res.json()
  t.equal(doc.openapi, '3.1.0')
  t.same(Object.keys(doc.paths).sort(), ['/api/v1/contacts/export', '/api/v1/dispatch', '/api/v1/dispatch/{uuid}', '/api/v1/messages', '/api/v1/messages/{uuid}'])
  t.ok(doc.paths['/api/v1/dispatch'].post.requestBody, 'request bodies are described')
  t.ok(doc.paths['/api/v1/dispatch'].post.responses['202'])
  t.ok(doc.paths['/api/v1/dispatch'].post.responses['422'])
  t.ok(doc.paths['/api/v1/messages'].post.parameters.some((p: { name: string }) => p.name === 'idempotency-key'))
  t.match(doc.components.securitySchemes.apiKey, { type: 'http', scheme: 'bearer' })
  t.ok(doc.webhooks['message.status'] && doc.webhooks['dispatch.status'], 'status callbacks are documented')
  const expiry = doc.paths['/api/v1/dispatch'].post.requestBody.content['application/json'].schema.properties.workflow.items.properties.failover.properties.expiry_time
  t.match(expiry, { minimum: 15, maximum: 86400 })
  const final = doc.webhooks['dispatch.status'].post.requestBody.content['application/json'].schema
  t.same(final.properties.status.enum, ['completed', 'error'], 'the final report says completed or error')
  t.ok(final.properties.usage && final.properties._links.properties.messages, 'with the summed usage and each message')
  t.match(doc.webhooks['dispatch.status'].post.parameters.map((p: { name: string }) => p.name), ['textdesk-signature', 'textdesk-timestamp', 'textdesk-delivery-id', 'textdesk-event'])
  const to = doc.paths['/api/v1/dispatch'].post.requestBody.content['application/json'].schema.properties.workflow.items.properties.to
  t.same(to.properties.type.enum, ['sms', 'whatsapp', 'messenger', 'mms', 'viber_service_msg', 'viber_sevice_msg'])
  const content = doc.paths['/api/v1/dispatch'].post.requestBody.content['application/json'].schema.properties.workflow.items.properties.message.properties.content
  t.same(content.properties.type.enum, ['text', 'image'], 'content is text or image')
  t.match(content.properties.image.properties, { url: { maxLength: 2048 }, caption: { type: 'string' } }, 'the image form: url and caption')
  t.match(content.description, /"type": "image", "image": \{"url"/)
})
