import Handlebars from 'handlebars'
import type { Channel } from '../db/schema.js'
import { addressLabel } from '../messaging/address.js'
import { CHANNEL_LABELS } from '../messaging/channel.js'
import { snippetHtml } from './highlight.js'

/** A private Handlebars instance with the few helpers the views use. All SMS text goes through {{ }} (escaped). */
export function createViewEngine (): typeof Handlebars {
  const hbs = Handlebars.create()
  hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b)
  hbs.registerHelper('time', (iso: unknown) => typeof iso === 'string' ? formatTime(iso) : '')
  hbs.registerHelper('ago', (iso: unknown) => typeof iso === 'string' ? ago(iso, Date.now()) : '')
  hbs.registerHelper('duration', (seconds: unknown) => typeof seconds === 'number' ? duration(seconds) : '')
  // An address with its channel: "SMS +31612345678", "Messenger 6011234567890123".
  hbs.registerHelper('channelAddress', (channel: unknown, address: unknown) => typeof address === 'string' ? channelAddress(channel as Channel, address) : '')
  // A search snippet: escaped, then its match markers turned into <mark> (highlight.ts).
  hbs.registerHelper('highlight', (text: unknown) => new hbs.SafeString(typeof text === 'string' ? snippetHtml(text) : ''))
  return hbs
}

export function formatTime (iso: string): string {
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return ''
  return d.toISOString().slice(0, 16).replace('T', ' ') + ' UTC'
}

export function ago (iso: string, nowMs: number): string {
  return duration((nowMs - Date.parse(iso)) / 1000)
}

/** 42s, 5m, 3h, 2d: the list's waiting time. */
export function duration (seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  if (s < 86400) return `${Math.floor(s / 3600)}h`
  return `${Math.floor(s / 86400)}d`
}

export function channelAddress (channel: Channel, address: string): string {
  const label = CHANNEL_LABELS[channel] ?? channel
  return `${label} ${addressLabel(address).replace(/^Messenger /, '')}`
}
