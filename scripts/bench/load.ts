import { fork, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import autocannon from 'autocannon'

/**
 * How every bench part runs the production server (add DATABASE_URL): the simulator channel in
 * production mode, reports at once, and the webhook limiter in the path (its cost is measured)
 * but never refusing the load generator.
 */
export const SERVICE_ENV = {
  PORT: '0',
  HOST: '127.0.0.1',
  NODE_ENV: 'production',
  LOG_LEVEL: 'warn',
  SMS_CHANNEL: 'simulator',
  ALLOW_SIMULATOR_IN_PRODUCTION: 'true',
  SIMULATOR_DELIVERY_DELAY_MS: '0',
  WEBHOOK_RATE_LIMIT_PER_MINUTE: '1000000',
  ALLOW_UNSIGNED_WEBHOOKS: 'true'
}

export interface LoadResult {
  requestsPerSec: number
  p50Ms: number
  p99Ms: number
  non2xx: number
  errors: number
  total2xx: number
}

/** Drives a webhook URL with form-encoded inbound SMS from `senders` rotating numbers, starting at +31612000000 + `firstSender`; `rate`: requests per second in all (default: as fast as it answers). */
export async function loadWebhook (url: string, opts: { seconds: number, connections: number, senders: number, tag: string, firstSender?: number, rate?: number, amount?: number }): Promise<LoadResult> {
  let n = 0
  const result = await autocannon({
    url,
    method: 'POST',
    connections: opts.connections,
    // `amount`: exactly that many requests (one per sender when it equals `senders`), however long they take.
    ...(opts.amount !== undefined ? { amount: opts.amount } : { duration: opts.seconds }),
    ...(opts.rate !== undefined ? { overallRate: opts.rate } : {}),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    requests: [{
      setupRequest: (req) => {
        const i = n++
        const originator = String(31612000000 + (opts.firstSender ?? 0) + (i % opts.senders))
        return { ...req, body: `originator=${originator}&payload=Is+my+order+ready%3F+${i}&receiver=3197010260000&id=${opts.tag}-${i}` }
      }
    }]
  })
  return {
    requestsPerSec: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    total2xx: result['2xx']
  }
}

/** Starts a compiled script as a child process and resolves once it reports it is listening. */
export async function startChild (script: string, env: Record<string, string>): Promise<{ child: ChildProcess, url: string }> {
  const child = fork(script, [], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { ready: string }).ready))
    child.once('exit', (code) => reject(new Error(`${script} exited with ${String(code)} before it was ready`)))
  })
  return { child, url }
}

/** Peak resident memory of a process, from /proc (Linux). */
export function peakRssMb (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return Math.round(kb / 1024)
}

/** Resident memory of a process now, from /proc (Linux). */
export function currentRssKb (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
}

export async function stopChild (child: ChildProcess): Promise<void> {
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
  })
}
