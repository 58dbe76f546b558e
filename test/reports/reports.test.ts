import t from 'tap'
import type { Test } from 'tap'
import { signedInAgent } from '../auth/agent-session.js'
import { FORM, HTML, setup } from '../contacts/helpers.js'
import { form } from '../helper.js'

// The reports page and its CSV exports at the HTTP edge, over a small desk built the way agents
// and customers build one: texts through the webhook, replies and closes through the ticket
// forms, ratings by SMS, a failover reply whose first address rejects it.

const MIN = 60_000
const ENV = { CSAT: 'on', SESSION_TTL_HOURS: '72' }
const A = '+31611111111'
const B = '+31622222222'
const C = '+31633333333'
const C2 = '+31644444444'

async function desk (t: Test) {
  const s = await setup(t, ENV)
  const boss = await signedInAgent(s.app, { email: 'bo@example.com', name: 'Bo Admin', role: 'admin' })
  const act = async (agent: typeof s.ada, ticketId: number, path: string, fields: Record<string, string>) => {
    const res = await s.post(agent, `/tickets/${ticketId}/${path}`, fields)
    if (res.statusCode !== 303) throw new Error(`${path} answered ${res.statusCode}: ${res.body.slice(0, 300)}`)
  }
  // A: answered by Ada after 10 min, closed an hour after it opened, rated 5.
  const a = await s.text(A, 'Where is my parcel?')
  await act(s.ada, a, 'assign', { assignee: 'me' })
  s.clock.advance(10 * MIN)
  await act(s.ada, a, 'replies', { body: 'On its way.' })
  s.clock.advance(50 * MIN)
  await act(s.ada, a, 'status', { status: 'closed' })
  await s.flush()
  // B: answered by Bo after 30 min, closed two hours after it opened, rated 3.
  const b = await s.text(B, 'My invoice is wrong')
  await act(boss, b, 'assign', { assignee: 'me' })
  s.clock.advance(30 * MIN)
  await act(boss, b, 'replies', { body: 'Fixed it.' })
  s.clock.advance(90 * MIN)
  await act(boss, b, 'status', { status: 'closed' })
  await s.flush()
  await s.text(A, '5')
  await s.text(B, '3')
  // C: their phone rejects Ada's reply after 5 min, which goes on to their second number.
  const c = await s.text(C, 'Call me back')
  await act(s.ada, c, 'assign', { assignee: 'me' })
  await s.flush()
  await act(s.ada, c, 'addresses', { channel: 'sms', address: C2 })
  s.channel.setMode(C, 'failing')
  s.clock.advance(5 * MIN)
  await act(s.ada, c, 'replies', { body: 'Trying both your numbers', failover: '1' })
  await s.flush()
  return { ...s, boss, tickets: { a, b, c } }
}

const csvRows = (body: string): string[] => body.split('\r\n').filter((l) => l !== '')

t.test('a day of work: counts, response and resolution times, ratings, failures, cost and handovers, on the page and in each CSV', async (t) => {
  const { ada, get, db } = await desk(t)
  const q = 'from=2026-01-01&to=2026-01-01'
  const page = await get(ada, `/reports?${q}`)
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-security-policy'], /default-src 'none'/, 'the page is under the CSP')
  t.notMatch(page.body, /<script(?! src="\/assets\/)/, 'no inline script')
  t.notMatch(page.body, / style="/, 'no inline style (the CSP refuses it)')
  t.match(page.body, /<p>3 opened, 2 closed\.<\/p>/)
  t.equal([...page.body.matchAll(/<svg class="chart"[^>]*role="img"/g)].length, 7, 'seven charts, each an image with a name')
  t.match(page.body, /<title>2026-01-01: 3 opened<\/title>/, 'each bar says what it counts')
  t.match(page.body, /2 ratings, average <strong id="csat-average">4\.00<\/strong> of 5/)
  for (const name of ['volume', 'response-times', 'agents', 'csat', 'csat-weeks', 'failures', 'parts-cost', 'handovers']) {
    t.match(page.body, `href="/reports/${name}.csv?from&#x3D;2026-01-01&amp;to&#x3D;2026-01-01"`, `the ${name} CSV is linked beside its chart`)
  }

  const csv = async (name: string) => {
    const res = await get(ada, `/reports/${name}.csv?${q}`)
    t.equal(res.statusCode, 200, name)
    t.equal(res.headers['content-type'], 'text/csv; charset=utf-8')
    t.equal(res.headers['content-disposition'], `attachment; filename="textdesk-${name}-2026-01-01-to-2026-01-01.csv"`)
    return csvRows(res.body)
  }
  t.same(await csv('volume'), ['day,opened,closed', '2026-01-01,3,2'])
  // First responses 10, 30 and 5 min; resolutions 60 and 120 min (nearest-rank percentiles).
  t.same(await csv('response-times'), ['measure,tickets,median_seconds,p90_seconds', 'first_response,3,600,1800', 'resolution,2,3600,7200'])
  t.match(page.body, /<td>3<\/td><td>10 min<\/td><td>30 min<\/td>/, 'the same on the page, in words')
  const agents = await db.selectFrom('agents').select(['id', 'name']).orderBy('name').execute()
  const id = (name: string) => agents.find((a) => a.name === name)?.id
  t.same(await csv('agents'), [
    'agent_id,agent,first_response_tickets,first_response_median_seconds,first_response_p90_seconds,resolved_tickets,resolution_median_seconds,resolution_p90_seconds,ratings,rating_average',
    `${id('Ada Lovelace')},Ada Lovelace,2,300,600,1,3600,,1,5`,
    `${id('Bo Admin')},Bo Admin,1,1800,1800,1,7200,7200,1,3`
  ].map((l) => l.replace(',3600,,1,5', ',3600,3600,1,5')))
  t.same(await csv('csat'), ['rating,ratings', '1,0', '2,0', '3,1', '4,0', '5,1'])
  t.same(await csv('csat-weeks'), ['week_starting,ratings,average', '2025-12-29,2,4'], 'weeks start on Monday')
  const outbound = await db.selectFrom('messages').select(['status', 'price_amount']).where('direction', '=', 'outbound').execute()
  t.same(await csv('failures'), ['reason,failed_messages,outbound_messages,rate', `The simulated number rejected the message,1,${outbound.length},${Number((1 / outbound.length).toFixed(4))}`])
  const cost = outbound.reduce((a, m) => a + Number(m.price_amount ?? 0), 0)
  t.ok(cost > 0, 'the simulator reports prices')
  t.same(await csv('parts-cost'), ['day,sms_messages,parts_reported,messages_without_reported_parts,cost_EUR', `2026-01-01,${outbound.length},0,${outbound.length},${Number(cost.toFixed(4))}`])
  t.same(await csv('handovers'), ['day,handovers', '2026-01-01,1'])
})

t.test('an admin sees one agent\'s figures; an agent may not ask for them', async (t) => {
  const { ada, boss, get } = await desk(t)
  const own = await get(boss, `/reports?from=2026-01-01&to=2026-01-01&agent=${ada.id}`)
  t.equal(own.statusCode, 200)
  t.match(own.body, /<h1>Reports: Ada Lovelace<\/h1>/)
  t.match(own.body, /<p>2 opened, 1 closed\.<\/p>/, 'Ada\'s tickets only')
  t.match(own.body, /1 ratings, average <strong id="csat-average">5\.00<\/strong>/)
  const csv = await get(boss, `/reports/volume.csv?from=2026-01-01&to=2026-01-01&agent=${ada.id}`)
  t.equal(csv.headers['content-disposition'], `attachment; filename="textdesk-volume-2026-01-01-to-2026-01-01-agent-${ada.id}.csv"`)
  t.same(csvRows(csv.body), ['day,opened,closed', '2026-01-01,2,1'])
  const refused = await get(ada, `/reports?agent=${boss.id}`)
  t.equal(refused.statusCode, 403)
  t.match(refused.body, /Only an admin can see one agent&#x27;s figures/)
  t.equal((await ada.inject({ method: 'GET', url: `/reports/agents.csv?agent=${boss.id}` })).statusCode, 403, 'nor as CSV')
  t.notMatch((await get(ada, '/reports')).body, /id="report-agent"/, 'an agent gets no agent chooser')
  const unknown = await get(boss, '/reports?agent=999')
  t.equal(unknown.statusCode, 422)
  t.match(unknown.body, /There is no agent 999/)
})

t.test('bad periods are refused with 422 and a sentence', async (t) => {
  const s = await setup(t, ENV)
  const cases: Array<[string, RegExp]> = [
    ['from=2026-01-10&to=2026-01-09', /The period starts \(2026-01-10\) after it ends \(2026-01-09\)/],
    ['from=2026-02-30&to=2026-03-01', /(&quot;|")2026-02-30(&quot;|") is not a date; write the first day as YYYY-MM-DD/],
    ['from=yesterday', /(&quot;|")yesterday(&quot;|") is not a date/],
    ['from=2026-01-01&to=31-01-2026', /(&quot;|")31-01-2026(&quot;|") is not a date; write the last day as YYYY-MM-DD/],
    ['from=2025-01-01&to=2026-01-02', /The period is 367 days long; reports cover at most 366 days\. Choose a shorter period\./]
  ]
  for (const [query, message] of cases) {
    const page = await s.get(s.ada, `/reports?${query}`)
    t.equal(page.statusCode, 422, query)
    t.match(page.body, message, query)
    const csv = await s.ada.inject({ method: 'GET', url: `/reports/volume.csv?${query}` })
    t.equal(csv.statusCode, 422, `${query} (CSV)`)
    t.match(csv.json().message, message)
  }
  const leap = await s.get(s.ada, '/reports?from=2024-01-01&to=2024-12-31')
  t.equal(leap.statusCode, 200, 'a leap year of 366 days is allowed')
  t.equal((await s.app.inject({ method: 'GET', url: '/reports', headers: HTML })).statusCode, 303, 'signed out: to the sign-in page')
})

t.test('the default period is the last 30 days, today included', async (t) => {
  const s = await setup(t, ENV)
  s.clock.set('2026-03-15T23:59:00.000Z')
  const agent = await signedInAgent(s.app, { email: 'cy@example.com', name: 'Cy' })
  const page = await s.get(agent, '/reports')
  t.equal(page.statusCode, 200)
  t.match(page.body, /value="2026-02-14" required/)
  t.match(page.body, /value="2026-03-15" required/)
  t.match(page.body, /30 days, 2026-02-14 to 2026-03-15/)
})

t.test('CSV quoting: commas, quotes and line breaks are quoted; formulas are defused', async (t) => {
  const s = await setup(t, ENV)
  const tricky = await signedInAgent(s.app, { email: 'x@example.com', name: '=HYPERLINK("http://x"), "Jo"', role: 'agent' })
  const id = await s.text(A, 'Hello')
  s.clock.advance(MIN)
  const res = await tricky.inject({ method: 'POST', url: `/tickets/${id}/replies`, headers: { ...FORM, ...HTML }, payload: form({ body: 'Hi' }) })
  t.equal(res.statusCode, 303)
  const csv = await tricky.inject({ method: 'GET', url: '/reports/agents.csv?from=2026-01-01&to=2026-01-01' })
  t.equal(csvRows(csv.body)[1], `${tricky.id},"'=HYPERLINK(""http://x""), ""Jo""",1,60,60,0,,,0,`)
})
