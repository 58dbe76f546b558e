import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { createDatabase } from '../../src/db/database.js'
import { migrateToLatest } from '../../src/db/migrate.js'
import { countDispatchesByStatus, countStepsWithDeadline, listHandovers } from '../../src/messaging/dispatch-repository.js'

export interface FailoverBench {
  workflows: number
  /** How long after its deadline each step-1 → step-2 handover started. */
  handoverLatenessMs: { p50: number, p99: number, max: number }
  /** First-step sends per second while the worker drained the 1,000 queued sends. */
  drainRatePerSec: number
  wallMs: number
}

const WORKFLOWS = 1000
// The smallest expiry the API accepts: the run is real time, with the real clock.
const EXPIRY_SECONDS = 15
const TIMEOUT_MS = 60_000

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)]
}

async function until (what: string, deadline: number, check: () => Promise<boolean>): Promise<void> {
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`failover benchmark: timed out waiting for ${what}`)
    await sleep(100)
  }
}

/**
 * 1,000 concurrent two-step failover workflows through POST /api/v1/dispatch on a temporary
 * database, with the simulator channel, the real clock and the worker running as in production.
 * Every first step goes to an `unreachable` number, so every workflow hands over at its deadline;
 * lateness is the handover's start minus that deadline, both as recorded in the database.
 */
export async function benchFailover (): Promise<FailoverBench> {
  const started = Date.now()
  const dir = mkdtempSync(join(tmpdir(), 'textdesk-failover-bench-'))
  const config = loadConfig({ NODE_ENV: 'production', LOG_LEVEL: 'silent', DATABASE_URL: `sqlite:${join(dir, 'failover.sqlite')}`, SMS_CHANNEL: 'simulator', ALLOW_SIMULATOR_IN_PRODUCTION: 'true', SIMULATOR_DELIVERY_DELAY_MS: '0', API_RATE_LIMIT_PER_MINUTE: '1000000' })
  const db = createDatabase(config)
  await migrateToLatest(db)
  const app = await buildApp({ config, db })
  try {
    const { services } = app
    const { key } = await services.apiKeys.create('bench')
    const first = (i: number): string => '+3161200' + String(i).padStart(4, '0')
    const second = (i: number): string => '+3161300' + String(i).padStart(4, '0')
    for (let i = 0; i < WORKFLOWS; i++) services.simulator?.setMode(first(i), 'unreachable')

    const answers = await Promise.all(Array.from({ length: WORKFLOWS }, async (_, i) => await app.inject({
      method: 'POST',
      url: '/api/v1/dispatch',
      headers: { authorization: `Bearer ${key}` },
      payload: {
        template: 'failover',
        workflow: [
          { to: { type: 'sms', number: first(i) }, message: { content: { type: 'text', text: `Order ${i} is ready for collection` } }, failover: { condition_status: 'delivered', expiry_time: EXPIRY_SECONDS } },
          { to: { type: 'sms', number: second(i) }, message: { content: { type: 'text', text: `Order ${i} is ready for collection` } } }
        ]
      }
    })))
    const refused = answers.filter((a) => a.statusCode !== 202)
    if (refused.length > 0) throw new Error(`failover benchmark: ${refused.length} dispatches refused, e.g. ${refused[0].statusCode} ${refused[0].body}`)

    const limit = Date.now() + TIMEOUT_MS
    const drainStart = Date.now()
    services.worker.start()
    await until('the first steps to be sent', limit, async () => await countStepsWithDeadline(db, 0) >= WORKFLOWS)
    const drainRatePerSec = WORKFLOWS / ((Date.now() - drainStart) / 1000)
    await until('every dispatch to complete', limit, async () => (await countDispatchesByStatus(db)).completed >= WORKFLOWS)
    await services.worker.stop()

    const lateness = (await listHandovers(db))
      .map((h) => Date.parse(h.started_at as string) - Date.parse(h.deadline_at as string))
      .sort((a, b) => a - b)
    if (lateness.length !== WORKFLOWS) throw new Error(`failover benchmark: ${lateness.length} handovers for ${WORKFLOWS} workflows`)
    return {
      workflows: WORKFLOWS,
      handoverLatenessMs: { p50: percentile(lateness, 50), p99: percentile(lateness, 99), max: lateness[lateness.length - 1] },
      drainRatePerSec: Math.round(drainRatePerSec),
      wallMs: Date.now() - started
    }
  } finally {
    await app.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
