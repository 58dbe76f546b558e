import { setImmediate as turn } from 'node:timers/promises'
import t from 'tap'
import type { Channel } from '../../src/db/schema.js'
import type { ChannelAdapter, OutboundRequest, SendOutcome } from '../../src/messaging/channel.js'
import { buildTestApp, FakeClock, postgresOnly } from '../helper.js'

/** One provider behind both instances: it counts what each message id was sent as. */
class CountingChannel implements ChannelAdapter {
  readonly provider = 'messagebird'
  readonly sends = new Map<string, number>()
  supports (channel: Channel): boolean { return channel === 'sms' }
  async send (req: OutboundRequest): Promise<SendOutcome> {
    // A turn of the event loop per send: the other instance's worker claims in between.
    await turn()
    this.sends.set(req.messageId, (this.sends.get(req.messageId) ?? 0) + 1)
    return { ok: true, providerMessageId: `p-${req.messageId}` }
  }
}

t.test('two instances\' outbox workers drain one outbox together: every message sent exactly once (FOR UPDATE SKIP LOCKED and the guarded claim)', postgresOnly('two workers claiming from one PostgreSQL outbox'), async (t) => {
  const clock = new FakeClock()
  const provider = new CountingChannel()
  const a = await buildTestApp(t, { clock, channel: provider })
  const b = await buildTestApp(t, { clock, channel: provider, databaseUrl: a.databaseUrl })
  // More rows than one claim takes (100), so that both workers have rows to claim at once.
  const N = 150
  for (let i = 0; i < N; i += 10) {
    await Promise.all(Array.from({ length: 10 }, async (_, j) => await a.services.tickets.receiveInbound({ provider: 'messagebird', providerMessageId: `in-${i + j}`, from: `+316${String(10000000 + i + j)}`, to: null, text: 'Hello', channel: 'sms' })))
  }
  const handled = { a: 0, b: 0 }
  for (let round = 0; round < 20; round++) {
    const [x, y] = await Promise.all([a.services.worker.drain(), b.services.worker.drain()])
    handled.a += x
    handled.b += y
    if (x === 0 && y === 0) break
  }
  t.comment(`instance A handled ${handled.a} rows, instance B ${handled.b}`)
  t.equal(provider.sends.size, N, `all ${N} confirmations sent`)
  t.same([...provider.sends.values()].filter((n) => n !== 1), [], 'none sent twice')
  t.equal(handled.a + handled.b, N, 'each row handled by one worker')
  const left = await a.db.selectFrom('outbox').select('id').execute()
  t.equal(left.length, 0, 'the outbox is empty')
})
