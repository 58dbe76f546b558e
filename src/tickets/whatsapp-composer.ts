import type { Clock } from '../clock.js'
import type { Db } from '../db/database.js'
import type { Channel } from '../db/schema.js'
import { conflict, invalid, notFound } from '../errors.js'
import type { EventBus } from '../events/bus.js'
import { providerRecipient } from '../messaging/address.js'
import { CHANNEL_LABELS, TEXT_LIMITS } from '../messaging/channel.js'
import { optOutBlock, type OutboundQueue } from '../messaging/outbound.js'
import type { TemplateService } from '../templates/template-service.js'
import { ticketRef } from './conversations.js'
import * as repo from './ticket-repository.js'
import { chooseTarget, describeWindow, replyTargets, whatsappWindows, windowOf, type ReplyTarget } from './whatsapp-window.js'
import { lastInboundOnTicket } from './window-repository.js'
import { mmsReachable } from './reply-image.js'

export interface TemplateSend { templateId: string, params: string[], to?: string }

/**
 * The reply composer's channel side: where a reply can go (the contact's addresses), which one is
 * chosen first (where the customer last wrote from), each channel's limit, the WhatsApp window,
 * and the template message that reaches a customer outside it.
 */
export class WhatsAppComposer {
  private wakeOutbox: () => void = () => {}

  constructor (private readonly deps: { db: Db, clock: Clock, outbound: OutboundQueue, events: EventBus, templates: TemplateService, mmsOffered?: boolean }) {}

  onOutboxWork (fn: () => void): void {
    this.wakeOutbox = fn
  }

  /** What the ticket page's composer shows. */
  async view (ticketId: number) {
    const { db, clock } = this.deps
    const ticket = await repo.findTicket(db, ticketId)
    if (ticket === undefined) throw notFound(`Ticket ${ticketRef(ticketId)}`)
    const now = clock.now()
    const [targets, windows, last, templates] = await Promise.all([
      replyTargets(db, ticket.contact_id),
      whatsappWindows(db, ticket.contact_id, now),
      lastInboundOnTicket(db, ticketId),
      this.deps.templates.list()
    ])
    const lastWrote = last === undefined ? -1 : targets.findIndex((t) => t.channel === last.channel && t.address === last.from_address)
    const chosen = lastWrote >= 0 ? lastWrote : 0
    const options = targets.map((t, i) => {
      const w = t.channel === 'whatsapp' ? windows.get(t.address) ?? windowOf(t.address, null, now) : null
      return {
        value: `${t.channel}:${t.address}`,
        channel: t.channel,
        label: `${CHANNEL_LABELS[t.channel]} ${providerRecipient(t.address)}`,
        channelLabel: CHANNEL_LABELS[t.channel],
        // As people see it: a Messenger customer's page-scoped id without the registry's prefix.
        address: providerRecipient(t.address),
        limit: TEXT_LIMITS[t.channel],
        selected: i === chosen,
        windowOpen: w === null ? null : w.open,
        // "Attach an image (MMS)" is offered for this address (reply-image.ts).
        mms: this.deps.mmsOffered === true && mmsReachable(t.channel, t.address),
        windowText: w === null ? null : describeWindow(w, now),
        closesAt: w?.closesAt ?? null
      }
    })
    const selected = options[chosen]
    const sms = targets.find((t) => t.channel === 'sms')
    const whatsapp = options.filter((o) => o.channel === 'whatsapp')
    return {
      options,
      selected,
      several: options.length > 1,
      mms: options.some((o) => o.mms),
      // Offered while the chosen address is WhatsApp with its window closed.
      closed: selected?.windowOpen === false,
      smsInstead: sms === undefined ? null : `sms:${sms.address}`,
      templates: whatsapp.length === 0 ? [] : templates,
      templateTargets: whatsapp.map((o) => ({ value: o.value, label: o.label, selected: o.value === selected?.value }))
    }
  }

  /**
   * Sends an approved template to one of the contact's WhatsApp addresses: allowed whether the
   * window is open or not, queued through the outbox in one transaction like a reply.
   */
  async sendTemplate (ticketId: number, agentId: number, input: TemplateSend): Promise<{ messageId: string }> {
    const id = /^[1-9]\d{0,8}$/.test(input.templateId) ? Number(input.templateId) : 0
    const { template, hsm } = await this.deps.templates.fill(id, input.params)
    const result = await this.deps.db.transaction().execute(async (trx) => {
      const ticket = await repo.findTicket(trx, ticketId)
      if (ticket === undefined) throw notFound(`Ticket ${ticketRef(ticketId)}`)
      if (ticket.merged_into !== null) throw conflict(`Ticket #${ticketRef(ticketId)} was merged into #${ticketRef(ticket.merged_into)}; nothing was sent. Continue there.`)
      if (ticket.status === 'closed') throw conflict(`Ticket ${ticketRef(ticketId)} is closed; reopen it to send a template.`)
      let target: ReplyTarget
      if (input.to === undefined || input.to === '') {
        const first = (await replyTargets(trx, ticket.contact_id)).find((t) => t.channel === 'whatsapp')
        if (first === undefined) throw noWhatsApp()
        target = first
      } else {
        target = await chooseTarget(trx, ticket.contact_id, input.to)
        if (target.channel !== 'whatsapp') throw noWhatsApp(target.channel)
      }
      const now = this.deps.clock.now().toISOString()
      const body = `WhatsApp template ${template.name} (${template.language})${hsm.params.length > 0 ? ': ' + hsm.params.join(' · ') : ''}`
      return await this.deps.outbound.queue(trx, {
        ticketId, kind: 'reply', channel: 'whatsapp', to: target.address, body, template: hsm, agentId, blockedReason: optOutBlock(ticket.opted_out_at)
      }, now)
    })
    await this.deps.events.publish({ ticketId, change: 'message' })
    this.wakeOutbox()
    return { messageId: result.messageId }
  }
}

function noWhatsApp (channel?: Channel) {
  return invalid(channel === undefined
    ? 'This customer has no WhatsApp address: a template goes over WhatsApp only. Add their WhatsApp number under Addresses, or send an SMS. Nothing was sent.'
    : `A template goes over WhatsApp only; ${CHANNEL_LABELS[channel]} is not WhatsApp. Pick their WhatsApp number. Nothing was sent.`, [{ field: 'to', message: 'must be a WhatsApp address' }])
}
