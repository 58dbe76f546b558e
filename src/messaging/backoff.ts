/**
 * Delay before retry number `attempt` (1 for the first retry): exponential from `baseMs`, capped
 * at `maxMs`, with "equal jitter" (half fixed, half random) so that retries held up by one outage
 * spread out instead of returning at once. Used for outbox sends and status callbacks.
 */
export function backoffMs (attempt: number, limits: { baseMs: number, maxMs: number }, random: () => number = Math.random): number {
  const exp = Math.min(limits.maxMs, limits.baseMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(exp / 2 + random() * exp / 2)
}
