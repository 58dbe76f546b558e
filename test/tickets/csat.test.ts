import t from 'tap'
import type { Test } from 'tap'
import { CSAT_SURVEY_TEXT, CSAT_THANKS_TEXT } from '../../src/tickets/csat.js'
import { setup } from '../contacts/helpers.js'

// Satisfaction over SMS at the edges: a customer texting through the webhook, an agent closing
// through the ticket page's form, and what reached the simulator's "network".

const PHONE = '+31612345678'
// Sessions outlive the window here, so the agent can look at the ticket a day later.
const CSAT_ON = { CSAT: 'on', CSAT_WINDOW_HOURS: '24', SESSION_TTL_HOURS: '72' }
const HOUR = 3600_000

async function closedTicket (t: Test, env: Record<string, string> = CSAT_ON) {
  const s = await setup(t, env)
  const ticketId = await s.text(PHONE, 'My parcel never arrived')
  await s.post(s.ada, `/tickets/${ticketId}/assign`, { assignee: 'me' })
  await s.post(s.ada, `/tickets/${ticketId}/replies`, { body: 'Sent a new one today.' })
  const closed = await s.post(s.ada, `/tickets/${ticketId}/status`, { status: 'closed' })
  if (closed.statusCode !== 303) throw new Error(`close answered ${closed.statusCode}`)
  await s.flush()
  return { ...s, ticketId }
}

t.test('closing a ticket texts the survey, once per ticket, through the outbox', async (t) => {
  const { db, sent, ticketId, post, ada, flush, get } = await closedTicket(t)
  t.same(sent.filter((m) => m.body === CSAT_SURVEY_TEXT).map((m) => m.to), [PHONE], 'the survey went out after the close, once')
  const survey = await db.selectFrom('csat_surveys').selectAll().executeTakeFirstOrThrow()
  t.equal(survey.ticket_id, ticketId)
  t.equal(survey.agent_id, ada.id, 'counts for who had the ticket')
  t.equal(survey.expires_at, '2026-01-02T09:00:01.000Z', 'open for CSAT_WINDOW_HOURS')
  const page = await get(ada, `/tickets/${ticketId}`)
  t.match(page.body, /satisfaction survey sent/)
  // Reopen and close again: not asked twice.
  await post(ada, `/tickets/${ticketId}/status`, { status: 'open' })
  await post(ada, `/tickets/${ticketId}/status`, { status: 'closed' })
  await flush()
  t.equal(sent.filter((m) => m.body === CSAT_SURVEY_TEXT).length, 1, 'one survey per ticket')
})

t.test('"5" within the window: the rating of the closed ticket, no new ticket, a thank-you', async (t) => {
  const { db, sent, ticketId, text, clock, flush, get, ada } = await closedTicket(t)
  clock.advance(23 * HOUR)
  const ratedOn = await text(PHONE, ' 5 ')
  t.equal(ratedOn, ticketId, 'the webhook names the rated ticket')
  await flush()
  t.equal((await db.selectFrom('tickets').selectAll().execute()).length, 1, 'no new ticket')
  const ticket = await db.selectFrom('tickets').selectAll().executeTakeFirstOrThrow()
  t.equal(ticket.status, 'closed', 'still closed')
  t.equal(ticket.last_customer_message_at, '2026-01-01T09:00:01.000Z', 'not unread: nobody owes an answer')
  const survey = await db.selectFrom('csat_surveys').selectAll().executeTakeFirstOrThrow()
  t.equal(survey.rating, 5)
  t.same(sent.map((m) => m.body).slice(-1), [CSAT_THANKS_TEXT], 'thanked')
  t.equal(sent.filter((m) => /Your ticket ID/.test(m.body)).length, 1, 'no second confirmation')
  const page = await get(ada, `/tickets/${ticketId}`)
  t.equal(page.statusCode, 200, page.body.slice(0, 300))
  t.match(page.body, /<span class="badge csat-rating" data-rating="5">Rated 5 of 5<\/span>/, 'the rating shows on the ticket')
  t.match(page.body, /Satisfaction rating: 5 of 5\./, 'the text is in the thread, marked as the rating')
  // A second digit is not a second rating: it is a text like any other.
  await text(PHONE, '4')
  t.equal((await db.selectFrom('csat_surveys').select('rating').executeTakeFirstOrThrow()).rating, 5, 'the first rating stands')
  t.equal((await db.selectFrom('tickets').selectAll().execute()).length, 2, 'the second digit opened a ticket as any text does')
})

t.test('"5" after the window: an ordinary text (a new ticket and its confirmation)', async (t) => {
  const { db, sent, ticketId, text, clock, flush } = await closedTicket(t)
  clock.advance(24 * HOUR)
  const newTicket = await text(PHONE, '5')
  await flush()
  t.not(newTicket, ticketId, 'a new ticket')
  t.equal((await db.selectFrom('csat_surveys').select('rating').executeTakeFirstOrThrow()).rating, null, 'no rating')
  t.match(sent.at(-1)?.body ?? '', /Your ticket ID is/, 'the new ticket\'s confirmation')
  const m = await db.selectFrom('messages').selectAll().where('ticket_id', '=', newTicket).where('direction', '=', 'inbound').executeTakeFirstOrThrow()
  t.equal(m.body, '5')
})

t.test('"5 stars!" is not a rating: an ordinary text', async (t) => {
  const { db, ticketId, text } = await closedTicket(t)
  const other = await text(PHONE, '5 stars!')
  t.not(other, ticketId)
  t.equal((await db.selectFrom('csat_surveys').select('rating').executeTakeFirstOrThrow()).rating, null)
  for (const body of ['0', '6', '55', '5.']) {
    await text('+31612340000', body)
  }
  t.equal((await db.selectFrom('csat_surveys').select('rating').executeTakeFirstOrThrow()).rating, null, 'other numbers and other texts rate nothing')
})

t.test('a digit while the customer has an open ticket goes to that ticket', async (t) => {
  const { db, ticketId, text } = await closedTicket(t)
  const open = await text(PHONE, 'One more thing')
  const joined = await text(PHONE, '3')
  t.equal(joined, open)
  t.not(open, ticketId)
  t.equal((await db.selectFrom('csat_surveys').select('rating').executeTakeFirstOrThrow()).rating, null)
})

t.test('an opted-out customer gets no survey', async (t) => {
  const s = await setup(t, CSAT_ON)
  const ticketId = await s.text(PHONE, 'Hello')
  await s.text(PHONE, 'STOP')
  await s.flush()
  const before = s.sent.length
  await s.post(s.ada, `/tickets/${ticketId}/status`, { status: 'closed' })
  await s.flush()
  t.equal(s.sent.length, before, 'nothing sent')
  t.equal((await s.db.selectFrom('messages').selectAll().where('kind', '=', 'csat_survey').execute()).length, 0, 'not even recorded as blocked')
  t.equal((await s.db.selectFrom('csat_surveys').selectAll().execute()).length, 0)
})

t.test('CSAT off (the default): no survey, and a digit is a text', async (t) => {
  const { db, sent, ticketId, text } = await closedTicket(t, {})
  t.notOk(sent.some((m) => m.body === CSAT_SURVEY_TEXT))
  t.not(await text(PHONE, '5'), ticketId)
  t.equal((await db.selectFrom('csat_surveys').selectAll().execute()).length, 0)
})

t.test('the thank-you obeys the automatic-answer limits; a redelivered rating changes nothing', async (t) => {
  const { db, sent, text, clock, flush, services } = await closedTicket(t, { ...CSAT_ON, AUTO_REPLY_MAX_PER_DAY: '1' })
  await text(PHONE, 'HELP')
  await flush()
  // HELP opened a ticket and took the day's one automatic answer; its close asks again.
  const helpTicket = (await db.selectFrom('tickets').select('id').where('status', '=', 'open').executeTakeFirstOrThrow()).id
  await services.tickets.setStatus(helpTicket, 'closed', null)
  await flush()
  const sentBefore = sent.length
  clock.advance(HOUR)
  await services.tickets.receiveInbound({ provider: 'messagebird', providerMessageId: 'rating-1', from: PHONE, to: null, text: '4', channel: 'sms' })
  await flush()
  const rated = await db.selectFrom('csat_surveys').selectAll().where('rating', 'is not', null).execute()
  t.same(rated.map((s) => [s.ticket_id, s.rating]), [[helpTicket, 4]], 'the newest survey is rated')
  t.equal(sent.length, sentBefore, 'no thank-you: the day\'s one automatic answer went to HELP')
  const m = await db.selectFrom('messages').selectAll().where('provider_message_id', '=', 'rating-1').executeTakeFirstOrThrow()
  t.equal(m.status_reason, 'Satisfaction rating: 4 of 5. No automatic answer: this number already got 1 automatic answer within 24 hours.')
  const again = await services.tickets.receiveInbound({ provider: 'messagebird', providerMessageId: 'rating-1', from: PHONE, to: null, text: '4', channel: 'sms' })
  t.ok(again.duplicate, 'a provider retry is a duplicate')
  t.equal((await db.selectFrom('tickets').selectAll().execute()).length, 2, 'and opens nothing')
  t.equal((await db.selectFrom('messages').selectAll().where('provider_message_id', '=', 'rating-1').execute()).length, 1)
})
