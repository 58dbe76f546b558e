import { runInNewContext } from 'node:vm'
import t from 'tap'
import { FAST_HASH_ENV } from '../auth/agent-session.js'
import { buildTestApp } from '../helper.js'
import { GSM_LOOKALIKES, hasLookalikes, replaceLookalikes } from '../../src/messaging/gsm-lookalikes.js'
import { nonGsmCharacters, smsParts } from '../../src/messaging/sms-parts.js'
import { fillVariables, variableProblem } from '../../src/canned/variables.js'

// The look-alike map is one module: the server's fix uses it, and the page script gets it as
// /assets/gsm-lookalikes.js, written from the same object.

t.test('every look-alike is outside GSM-7 and every replacement is inside it', async (t) => {
  for (const [ch, plain] of Object.entries(GSM_LOOKALIKES)) {
    t.same(nonGsmCharacters(ch), [ch], `U+${ch.codePointAt(0)?.toString(16).toUpperCase().padStart(4, '0')} is not GSM-7`)
    t.equal(smsParts(plain).encoding, 'GSM-7', `its replacement ${JSON.stringify(plain)} is`)
  }
})

t.test('replacing look-alikes turns typographic text into GSM-7 and leaves everything else alone', async (t) => {
  const fancy = '‘Hi’ “there” – we’re here — 9\u00a0am… \u200bok\u00ad'
  t.ok(hasLookalikes(fancy))
  t.equal(smsParts(fancy).encoding, 'UCS-2')
  t.equal(replaceLookalikes(fancy), '\'Hi\' "there" - we\'re here - 9 am... ok')
  t.equal(smsParts(replaceLookalikes(fancy)).encoding, 'GSM-7')
  t.equal(replaceLookalikes('Zoë 🙂 €'), 'Zoë 🙂 €', 'letters, emoji and GSM-7 text are not touched')
  t.notOk(hasLookalikes('Zoë 🙂 €'))
})

t.test('the page script gets the same map', async (t) => {
  const { app } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const res = await app.inject({ method: 'GET', url: '/assets/gsm-lookalikes.js' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/javascript/)
  const window: { TextdeskLookalikes?: unknown } = {}
  runInNewContext(res.body, { window })
  t.same(window.TextdeskLookalikes, GSM_LOOKALIKES)
  t.match((await app.inject({ method: 'GET', url: '/login', headers: { accept: 'text/html' } })).body, /<script src="\/assets\/gsm-lookalikes\.js" defer><\/script>\s*<script src="\/assets\/app\.js" defer>/, 'loaded before app.js')
})

t.test('variables: known ones pass and are filled, unknown and unclosed ones are named', async (t) => {
  t.equal(variableProblem('Hi {{customer.name}}, {{ ticket.ref }} / {{agent.name}}'), null)
  t.same(variableProblem('Hi {{customer.email}} {{x}} {{customer.email}}'), { kind: 'unknown', variables: ['customer.email', 'x'] })
  t.same(variableProblem('Hi {{}}'), { kind: 'unknown', variables: [''] })
  t.same(variableProblem('Hi {{customer.name}'), { kind: 'unclosed' })
  t.same(variableProblem('Hi customer.name}}'), { kind: 'unclosed' })
  t.equal(variableProblem('Prices in {braces} and € are plain text'), null)
  const values = { 'customer.name': '$& {{agent.name}}', 'ticket.ref': '12', 'agent.name': 'Ada' }
  t.equal(fillVariables('Hi {{customer.name}} about {{ ticket.ref }}, {{agent.name}}', values), 'Hi $& {{agent.name}} about 12, Ada', 'values are inserted literally, never read as variables or patterns')
})
