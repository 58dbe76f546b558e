import t from 'tap'
import { buildTestApp, FakeClock } from '../helper.js'
import { runDue } from '../messaging/failover-helpers.js'
import { apiClient, bakeryWorkflow, CUPCAKES } from './api-helpers.js'

t.test('POST /api/v1/messages: 202 with a message_uuid; the message joins the customer\'s open ticket', async (t) => {
  const { app, services, db } = await buildTestApp(t)
  const inbound = await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'in-1', from: '+31612345671', to: null, text: 'When are my cupcakes ready?', channel: 'sms' })
  await runDue(services)
  const api = await apiClient(app, services)
  const res = await api.post('/api/v1/messages', { to: '31612345671', text: CUPCAKES })
  t.equal(res.statusCode, 202)
  const body = res.json()
  t.match(body, { message_uuid: /^[0-9a-f-]{36}$/, status: 'queued', ticket_id: inbound.ticketId, _links: { self: { href: `/api/v1/messages/${body.message_uuid as string}` } } })
  await runDue(services)
  const state = await api.get(`/api/v1/messages/${body.message_uuid as string}`)
  t.equal(state.statusCode, 200)
  t.match(state.json(), { message_uuid: body.message_uuid, status: 'delivered', channel: 'sms', to: '+31612345671', text: CUPCAKES, usage: { price: '0.0710', currency: 'EUR' }, ticket_id: inbound.ticketId, dispatch_uuid: null, reason: null })
  const kinds = await db.selectFrom('messages').select(['kind', 'ticket_id']).where('ticket_id', '=', inbound.ticketId).orderBy('created_at').execute()
  t.same(kinds.map((k) => k.kind), ['customer', 'confirmation', 'notification'], 'on the same thread the agent sees')

  const answer = await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'in-2', from: '+31612345671', to: null, text: 'Thanks, on my way', channel: 'sms' })
  t.equal(answer.ticketId, inbound.ticketId, 'the customer\'s answer lands in the same ticket')
})

t.test('a notification to someone without an open ticket opens one, without the inbound confirmation', async (t) => {
  const { app, services, db } = await buildTestApp(t)
  const api = await apiClient(app, services)
  const res = await api.post('/api/v1/messages', { to: '+31612345675', text: CUPCAKES })
  t.equal(res.statusCode, 202)
  await runDue(services)
  const messages = await db.selectFrom('messages').select(['kind', 'direction']).where('ticket_id', '=', res.json().ticket_id).execute()
  t.same(messages, [{ kind: 'notification', direction: 'outbound' }], 'no "your ticket ID is" confirmation')
  const reply = await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'r-1', from: '+31612345675', to: null, text: 'Great', channel: 'sms' })
  t.equal(reply.ticketId, res.json().ticket_id)
  t.equal(reply.newTicket, false, 'the answer does not open a second ticket')
})

t.test('an opted-out customer: 409 RECIPIENT_OPTED_OUT naming the field; nothing stored or sent', async (t) => {
  const { app, services, db } = await buildTestApp(t)
  await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'stop', from: '+31612345671', to: null, text: 'STOP', channel: 'sms' })
  await runDue(services)
  const before = await db.selectFrom('messages').select('id').execute()
  const api = await apiClient(app, services)
  const res = await api.post('/api/v1/messages', { to: '31612345671', text: CUPCAKES })
  t.equal(res.statusCode, 409)
  t.match(res.json(), { statusCode: 409, error: 'RECIPIENT_OPTED_OUT', message: /opted out \(texted STOP\).*START/, details: [{ field: 'to' }] })
  const dispatch = await api.post('/api/v1/dispatch', bakeryWorkflow('31612345672', '31612345671'))
  t.equal(dispatch.statusCode, 409)
  t.match(dispatch.json().details, [{ field: 'workflow[1].to.number' }], 'the opted-out step is named')
  t.equal((await db.selectFrom('messages').select('id').execute()).length, before.length)
  t.equal((await db.selectFrom('dispatches').select('id').execute()).length, 0)
})

t.test('POST /api/v1/dispatch: the bakery failover workflow hands over to the second number after 15 s', async (t) => {
  const clock = new FakeClock()
  const { app, services } = await buildTestApp(t, { clock })
  services.simulator?.setMode('+31612345671', 'unreachable')
  const api = await apiClient(app, services)
  const res = await api.post('/api/v1/dispatch', bakeryWorkflow())
  t.equal(res.statusCode, 202)
  const id = res.json().dispatch_uuid as string
  t.match(res.json(), { dispatch_uuid: /^[0-9a-f-]{36}$/, status: 'pending', _links: { self: { href: `/api/v1/dispatch/${id}` } } })
  await runDue(services)
  let state = (await api.get(`/api/v1/dispatch/${id}`)).json()
  t.match(state, { status: 'pending', current_step: 0, template: 'failover' })
  t.match(state.workflow, [{ position: 0, status: 'active', channel: 'sms', to: '+31612345671', condition_status: 'delivered', expiry_time: 15, message_status: 'sent' }, { position: 1, status: 'waiting', message_uuid: null }])
  t.equal(state.workflow[0].deadline_at, new Date(clock.now().getTime() + 15_000).toISOString())
  clock.advance(15_000)
  await runDue(services)
  state = (await api.get(`/api/v1/dispatch/${id}`)).json()
  t.match(state, { status: 'completed', current_step: 1 })
  t.match(state.workflow.map((s: { status: string }) => s.status), ['expired', 'met'])
  t.equal(state._links.messages.length, 2, 'links to each message it sent')
  t.match(state._links.messages[1], { channel: 'sms', status: 'delivered', usage: { price: '0.0710', currency: 'EUR' } })
  const second = await api.get(state._links.messages[1].href)
  t.match(second.json(), { status: 'delivered', to: '+31612345672', text: 'Message retry. ' + CUPCAKES, dispatch_uuid: id, _links: { dispatch: { href: `/api/v1/dispatch/${id}` } } })
})

t.test('GET answers 404 for unknown ids, and for agents\' messages and dispatches', async (t) => {
  const { app, services } = await buildTestApp(t)
  const api = await apiClient(app, services)
  const inbound = await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'in', from: '+31612345671', to: null, text: 'hi', channel: 'sms' })
  const reply = await services.tickets.reply(inbound.ticketId, 'agent reply', null)
  for (const url of ['/api/v1/messages/nope', `/api/v1/messages/${reply.messageId}`, '/api/v1/dispatch/00000000-0000-4000-8000-000000000000']) {
    const res = await api.get(url)
    t.equal(res.statusCode, 404, url)
    t.equal(res.json().error, 'NOT_FOUND')
  }
})

t.test('PUBLIC_URL makes links absolute', async (t) => {
  const { app, services } = await buildTestApp(t, { env: { PUBLIC_URL: 'https://support.example.com' } })
  const api = await apiClient(app, services)
  const res = await api.post('/api/v1/messages', { to: '31612345671', text: 'hi' })
  t.match(res.json()._links.self.href, /^https:\/\/support\.example\.com\/api\/v1\/messages\//)
})

t.test('the agent sees the notification on the ticket, marked as coming from the API', async (t) => {
  const { signedInAgent } = await import('../auth/agent-session.js')
  const { app, services } = await buildTestApp(t)
  const agent = await signedInAgent(app)
  const api = await apiClient(app, services)
  const res = await api.post('/api/v1/messages', { to: '31612345678', text: CUPCAKES })
  await runDue(services)
  const page = await agent.inject({ method: 'GET', url: `/tickets/${res.json().ticket_id as number}`, headers: { accept: 'text/html' } })
  t.equal(page.statusCode, 200)
  t.match(page.body, /Your cupcakes are ready for collection<\/div>\s*<div class="msg-meta">\s*API\s*·/)
  t.match(page.body, /class="status delivered"/)
})
