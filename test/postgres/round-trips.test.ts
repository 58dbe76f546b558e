import t from 'tap'
import type { Channel } from '../../src/db/schema.js'
import type { ChannelAdapter, SendOutcome } from '../../src/messaging/channel.js'
import { captureStatements } from '../db/capture-statements.js'
import { buildTestApp, eventsDelivered, FakeClock, form, postgresOnly } from '../helper.js'

// On PostgreSQL every statement is a round trip to the server, and round trips are what an
// instance's throughput is made of (README "Scale-out, on paper"). This holds the count of the
// hottest paths to a budget, statement by statement, so that one added on the way shows up here
// with its SQL rather than later as a slower benchmark.

class InstantChannel implements ChannelAdapter {
  readonly provider = 'messagebird'
  private n = 0
  supports (channel: Channel): boolean { return channel === 'sms' }
  async send (): Promise<SendOutcome> { return { ok: true, providerMessageId: `p-${++this.n}` } }
}

const kinds = (statements: Array<{ sql: string }>): string[] => statements.map(({ sql }) => {
  const s = sql.replace(/\s+/g, ' ').trim()
  const m = /^(begin|commit|rollback|select pg_notify|select|insert into "?(\w+)"?|update "?(\w+)"?|delete from "?(\w+)"?)/i.exec(s)
  return m === null ? s.slice(0, 40) : (m[2] ?? m[3] ?? m[4]) === undefined ? m[1].toLowerCase() : `${m[1].split(' ')[0].toLowerCase()} ${m[2] ?? m[3] ?? m[4]}`
})

t.test('round trips per inbound text and per confirmation sent stay within budget', postgresOnly('round trips are a PostgreSQL cost'), async (t) => {
  const capture = captureStatements()
  t.teardown(() => capture.restore())
  const clock = new FakeClock()
  const { app, services } = await buildTestApp(t, { clock, channel: new InstantChannel() })
  // The LISTEN connection is up, so nothing of its start-up is counted below.
  await eventsDelivered(services.events)
  const text = async (id: string) => {
    const res = await app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ originator: '31612345678', payload: 'Where is my parcel?', id }) })
    t.equal(res.statusCode, 200)
  }

  const first = kinds(await capture.during(async () => await text('rt-1')))
  t.same(first, [
    'begin',
    'select', // this provider id seen before?
    'select', // who wrote, and their open ticket
    'select', // the key of erased numbers' hashes: once per database and process (README "Data and privacy")
    'insert contacts', 'insert contact_numbers', 'insert tickets', 'insert ticket_counts',
    'insert messages', 'update tickets', // the text, and the ticket's list columns
    'insert messages', 'insert outbox', 'update tickets', // the confirmation, queued
    'select pg_notify', // the live update, delivered at commit
    'commit'
  ], 'the first text that opens a ticket: one transaction of 15 statements, nothing after it')

  const sending = kinds(await capture.during(async () => { await services.worker.drain() }))
  t.same(sending, [
    'update outbox', // claim due rows, in one statement
    'begin', 'select', 'select', 'update messages', 'commit', // read it, read consent, mark it sending
    'begin', 'update messages', 'select pg_notify', 'delete outbox', 'commit' // the provider took it
  ], 'its confirmation: a claim, then two transactions around the request')

  const next = kinds(await capture.during(async () => await text('rt-2')))
  t.same(next, ['begin', 'select', 'select', 'insert messages', 'update tickets', 'select pg_notify', 'commit'],
    'a text on the open ticket: one transaction of 7 statements')
})
