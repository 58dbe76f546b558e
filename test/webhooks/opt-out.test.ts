import t, { type Test } from 'tap'
import { OPTED_OUT_REASON } from '../../src/messaging/outbound.js'
import { OPT_IN_CONFIRMATION, OPT_OUT_CONFIRMATION } from '../../src/tickets/keywords.js'
import type { OutboundRequest } from '../../src/messaging/channel.js'
import { SimulatorChannel } from '../../src/messaging/simulator-channel.js'
import { FAST_HASH_ENV, signedInAgent } from '../auth/agent-session.js'
import { buildTestApp, FakeClock, form } from '../helper.js'

const PHONE = '+31612345678'
const HTML = { accept: 'text/html' }

/** The real app with a simulator whose sends are recorded: what reached the "network" is the evidence. */
async function setup (t: Test, env: Record<string, string> = {}) {
  const clock = new FakeClock()
  const channel = new SimulatorChannel({ deliveryDelayMs: 0, clock })
  const sent: OutboundRequest[] = []
  const send = channel.send.bind(channel)
  channel.send = async (req) => {
    sent.push(req)
    return await send(req)
  }
  const built = await buildTestApp(t, { clock, channel, env: { ...FAST_HASH_ENV, ...env } })
  let n = 0
  const text = async (body: string, from = PHONE) => {
    // Each text a second later, so messages sort in the order they happened.
    clock.advance(1000)
    const res = await built.app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ originator: from.replace('+', ''), payload: body, id: `in-${++n}` }) })
    if (res.statusCode !== 200) throw new Error(`webhook answered ${res.statusCode}: ${res.body}`)
    return res.json() as { ticket_id: number }
  }
  const flush = async () => {
    await built.services.worker.drain()
    await channel.idle()
  }
  const outbound = async () => await built.db.selectFrom('messages').selectAll().where('direction', '=', 'outbound').orderBy('created_at').orderBy('id').execute()
  const contact = async (phone = PHONE) => await built.db.selectFrom('contacts').selectAll().where('phone', '=', phone).executeTakeFirstOrThrow()
  return { ...built, sent, text, flush, outbound, contact }
}

t.test('STOP and its synonyms are recognised as whole messages; other text is not', async (t) => {
  const { detectKeyword } = await import('../../src/tickets/keywords.js')
  for (const word of ['STOP', 'stop', ' Stop! ', 'STOPALL', 'stop all', 'Unsubscribe.', 'CANCEL', 'end', 'QUIT', 'ＳＴＯＰ']) {
    t.equal(detectKeyword(word), 'opt_out', JSON.stringify(word))
  }
  for (const word of ['START', 'unstop', 'Start.']) t.equal(detectKeyword(word), 'opt_in', JSON.stringify(word))
  for (const word of ['HELP', 'help?', 'INFO']) t.equal(detectKeyword(word), 'help', JSON.stringify(word))
  for (const text of ['STOP PLEASE', 'please stop', 'stopping by later', 'I want to cancel my order', 'The END', '']) {
    t.equal(detectKeyword(text), null, JSON.stringify(text))
  }
})

t.test('STOP opts the contact out, sends exactly one confirmation, and shows on the inbox and ticket', async (t) => {
  const { app, text, flush, sent, outbound, contact, clock } = await setup(t)
  const { ticket_id: ticketId } = await text('My parcel is late')
  await flush()
  t.equal(sent.length, 1, 'the ticket confirmation went out')

  clock.advance(60_000)
  await text('Stop.')
  await flush()
  t.equal((await contact()).opted_out_at, clock.now().toISOString(), 'the opt-out time is stored on the contact')
  t.equal(sent.length, 2)
  t.equal(sent[1].body, OPT_OUT_CONFIRMATION, 'one final confirmation')
  t.equal(sent[1].to, PHONE)

  clock.advance(60_000)
  await text('STOP')
  await flush()
  t.equal(sent.length, 2, 'a second STOP sends nothing more')
  t.equal((await outbound()).filter((m) => m.kind === 'opt_out').length, 1)

  const agent = await signedInAgent(app)
  const inbox = await agent.inject({ method: 'GET', url: '/inbox?view=open', headers: HTML })
  t.match(inbox.body, /<span class="badge failed" title="Texted STOP">opted out<\/span>/, 'the inbox shows the opt-out')
  const page = await agent.inject({ method: 'GET', url: `/tickets/${ticketId}`, headers: HTML })
  t.match(page.body, /opted out since/)
  t.match(page.body, /This customer texted STOP/)
})

t.test('a reply to an opted-out customer is recorded as not sent, with the reason and the agent shown', async (t) => {
  const { app, text, flush, sent, outbound, db } = await setup(t)
  const { ticket_id: ticketId } = await text('Hello?')
  await text('STOP')
  await flush()
  const before = sent.length

  const agent = await signedInAgent(app, { name: 'Grace Hopper' })
  const res = await agent.inject({ method: 'POST', url: `/tickets/${ticketId}/replies`, headers: { ...HTML, 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ body: 'Your parcel ships today' }) })
  t.equal(res.statusCode, 303)
  await flush()
  t.equal(sent.length, before, 'nothing was sent')
  const reply = (await outbound()).find((m) => m.kind === 'reply')
  t.equal(reply?.status, 'blocked')
  t.equal(reply?.status_reason, OPTED_OUT_REASON)
  t.equal(reply?.error_code, 'OPTED_OUT')
  t.equal(reply?.agent_id, agent.id)
  t.equal((await db.selectFrom('outbox').selectAll().execute()).length, 0, 'no send is queued')

  const page = await agent.inject({ method: 'GET', url: `/tickets/${ticketId}`, headers: HTML })
  const item = /<li class="msg outbound"[^>]*>\s*<div class="bubble">Your parcel ships today<\/div>[\s\S]*?<\/li>/.exec(page.body)?.[0] ?? ''
  t.match(item, /Grace Hopper/, 'the reply names its agent')
  t.match(item, /class="status blocked"/)
  t.match(item, /Not sent: the customer opted out by texting STOP\. They can opt back in by texting START\./, 'the reason is on the ticket page')
})

t.test('HELP answers with the configured help text, but not to an opted-out number', async (t) => {
  const { text, flush, sent, outbound } = await setup(t, { HELP_TEXT: 'Acme support: reply with your question. Msg&data rates may apply. Reply STOP to opt out.' })
  await text('HELP')
  await flush()
  t.equal(sent.at(-1)?.body, 'Acme support: reply with your question. Msg&data rates may apply. Reply STOP to opt out.')
  t.equal(sent.filter((s) => s.body.startsWith('Thanks for contacting')).length, 0, 'a keyword gets its answer, not the ticket confirmation')

  await text('STOP')
  await flush()
  const count = sent.length
  await text('help')
  await flush()
  t.equal(sent.length, count, 'no help text to an opted-out number')
  const help = (await outbound()).filter((m) => m.kind === 'help')
  t.equal(help.length, 2)
  t.equal(help[1].status, 'blocked')
  t.equal(help[1].status_reason, OPTED_OUT_REASON)
})

t.test('START (or UNSTOP) opts back in: confirmed, and replies are sent again', async (t) => {
  for (const word of ['START', 'unstop']) {
    t.test(word, async (t) => {
      const { app, text, flush, sent, outbound, contact } = await setup(t)
      const { ticket_id: ticketId } = await text('Hi')
      await text('STOP')
      await flush()
      await text(word)
      await flush()
      t.equal((await contact()).opted_out_at, null, 'opted back in')
      t.equal(sent.at(-1)?.body, OPT_IN_CONFIRMATION)

      const agent = await signedInAgent(app)
      await agent.inject({ method: 'POST', url: `/tickets/${ticketId}/replies`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ body: 'Welcome back' }) })
      await flush()
      t.equal(sent.at(-1)?.body, 'Welcome back')
      t.equal((await outbound()).find((m) => m.body === 'Welcome back')?.status, 'delivered')
      const page = await agent.inject({ method: 'GET', url: `/tickets/${ticketId}`, headers: HTML })
      t.notMatch(page.body, /This customer texted STOP/)
    })
  }
})

t.test('a new ticket from an opted-out number gets no confirmation', async (t) => {
  const { app, text, flush, sent, outbound } = await setup(t)
  const { ticket_id: first } = await text('Hi')
  await text('STOP')
  await flush()
  const agent = await signedInAgent(app)
  await agent.inject({ method: 'POST', url: `/tickets/${first}/close`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: '' })
  const count = sent.length
  const { ticket_id: second } = await text('Actually, one more question')
  await flush()
  t.not(second, first, 'a new ticket')
  t.equal(sent.length, count)
  const confirmation = (await outbound()).filter((m) => m.kind === 'confirmation' && m.ticket_id === second)
  t.equal(confirmation.length, 1)
  t.equal(confirmation[0].status, 'blocked')
})

t.test('a reply queued before STOP but not yet sent is not sent after it', async (t) => {
  const { app, text, flush, sent, outbound, db } = await setup(t)
  const { ticket_id: ticketId } = await text('Hi')
  await flush()
  const agent = await signedInAgent(app)
  const res = await agent.inject({ method: 'POST', url: `/tickets/${ticketId}/replies`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ body: 'Queued before the STOP' }) })
  t.equal(res.statusCode, 303)
  // The worker has not run yet (say it is backing off after a provider outage) when STOP arrives.
  await text('STOP')
  await flush()
  t.notOk(sent.some((s) => s.body === 'Queued before the STOP'), 'the queued reply did not go out')
  t.ok(sent.some((s) => s.body === OPT_OUT_CONFIRMATION), 'the opt-out confirmation did')
  const reply = (await outbound()).find((m) => m.body === 'Queued before the STOP')
  t.equal(reply?.status, 'blocked')
  t.equal(reply?.status_reason, OPTED_OUT_REASON)
  t.equal((await db.selectFrom('outbox').selectAll().execute()).length, 0)
})
