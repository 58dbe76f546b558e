import type { Services } from '../../src/app.js'
import type { Channel } from '../../src/db/schema.js'
import type { ChannelAdapter, OutboundRequest, SendOutcome } from '../../src/messaging/channel.js'
import type { StepSpec } from '../../src/messaging/failover.js'

/**
 * A channel that accepts or rejects by address and never reports: tests send the reports
 * themselves, through MessageBird's webhooks, so by default it stands in for MessageBird.
 */
export class ManualChannel implements ChannelAdapter {
  constructor (readonly provider = 'messagebird') {}
  readonly sent: OutboundRequest[] = []
  private readonly rejecting = new Set<string>()
  private readonly timingOut = new Set<string>()
  private n = 0

  supports (channel: Channel): boolean {
    return channel === 'sms' || channel === 'whatsapp'
  }

  reject (address: string): void {
    this.rejecting.add(address)
  }

  /** Sends to `address` time out after the request went out: the provider may or may not have them. */
  timeOut (address: string): void {
    this.timingOut.add(address)
  }

  async send (req: OutboundRequest): Promise<SendOutcome> {
    this.sent.push(req)
    if (this.rejecting.has(req.to)) return { ok: false, failure: 'permanent', reason: 'rejected by test', code: 'TEST' }
    if (this.timingOut.has(req.to)) return { ok: false, failure: 'ambiguous', reason: 'no answer (test)', code: null }
    return { ok: true, providerMessageId: `manual-${++this.n}` }
  }
}

/** Drains until the outbox has nothing due, letting the simulator's reports land in between. */
export async function runDue (services: Services): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const handled = await services.worker.drain()
    await services.simulator?.idle()
    if (handled === 0) return
  }
  throw new Error('the outbox did not settle')
}

/** Opens a ticket for `phone` the way a customer does, so dispatches have somewhere to live. */
export async function ticketFor (services: Services, phone: string): Promise<number> {
  const r = await services.tickets.receiveInbound({ provider: 'test', providerMessageId: `seed-${phone}`, from: phone, to: null, text: 'hello', channel: 'sms' })
  return r.ticketId
}

export async function startDispatch (services: Services, ticketId: number, steps: StepSpec[], kind: 'notification' | 'reply' = 'notification') {
  const now = services.clock.now().toISOString()
  const started = await services.db.transaction().execute(async (trx) => await services.failover.start(trx, { ticketId, kind, steps }, now))
  return started
}

export const sms = (to: string, body: string, expirySeconds?: number): StepSpec => ({
  channel: 'sms', to, body, failover: expirySeconds === undefined ? null : { condition: 'delivered', expirySeconds }
})

export async function dispatchState (services: Services, id: string) {
  const v = await services.failover.find(id)
  if (v === undefined) throw new Error('no dispatch ' + id)
  return {
    status: v.dispatch.status,
    current: v.dispatch.current_step,
    steps: v.steps.map((s) => s.status),
    messages: v.messages.map((m) => m.status),
    raw: v
  }
}

export async function deadlineRows (services: Services) {
  return await services.db.selectFrom('outbox').selectAll().where('kind', '=', 'failover_deadline').execute()
}
