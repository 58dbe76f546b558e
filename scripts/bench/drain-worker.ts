import { buildApp } from '../../src/app.js'
import { systemClock } from '../../src/clock.js'
import { loadConfig } from '../../src/config.js'
import { createDatabase } from '../../src/db/database.js'
import type { Channel } from '../../src/db/schema.js'
import type { ChannelAdapter, SendOutcome } from '../../src/messaging/channel.js'

// One outbox worker in a process of its own, as an instance runs it: forked by the drain part of
// `npm run bench -- postgres` (postgres.ts). It says `ready` once built, drains on `go` until the
// outbox is empty, then says `done` and exits when the parent disconnects.

/**
 * A provider with unlimited capacity that answers at once, or after `latencyMs` as a real API call
 * over the internet does: at once, the drain measures the database and the worker on this
 * machine's CPU; with a latency, it measures how sends in flight add up across workers. Its
 * ids are unique across workers, as a real provider's are: with one counter per worker, two
 * workers' `b-1` collided on the (provider, id) index, the record of the outcome failed, and the
 * send was then rightly treated as unknown, which measured the failure path instead.
 */
export class InstantChannel implements ChannelAdapter {
  readonly provider = 'bench'
  private n = 0
  constructor (private readonly worker: number, private readonly latencyMs = 0) {}
  supports (channel: Channel): boolean { return channel === 'sms' }
  async send (): Promise<SendOutcome> {
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs))
    return { ok: true, providerMessageId: `b-${this.worker}-${++this.n}` }
  }
}

async function main (url: string, worker: number, latencyMs: number): Promise<void> {
  const config = loadConfig({ NODE_ENV: 'production', LOG_LEVEL: 'silent', DATABASE_URL: url, SMS_CHANNEL: 'simulator', ALLOW_SIMULATOR_IN_PRODUCTION: 'true' })
  const app = await buildApp({ config, db: createDatabase(config), clock: systemClock, channel: new InstantChannel(worker, latencyMs) })
  const db = app.services.db
  const left = async (): Promise<number> => Number((await db.selectFrom('outbox').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n)
  process.once('message', (m) => {
    if (m !== 'go') return
    void (async () => {
      let handled = 0
      // A claim that finds every due row locked by the other worker returns nothing, which does
      // not mean there is nothing left.
      for (;;) {
        const n = await app.services.worker.drain()
        handled += n
        if (n === 0 && await left() === 0) break
        if (n === 0) await new Promise((resolve) => setImmediate(resolve))
      }
      await app.close()
      // Exit only once the parent has read `done` and let go: exiting right after sending raced
      // the message, and the parent saw the exit first.
      process.once('disconnect', () => process.exit(0))
      process.send?.({ done: handled })
    })()
  })
  process.send?.('ready')
}

if (process.send !== undefined) void main(process.argv[2], Number(process.argv[3]), Number(process.argv[4] ?? 0))
