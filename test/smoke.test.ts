import t from 'tap'
import { buildTestApp, form } from './helper.js'

t.test('an inbound SMS opens a ticket and the confirmation is delivered through the simulator', async (t) => {
  const { app, services, db } = await buildTestApp(t)
  const res = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ originator: '31612345678', payload: 'Hi', id: 'm1' }) })
  t.equal(res.statusCode, 200)
  await services.worker.drain()
  await services.simulator?.idle()
  const out = await db.selectFrom('messages').selectAll().where('direction', '=', 'outbound').execute()
  t.equal(out.length, 1)
  t.equal(out[0].status, 'delivered')
})
