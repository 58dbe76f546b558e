import t from 'tap'
import { FAST_HASH_ENV, signedInAgent } from '../auth/agent-session.js'
import { apiClient } from '../api/api-helpers.js'
import { buildTestApp, FakeClock, form } from '../helper.js'

// The WhatsApp window in the simulator, without any account: the phone writes "by WhatsApp", a
// button ages its WhatsApp messages past 24 h, and the simulated provider then refuses free text
// the way WhatsApp does, while a template still goes out.

const HTML = { accept: 'text/html' }
const FORM = { ...HTML, 'content-type': 'application/x-www-form-urlencoded' }
const NUMBER = '+31612345678'

t.test('the simulator opens and closes the WhatsApp window, and its provider refuses free text outside it', async (t) => {
  const clock = new FakeClock()
  const { app, services, db } = await buildTestApp(t, { clock, env: { ...FAST_HASH_ENV, SESSION_TTL_HOURS: '720' } })
  const admin = await signedInAgent(app, { email: 'admin@example.com', name: 'Grace', role: 'admin' })
  const byWhatsApp = await admin.inject({ method: 'POST', url: '/simulator/messages', headers: FORM, payload: form({ number: NUMBER, text: 'Hello from WhatsApp', channel: 'whatsapp' }) })
  t.equal(byWhatsApp.statusCode, 303)
  const inbound = await db.selectFrom('messages').select(['ticket_id', 'channel', 'created_at']).where('direction', '=', 'inbound').executeTakeFirstOrThrow()
  t.equal(inbound.channel, 'whatsapp', 'stored as a WhatsApp message')
  await services.worker.drain()
  const phone = (await admin.inject({ method: 'GET', url: `/simulator?number=${encodeURIComponent(NUMBER)}`, headers: HTML })).body
  t.match(phone, /· WhatsApp · /, 'the phone marks WhatsApp messages')
  t.match(phone, /Age my WhatsApp messages past 24 h/)
  let ticket = (await admin.inject({ method: 'GET', url: `/tickets/${inbound.ticket_id}`, headers: HTML })).body
  t.match(ticket, /WhatsApp window open for 24 h 0 min/)

  const aged = await admin.inject({ method: 'POST', url: '/simulator/whatsapp-window', headers: FORM, payload: form({ number: NUMBER }) })
  t.equal(aged.statusCode, 303)
  const moved = await db.selectFrom('messages').select('created_at').where('direction', '=', 'inbound').executeTakeFirstOrThrow()
  t.ok(Date.parse(moved.created_at) < clock.now().getTime() - 24 * 3600_000, 'the customer\'s WhatsApp message is now more than 24 h old')
  ticket = (await admin.inject({ method: 'GET', url: `/tickets/${inbound.ticket_id}`, headers: HTML })).body
  t.match(ticket, /WhatsApp window closed: free text cannot be sent/, 'the composer says closed')
  const again = await admin.inject({ method: 'POST', url: '/simulator/whatsapp-window', headers: FORM, payload: form({ number: NUMBER }) })
  t.equal(again.statusCode, 422, 'nothing left to age')
  t.match(again.body, /its window is already closed/)

  // An API dispatch bypasses the composer: the simulated provider refuses the WhatsApp step (470)
  // and the dispatch fails over to SMS at once.
  const api = await apiClient(app, services)
  const res = await api.post('/api/v1/dispatch', {
    template: 'failover',
    workflow: [
      { to: { type: 'whatsapp', number: '31612345678' }, message: { content: { type: 'text', text: 'Cupcakes ready' } }, failover: { expiry_time: 600, condition_status: 'delivered' } },
      { from: { type: 'sms', number: '31970102600' }, to: { type: 'sms', number: '31612345678' }, message: { content: { type: 'text', text: 'Cupcakes ready' } } }
    ]
  })
  t.equal(res.statusCode, 202, res.body)
  await services.worker.drain()
  await services.worker.drain()
  const steps = await db.selectFrom('messages').select(['channel', 'status', 'error_code']).where('body', '=', 'Cupcakes ready').orderBy('created_at').orderBy('id').execute()
  // Both steps carry the fake clock's one instant: compared by channel, not by order.
  t.same(steps.map((m) => [m.channel, m.status === 'failed' ? 'failed' : 'went out', m.error_code]).sort(), [['sms', 'went out', null], ['whatsapp', 'failed', '470']], 'WhatsApp refused for the window, SMS sent instead')

  // A template is what WhatsApp still takes.
  t.equal((await admin.inject({ method: 'POST', url: '/admin/templates', headers: FORM, payload: form({ namespace: 'sim_ns', name: 'back_in_touch', language: 'en', params: '' }) })).statusCode, 303)
  const tpl = await db.selectFrom('whatsapp_templates').select('id').executeTakeFirstOrThrow()
  t.equal((await admin.inject({ method: 'POST', url: `/tickets/${inbound.ticket_id}/template`, headers: FORM, payload: form({ template: String(tpl.id) }) })).statusCode, 303)
  await services.worker.drain()
  const sent = await db.selectFrom('messages').select(['status', 'channel']).where('body', '=', 'WhatsApp template back_in_touch (en)').executeTakeFirstOrThrow()
  t.match(sent, { status: /^(sent|delivered|read)$/, channel: 'whatsapp' }, 'the template is accepted outside the window (the simulator may already have reported it delivered or read)')
})
