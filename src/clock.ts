/** Time is injected so tests can move it (failover deadlines, backoff, session expiry). */
export interface Clock {
  now: () => Date
}

export const systemClock: Clock = { now: () => new Date() }

export function iso (d: Date): string {
  return d.toISOString()
}

export function addMs (d: Date, ms: number): Date {
  return new Date(d.getTime() + ms)
}
