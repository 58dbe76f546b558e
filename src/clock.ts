/** Time is injected so tests can move it (failover deadlines, backoff, session expiry). */
export interface Clock {
  now: () => Date
}

export const systemClock: Clock = { now: () => new Date() }
