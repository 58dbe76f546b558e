import t from 'tap'
import { backoffMs } from '../../src/messaging/backoff.js'

const limits = { baseMs: 1000, maxMs: 60_000 }

t.test('exponential from the base, half fixed and half random ("equal jitter"), capped at the maximum', async (t) => {
  const low = (attempt: number): number => backoffMs(attempt, limits, () => 0)
  const high = (attempt: number): number => backoffMs(attempt, limits, () => 1)
  t.same([1, 2, 3, 4].map(low), [500, 1000, 2000, 4000], 'the fixed half doubles with each attempt')
  t.same([1, 2, 3, 4].map(high), [1000, 2000, 4000, 8000], 'with the random half at its largest, the full delay')
  t.equal(high(20), 60_000, 'never past the maximum')
  t.equal(low(20), 30_000)
  t.equal(backoffMs(3, limits, () => 0.5), 3000, 'in between')
  t.equal(low(0), 500, 'an attempt below one counts as the first')
})
