import { readFileSync } from 'node:fs'
import t from 'tap'
import { normaliseLineBreaks, smsParts } from '../../src/messaging/sms-parts.js'

// The shared corpus: public/app.js's counter is checked against the same file, so the composer
// and the server agree on parts and encoding.
const corpus = JSON.parse(readFileSync(new URL('../fixtures/sms-parts.json', import.meta.url), 'utf8')) as Array<{ name: string, text: string, parts: number, encoding: string }>

t.test('the server agrees with every case of test/fixtures/sms-parts.json', async (t) => {
  t.ok(corpus.length >= 20)
  for (const c of corpus) {
    const got = smsParts(c.text)
    t.same({ parts: got.parts, encoding: got.encoding }, { parts: c.parts, encoding: c.encoding }, c.name)
  }
})

t.test('CRLF from a form counts as one line break', async (t) => {
  t.equal(normaliseLineBreaks('a\r\nb\r\n'), 'a\nb\n')
  t.equal(smsParts(normaliseLineBreaks('x'.repeat(80) + '\r\n' + 'y'.repeat(79))).parts, 1)
})
