import { randomUUID } from 'node:crypto'
import type { Clock } from '../clock.js'
import type { Channel } from '../db/schema.js'
import type { ChannelAdapter, OutboundRequest, SendOutcome, StatusReport } from './channel.js'
import { mmsOutsideNorthAmerica } from './messagebird-channel.js'

export type SimulatedMode = 'normal' | 'unreachable' | 'failing' | 'off'

/**
 * The built-in channel for laptops and end-to-end tests. It accepts every message, then reports
 * its status through the same entry point as a MessageBird delivery report. A number can be made
 * `unreachable` (stays `sent`, never delivered) or `failing` (rejected at once) to exercise failover,
 * or switched `off`: its messages stay `sent` until it is switched back to `normal`, and are then
 * delivered, as a network delivers to a phone that comes back on. MMS is delivered like SMS (it
 * has no read report), and refused outside the US and Canada as MessageBird's MMS API refuses it.
 */
export class SimulatorChannel implements ChannelAdapter {
  readonly provider = 'simulator'
  private readonly modes = new Map<string, SimulatedMode>()
  /** What was sent to a phone while it was switched off, by number. */
  private readonly held = new Map<string, Array<{ req: OutboundRequest, providerMessageId: string }>>()
  private readonly timers = new Map<NodeJS.Timeout, () => void>()
  private readonly pending = new Set<{ dueAt: number, done: Promise<void> }>()
  private report: ((r: StatusReport) => Promise<unknown>) | null = null
  private windowOpen: ((address: string) => Promise<boolean>) | null = null

  constructor (private readonly opts: { deliveryDelayMs: number, clock: Clock, onError?: (err: unknown) => void }) {}

  /** Wired by the app once the status service exists (the two depend on each other). */
  onReport (fn: (r: StatusReport) => Promise<unknown>): void {
    this.report = fn
  }

  /** Wired by the app: whether the customer at `address` wrote on WhatsApp within the last 24 h. */
  onWindowCheck (fn: (address: string) => Promise<boolean>): void {
    this.windowOpen = fn
  }

  supports (channel: Channel): boolean {
    return channel === 'sms' || channel === 'whatsapp' || channel === 'messenger' || channel === 'mms'
  }

  /**
   * The Messenger chat's one-click read receipt: the report a platform sends when the customer
   * opens the message, through the same entry point as every other report. Messenger messages are
   * delivered on their own but read only when someone clicks, so a `read` condition can be tried
   * both ways.
   */
  async reportRead (message: { id: string, providerMessageId: string | null }): Promise<void> {
    await this.emit({ messageId: message.id, channel: 'messenger' }, message.providerMessageId ?? '', 'read')
  }

  setMode (address: string, mode: SimulatedMode): void {
    if (mode === 'normal') this.modes.delete(address)
    else this.modes.set(address, mode)
    if (mode === 'off') return
    // Back on: what waited is delivered now. Made unreachable or failing instead: it never is.
    const waiting = this.held.get(address) ?? []
    this.held.delete(address)
    if (mode === 'normal') for (const { req, providerMessageId } of waiting) this.reportDelivery(req, providerMessageId)
  }

  getMode (address: string): SimulatedMode {
    return this.modes.get(address) ?? 'normal'
  }

  async send (req: OutboundRequest): Promise<SendOutcome> {
    const mode = this.getMode(req.to)
    if (mode === 'failing') {
      return { ok: false, failure: 'permanent', reason: 'The simulated number rejected the message', code: 'SIMULATED_REJECTION' }
    }
    // WhatsApp's own rule, played here so the window can be tried without an account: free text
    // more than 24 h after the customer's last message is refused (its error 470); a template is not.
    if (req.channel === 'whatsapp' && req.template == null && this.windowOpen !== null && !await this.windowOpen(req.to)) {
      return { ok: false, failure: 'permanent', reason: 'Simulated WhatsApp: more than 24 hours since the customer last wrote, free text is refused (error 470)', code: '470' }
    }
    // MessageBird's MMS API reaches US and Canadian numbers only: refused here as it refuses it.
    if (req.channel === 'mms') {
      const outside = mmsOutsideNorthAmerica(req.to)
      if (outside !== null) return outside
    }
    const providerMessageId = 'sim-' + randomUUID()
    if (mode === 'normal') this.reportDelivery(req, providerMessageId)
    if (mode === 'off') this.held.set(req.to, [...(this.held.get(req.to) ?? []), { req, providerMessageId }])
    return { ok: true, providerMessageId }
  }

  private reportDelivery (req: OutboundRequest, providerMessageId: string): void {
    this.later(() => this.emit(req, providerMessageId, 'delivered'))
    if (req.channel === 'whatsapp') this.later(() => this.emit(req, providerMessageId, 'read'), 2)
  }

  private later (fn: () => Promise<void>, factor = 1): void {
    const delay = this.opts.deliveryDelayMs * factor
    let settle: () => void = () => {}
    const report = { dueAt: Date.now() + delay, done: new Promise<void>((resolve) => { settle = resolve }) }
    const t = setTimeout(() => {
      this.timers.delete(t)
      fn().catch((err) => this.opts.onError?.(err)).finally(() => {
        this.pending.delete(report)
        settle()
      })
    }, delay)
    this.timers.set(t, settle)
    this.pending.add(report)
  }

  /**
   * Resolves once every report that is due by now has been applied (or the channel closed).
   * Reports held back by a delivery delay that has not passed yet are not waited for. Tests await
   * this instead of sleeping until the reports land.
   */
  async idle (): Promise<void> {
    for (;;) {
      const now = Date.now()
      const due = [...this.pending].filter((r) => r.dueAt <= now)
      if (due.length === 0) return
      await Promise.all(due.map(async (r) => await r.done))
    }
  }

  private async emit (req: Pick<OutboundRequest, 'messageId' | 'channel'>, providerMessageId: string, status: string): Promise<void> {
    if (this.report === null) return
    await this.report({
      provider: this.provider,
      reference: req.messageId,
      providerMessageId: providerMessageId === '' ? null : providerMessageId,
      rawStatus: status,
      statusAt: this.opts.clock.now().toISOString(),
      reason: status === 'delivered' ? 'successfully delivered' : null,
      errorCode: null,
      priceAmount: req.channel === 'sms' ? '0.0710' : null,
      priceCurrency: req.channel === 'sms' ? 'EUR' : null,
      segments: null,
      raw: { simulated: true, status }
    })
  }

  close (): void {
    for (const [t, settle] of this.timers) {
      clearTimeout(t)
      settle()
    }
    this.timers.clear()
    this.pending.clear()
    this.held.clear()
  }
}
