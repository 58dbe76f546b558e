import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import { engineOf, type Db } from '../db/database.js'
import { pendingMigrations } from '../db/migrate.js'
import type { OutboxWorker } from '../messaging/outbox-worker.js'
import { pingDatabase } from './ops-repository.js'

export interface HealthDeps {
  db: Db
  worker: Pick<OutboxWorker, 'heartbeat'>
  clock: Clock
  config: Pick<Config, 'outbox' | 'messagebird' | 'statusCallback'>
  log: FastifyBaseLogger
  /** Real time the database may take to answer before readiness fails. */
  databaseTimeoutMs?: number
}

type Check = { ok: true, [detail: string]: unknown } | { ok: false, message: string }
type CheckName = 'database' | 'migrations' | 'outbox_worker'

// A load balancer's health check usually gives up after 2 to 5 s; answer before it does.
const DATABASE_TIMEOUT_MS = 2000

/**
 * How long the outbox worker may go without polling or finishing an item before it counts as
 * stuck: a few poll intervals, plus the longest single request an item may wait for.
 */
export function workerStaleAfterMs (config: HealthDeps['config']): number {
  return 3 * config.outbox.pollIntervalMs + Math.max(config.messagebird.timeoutMs, config.statusCallback.timeoutMs)
}

/**
 * `GET /healthz` (liveness: the process answers; no session, no database) and `GET /readyz`
 * (readiness: the database answers, every migration is applied, the outbox worker is alive).
 * Both are for load balancers and orchestrators: never cached, never rate-limited.
 */
export async function healthRoutes (scope: FastifyInstance, deps: HealthDeps): Promise<void> {
  const staleAfterMs = workerStaleAfterMs(deps.config)
  let wasReady: boolean | null = null

  scope.get('/healthz', async (_req, reply) => {
    return await reply.header('cache-control', 'no-store').send({ status: 'ok' })
  })

  scope.get('/readyz', async (_req, reply) => {
    // Read on each probe, so a test can tighten the limit for one phase only.
    const timeoutMs = deps.databaseTimeoutMs ?? DATABASE_TIMEOUT_MS
    const checks: Record<CheckName, Check> = {
      database: withDetail(await bounded(async () => { await pingDatabase(deps.db) }, timeoutMs), { engine: engineOf(deps.db) }),
      migrations: await bounded(async () => {
        const pending = await pendingMigrations(deps.db)
        if (pending.length > 0) {
          throw new Error(`${pending.length} migration${pending.length === 1 ? '' : 's'} not applied (${pending.join(', ')}): run npm run init-db, or restart the service, which applies them`)
        }
      }, timeoutMs),
      outbox_worker: worker(deps, staleAfterMs)
    }
    const failed = (Object.keys(checks) as CheckName[]).filter((name) => !checks[name].ok)
    const ready = failed.length === 0
    // The probe itself logs at debug level; a change of state is worth a line at any level.
    if (wasReady !== ready) {
      if (!ready) deps.log.warn({ failed, checks }, 'not ready: %s', failed.join(', '))
      else if (wasReady === false) deps.log.info('ready again')
      wasReady = ready
    }
    reply.header('cache-control', 'no-store').code(ready ? 200 : 503)
    return await reply.send(ready ? { status: 'ready', checks } : { status: 'not_ready', failed, checks })
  })
}

/** Which engine answered (sqlite or postgres), shown on a passing check. */
function withDetail (check: Check, detail: Record<string, unknown>): Check {
  return check.ok ? { ...detail, ...check } : check
}

function worker (deps: HealthDeps, staleAfterMs: number): Check {
  const beat = deps.worker.heartbeat()
  if (!beat.running || beat.lastBeatAt === null) return { ok: false, message: 'The outbox worker is not running, so nothing queued is sent' }
  const ageMs = deps.clock.now().getTime() - beat.lastBeatAt
  if (ageMs > staleAfterMs) {
    return { ok: false, message: `The outbox worker has not polled or finished a send for ${seconds(ageMs)} s (limit ${seconds(staleAfterMs)} s): it looks stuck` }
  }
  return { ok: true, seconds_since_poll: seconds(Math.max(0, ageMs)) }
}

async function bounded (fn: () => Promise<void>, timeoutMs: number): Promise<Check> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<Check>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, message: `The database did not answer within ${timeoutMs} ms` }), timeoutMs)
  })
  const run = fn().then((): Check => ({ ok: true }), (err: unknown): Check => ({ ok: false, message: (err as Error)?.message ?? String(err) }))
  try {
    return await Promise.race([run, timeout])
  } finally {
    clearTimeout(timer)
  }
}

function seconds (ms: number): number {
  return Math.round(ms / 100) / 10
}
