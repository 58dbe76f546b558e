import t from 'tap'
import { FAST_HASH_ENV, signedInAgent } from '../auth/agent-session.js'
import { buildTestApp, FakeClock, form } from '../helper.js'
import { ManualChannel, runDue, ticketFor } from '../messaging/failover-helpers.js'

const FORM = { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }
const CUSTOMER = '+31612345678'

t.test('an agent adds and removes a contact\'s extra addresses on the ticket page', async (t) => {
  const { app, services } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agent = await signedInAgent(app)
  const ticketId = await ticketFor(services, CUSTOMER)
  const otherTicket = await ticketFor(services, '+31611112222')
  await services.contacts.add(otherTicket, 'sms', '+31633334444')

  let page = await agent.inject({ method: 'GET', url: `/tickets/${ticketId}`, headers: { accept: 'text/html' } })
  t.match(page.body, /<section id="addresses"/)
  t.match(page.body, /SMS \+31612345678\s*<span class="muted">\(their main number/)
  t.match(page.body, /action="\/tickets\/\d+\/addresses"[^>]*>\s*<input type="hidden" name="_csrf" value="[^"]+">/, 'the add form carries the CSRF token')
  t.notMatch(page.body, /name="failover"/, 'no failover choice with a single address')

  const add = async (channel: string, address: string) => await agent.inject({ method: 'POST', url: `/tickets/${ticketId}/addresses`, headers: FORM, payload: form({ channel, address }) })
  const ok = await add('whatsapp', '+31 6 8765 4321')
  t.equal(ok.statusCode, 303)
  t.equal(ok.headers.location, `/tickets/${ticketId}#addresses`)
  t.equal((await add('sms', '0031687654321')).statusCode, 303, 'a second phone number, in 00 notation')

  const bad = await add('sms', '12345')
  t.equal(bad.statusCode, 422)
  t.match(bad.body, /role="alert">&quot;12345&quot; is not a valid phone number/)
  t.match(bad.body, /name="address" value="12345"/, 'the input is kept')
  t.equal((await add('telegram', '+31687654321')).statusCode, 422)
  const dup = await add('sms', '+31687654321')
  t.equal(dup.statusCode, 409)
  t.match(dup.body, /already on this customer&#x27;s SMS list/)
  t.match((await add('sms', CUSTOMER)).body, /already on this customer/, 'the main number is already there')
  const taken = await add('sms', '+31633334444')
  t.equal(taken.statusCode, 409)
  t.match(taken.body, /\+31633334444 already belongs to the customer of ticket #2\./)

  page = await agent.inject({ method: 'GET', url: `/tickets/${ticketId}`, headers: { accept: 'text/html' } })
  const listed = [...page.body.matchAll(/<li>(SMS|WhatsApp) (\+\d+)/g)].map((m) => `${m[1]} ${m[2]}`)
  t.same(listed, ['SMS +31612345678', 'WhatsApp +31687654321', 'SMS +31687654321'], 'in the order they are tried')
  t.match(page.body, /name="failover" value="1"> Send with failover: SMS \+31612345678, then WhatsApp \+31687654321, then SMS \+31687654321, each given 5 min/)

  const ids = [...page.body.matchAll(/addresses\/(\d+)\/delete/g)].map((m) => m[1])
  t.equal(ids.length, 2)
  const removed = await agent.inject({ method: 'POST', url: `/tickets/${ticketId}/addresses/${ids[0]}/delete`, headers: FORM, payload: form({}) })
  t.equal(removed.statusCode, 303)
  const addresses = await services.contacts.forTicket(ticketId)
  t.same(addresses.map((a) => `${a.channel} ${a.address}`), ['sms +31612345678', 'sms +31687654321'])
  const again = await agent.inject({ method: 'POST', url: `/tickets/${ticketId}/addresses/${ids[0]}/delete`, headers: FORM, payload: form({}) })
  t.equal(again.statusCode, 404)
  const foreign = await services.contacts.forTicket(otherTicket)
  const foreignId = foreign.find((a) => a.id !== null)?.id as number
  t.equal((await agent.inject({ method: 'POST', url: `/tickets/${ticketId}/addresses/${foreignId}/delete`, headers: FORM, payload: form({}) })).statusCode, 404, 'another customer\'s address cannot be removed from here')
})

t.test('"send with failover": the reply becomes a workflow over the contact\'s addresses, shown step by step', async (t) => {
  const clock = new FakeClock()
  const { app, services, db } = await buildTestApp(t, { clock, env: { ...FAST_HASH_ENV, FAILOVER_DEFAULT_EXPIRY_SECONDS: '120' } })
  const agent = await signedInAgent(app)
  const ticketId = await ticketFor(services, CUSTOMER)
  await services.contacts.add(ticketId, 'whatsapp', '+31687654321')
  await runDue(services)
  services.simulator?.setMode(CUSTOMER, 'unreachable')
  const res = await agent.inject({ method: 'POST', url: `/tickets/${ticketId}/replies`, headers: FORM, payload: form({ body: 'Your refund is on its way', failover: '1' }) })
  t.equal(res.statusCode, 303)
  await runDue(services)
  const dispatch = await db.selectFrom('dispatches').selectAll().executeTakeFirstOrThrow()
  t.equal(dispatch.ticket_id, ticketId)
  const steps = await db.selectFrom('dispatch_steps').selectAll().orderBy('position').execute()
  t.match(steps, [
    { channel: 'sms', to_address: CUSTOMER, condition_status: 'delivered', expiry_seconds: 120, status: 'active' },
    { channel: 'whatsapp', to_address: '+31687654321', condition_status: null, expiry_seconds: null, status: 'waiting' }
  ])
  let page = await agent.inject({ method: 'GET', url: `/tickets/${ticketId}/conversation` })
  t.match(page.body, /Failover step 1 of 2: waiting for delivery, next address at <time datetime="2026-01-01T09:02:00.000Z">/)

  clock.advance(120_000)
  await runDue(services)
  page = await agent.inject({ method: 'GET', url: `/tickets/${ticketId}/conversation` })
  t.match(page.body, /Failover step 1 of 2: not delivered in time; handed over to the next address/)
  t.match(page.body, /to WhatsApp \+31687654321/)
  t.match(page.body, /Failover step 2 of 2: delivered</)
  const replies = await db.selectFrom('messages').select(['kind', 'agent_id', 'channel']).where('dispatch_id', '=', dispatch.id).execute()
  t.same(replies.map((r) => [r.kind, r.agent_id, r.channel]), [['reply', agent.id, 'sms'], ['reply', agent.id, 'whatsapp']], 'both steps are the agent\'s reply')

  const plain = await agent.inject({ method: 'POST', url: `/tickets/${ticketId}/replies`, headers: FORM, payload: form({ body: 'Plain reply' }) })
  t.equal(plain.statusCode, 303)
  t.equal((await db.selectFrom('dispatches').select('id').execute()).length, 1, 'without the box ticked, a plain SMS')
})

t.test('the ticket page shows status, time, plain-words reason, price and the unconfirmed flag', async (t) => {
  const clock = new FakeClock()
  const channel = new ManualChannel()
  const { app, services } = await buildTestApp(t, { clock, channel, env: { ...FAST_HASH_ENV, UNCONFIRMED_AFTER_SECONDS: '300' } })
  const agent = await signedInAgent(app)
  const ticketId = await ticketFor(services, CUSTOMER)
  const failed = await services.tickets.reply(ticketId, 'first', null)
  const pending = await services.tickets.reply(ticketId, 'second', null)
  await runDue(services)
  await app.inject({ method: 'GET', url: `/webhooks/messagebird/status?id=x&reference=${failed.messageId}&status=delivery_failed&statusDatetime=2026-01-01T09:00:03%2B00:00&statusReason=unknown+subscriber&price%5Bamount%5D=0.071&price%5Bcurrency%5D=EUR` })
  let page = await agent.inject({ method: 'GET', url: `/tickets/${ticketId}`, headers: { accept: 'text/html' } })
  const item = (id: string) => new RegExp(`data-item-id="${id}"[\\s\\S]*?</li>`).exec(page.body)?.[0] ?? ''
  t.match(item(failed.messageId), /<span class="status failed"[^>]*>Failed<\/span> <time datetime="2026-01-01T09:00:03.000Z">2026-01-01 09:00 UTC<\/time>/)
  t.match(item(failed.messageId), /The number does not exist or is no longer in service\. Check it with the customer\. <span class="muted">\(provider: unknown subscriber\)<\/span>/)
  t.match(item(failed.messageId), /0\.071 EUR/)
  t.match(item(pending.messageId), /class="status sent"/)
  t.notMatch(item(pending.messageId), /unconfirmed/)
  clock.advance(301_000)
  page = await agent.inject({ method: 'GET', url: `/tickets/${ticketId}`, headers: { accept: 'text/html' } })
  t.match(item(pending.messageId), /<span class="badge warn" title="Sent, but no delivery report for over 5 min">unconfirmed<\/span>/)
  t.notMatch(item(failed.messageId), /unconfirmed/, 'a final status is never unconfirmed')
})

t.test('CONFIRMATION_WITH_FAILOVER: a new ticket\'s confirmation goes over the contact\'s addresses; texts from an extra address join the thread', async (t) => {
  const clock = new FakeClock()
  const { services, db } = await buildTestApp(t, { clock, env: { CONFIRMATION_WITH_FAILOVER: 'true', FAILOVER_DEFAULT_EXPIRY_SECONDS: '60' } })
  const first = await ticketFor(services, CUSTOMER)
  await services.contacts.add(first, 'sms', '+31687654321')
  await services.tickets.close(first, null)
  await runDue(services)
  t.equal((await db.selectFrom('dispatches').select('id').execute()).length, 0, 'one address: a plain confirmation')

  services.simulator?.setMode(CUSTOMER, 'unreachable')
  const second = await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'again', from: CUSTOMER, to: null, text: 'Still waiting', channel: 'sms' })
  await runDue(services)
  const dispatch = await db.selectFrom('dispatches').selectAll().executeTakeFirstOrThrow()
  t.equal(dispatch.ticket_id, second.ticketId)
  clock.advance(60_000)
  await runDue(services)
  const confirmations = await db.selectFrom('messages').select(['to_address', 'status', 'body']).where('kind', '=', 'confirmation').where('ticket_id', '=', second.ticketId).orderBy('created_at').execute()
  t.match(confirmations, [{ to_address: CUSTOMER, status: 'sent' }, { to_address: '+31687654321', status: 'delivered', body: /Your ticket ID is \d+/ }])

  const fromSecond = await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'other-phone', from: '+31687654321', to: null, text: 'Texting from my other phone', channel: 'sms' })
  t.equal(fromSecond.ticketId, second.ticketId, 'the text from the extra number lands on the same ticket')
  t.equal(fromSecond.newTicket, false)
})

t.test('opted-out contacts: a failover reply is recorded as blocked, like any reply', async (t) => {
  const { services, db } = await buildTestApp(t)
  const ticketId = await ticketFor(services, CUSTOMER)
  await services.contacts.add(ticketId, 'whatsapp', '+31687654321')
  await services.tickets.receiveInbound({ provider: 'test', providerMessageId: 'stop', from: CUSTOMER, to: null, text: 'STOP', channel: 'sms' })
  const r = await services.tickets.reply(ticketId, 'Are you there?', null, { failover: true })
  t.equal(r.status, 'blocked')
  t.equal((await db.selectFrom('dispatches').select('id').execute()).length, 0)
})
