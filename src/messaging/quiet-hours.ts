import { getCountry } from 'countries-and-timezones'
import parsePhoneNumber from 'libphonenumber-js/max'
import { DateTime } from 'luxon'
import type { QuietWindow } from '../config.js'

/** The zone a recipient's local time is judged in, and whether their number's country decided it. */
export interface RecipientZone { zone: string, fromNumber: boolean }

/**
 * Quiet hours (QUIET_HOURS): a daily window of the recipient's local time in which held messages
 * wait. The recipient's zone is their number's country's, when that country keeps one zone
 * (countries-and-timezones lists each country's IANA zones); otherwise, as for +1 numbers, which
 * span many zones, the configured fallback zone (QUIET_HOURS_TIMEZONE).
 */
export class QuietHours {
  constructor (readonly window: QuietWindow | null, readonly fallbackZone: string) {}

  zoneOf (address: string): RecipientZone {
    const country = parsePhoneNumber(address)?.country
    const zones = country === undefined ? [] : getCountry(country)?.timezones ?? []
    return zones.length === 1 ? { zone: zones[0], fromNumber: true } : { zone: this.fallbackZone, fromNumber: false }
  }

  /** When the quiet hours around `at` end for `address`, or null when `at` is outside them (or there are none). */
  releaseAt (at: Date, address: string): Date | null {
    const w = this.window
    if (w === null) return null
    const local = DateTime.fromJSDate(at, { zone: this.zoneOf(address).zone })
    const minute = local.hour * 60 + local.minute
    const endToday = local.set({ hour: Math.floor(w.end / 60), minute: w.end % 60, second: 0, millisecond: 0 })
    if (w.start < w.end) return minute >= w.start && minute < w.end ? endToday.toJSDate() : null
    // The window crosses midnight: before its end it ends today, after its start it ends tomorrow.
    if (minute < w.end) return endToday.toJSDate()
    if (minute >= w.start) return endToday.plus({ days: 1 }).toJSDate()
    return null
  }

  /** `at` as the recipient's wall clock, e.g. "08:00" (with the day when it is not `now`'s day there). */
  localTime (at: Date, address: string, now: Date): string {
    const zone = this.zoneOf(address).zone
    const local = DateTime.fromJSDate(at, { zone })
    const sameDay = local.hasSame(DateTime.fromJSDate(now, { zone }), 'day')
    return sameDay ? local.toFormat('HH:mm') : local.toFormat('HH:mm, ccc d LLL')
  }

  /** The window as configured, e.g. "21:00–08:00". */
  describe (): string {
    const w = this.window
    if (w === null) return 'none'
    const hhmm = (m: number): string => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`
    return `${hhmm(w.start)}–${hhmm(w.end)}`
  }
}
