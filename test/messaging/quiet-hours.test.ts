import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'
import { QuietHours } from '../../src/messaging/quiet-hours.js'

// Quiet hours as configured (QUIET_HOURS, QUIET_HOURS_TIMEZONE) and as judged for a recipient.

const configError = (env: Record<string, string>): string => {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err.message
    throw err
  }
  return ''
}

t.test('QUIET_HOURS: empty is off; a window is read in minutes; a bad value is a clear start-up error', async (t) => {
  t.same(loadConfig({}).quietHours, { window: null, timezone: 'UTC' })
  t.same(loadConfig({ QUIET_HOURS: '' }).quietHours.window, null)
  t.same(loadConfig({ QUIET_HOURS: '21:00-08:00', QUIET_HOURS_TIMEZONE: 'Europe/London' }).quietHours, { window: { start: 1260, end: 480 }, timezone: 'Europe/London' })
  t.same(loadConfig({ QUIET_HOURS: '9:30 - 17:45' }).quietHours.window, { start: 570, end: 1065 })
  for (const bad of ['21-08', '25:00-08:00', '21:00-08:60', 'evenings', '21:00']) {
    t.match(configError({ QUIET_HOURS: bad }), new RegExp(`QUIET_HOURS must be a daily window of two 24-hour times, start-end, e\\.g\\. 21:00-08:00 \\(leave it empty for none; got "${bad}"\\)`), bad)
  }
  t.match(configError({ QUIET_HOURS: '08:00-08:00' }), /QUIET_HOURS must start and end at different times/)
  t.match(configError({ QUIET_HOURS_TIMEZONE: 'Europe/Atlantis' }), /QUIET_HOURS_TIMEZONE must be an IANA time zone, e\.g\. Europe\/Amsterdam or UTC \(got "Europe\/Atlantis"\)/)
})

t.test('the recipient\'s zone comes from their number\'s country when it has one zone', async (t) => {
  const q = new QuietHours({ start: 21 * 60, end: 8 * 60 }, 'America/Chicago')
  t.match(q.zoneOf('+31612345678'), { fromNumber: true, zone: /^Europe\// }, 'the Netherlands')
  t.same(q.zoneOf('+819012345678'), { zone: 'Asia/Tokyo', fromNumber: true }, 'Japan')
  t.same(q.zoneOf('+12125550123'), { zone: 'America/Chicago', fromNumber: false }, 'the US has several zones: the configured one')
  t.same(q.zoneOf('+61412345678'), { zone: 'America/Chicago', fromNumber: false }, 'so has Australia')
  t.same(q.zoneOf('not a number'), { zone: 'America/Chicago', fromNumber: false })
})

t.test('a window across midnight holds on both sides of it, and ends at its end in the recipient\'s zone', async (t) => {
  const q = new QuietHours({ start: 21 * 60, end: 8 * 60 }, 'UTC')
  const jp = '+819012345678' // Asia/Tokyo, UTC+9, no daylight saving
  const release = (iso: string) => q.releaseAt(new Date(iso), jp)?.toISOString() ?? null
  t.equal(release('2026-01-01T11:59:00Z'), null, '20:59 there: not yet')
  t.equal(release('2026-01-01T12:00:00Z'), '2026-01-01T23:00:00.000Z', '21:00 there: until 08:00 the next morning')
  t.equal(release('2026-01-01T14:30:00Z'), '2026-01-01T23:00:00.000Z', '23:30, before midnight')
  t.equal(release('2026-01-01T16:00:00Z'), '2026-01-01T23:00:00.000Z', '01:00, after midnight: until 08:00 the same morning')
  t.equal(release('2026-01-01T23:00:00Z'), null, '08:00 there: over')
  const day = new QuietHours({ start: 12 * 60, end: 13 * 60 + 30 }, 'UTC')
  t.equal(day.releaseAt(new Date('2026-01-01T12:10:00Z'), '+12125550123')?.toISOString(), '2026-01-01T13:30:00.000Z', 'a window within one day')
  t.equal(day.releaseAt(new Date('2026-01-01T13:30:00Z'), '+12125550123'), null)
  t.equal(new QuietHours(null, 'UTC').releaseAt(new Date('2026-01-01T23:00:00Z'), jp), null, 'off')
})

t.test('daylight saving: the end is 08:00 local on the day it happens', async (t) => {
  const q = new QuietHours({ start: 21 * 60, end: 8 * 60 }, 'Europe/London')
  // The UK moves to BST on 2026-03-29 at 01:00 UTC: 08:00 that morning is 07:00 UTC.
  t.equal(q.releaseAt(new Date('2026-03-28T22:00:00Z'), '+12125550123')?.toISOString(), '2026-03-29T07:00:00.000Z')
})
