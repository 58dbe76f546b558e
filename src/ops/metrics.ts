import { createHash, timingSafeEqual } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { Clock } from '../clock.js'
import type { Db } from '../db/database.js'
import type { Channel, Message, MessageStatus } from '../db/schema.js'
import type { ChannelAdapter, SendOutcome } from '../messaging/channel.js'
import type { FailoverService } from '../messaging/failover.js'
import type { StatusService } from '../messaging/status-service.js'
import type { TicketService } from '../tickets/ticket-service.js'
import { outboxBacklog } from '../messaging/outbox-repository.js'
import { quietBackgroundRoutes } from './logging.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's Prometheus metrics (its own registry). */
    metrics: Metrics
  }
}

const CHANNELS: readonly Channel[] = ['sms', 'whatsapp']
/** Where an outbound message's story ends (`delivered` may still become `read`). */
const FINAL_STATUSES: readonly MessageStatus[] = ['delivered', 'read', 'failed', 'expired', 'blocked']

// Process metrics (memory, CPU, event-loop lag, GC) describe the process, not an app: one registry
// for the process, made on first use. prom-client's event-loop monitor is never switched off, so
// one per app would pile up in a test run that builds hundreds of apps.
let processRegistry: Registry | null = null
function processMetrics (): Registry {
  if (processRegistry === null) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

/**
 * Prometheus metrics for one app. Each app has its own registry (never prom-client's global one),
 * so tests that build many apps in one process do not collide. Counters that live inside a
 * transaction (statuses, handovers) count when the change is made; the rare rolled-back change
 * is counted anyway.
 */
export class Metrics {
  readonly registry = new Registry()
  private readonly inbound: Counter<'channel'>
  private readonly outbound: Counter<'channel' | 'status'>
  private readonly outboxRows: Gauge<'state'>
  private readonly outboxOldestDue: Gauge
  private readonly sendSeconds: Histogram<'channel' | 'outcome'>
  private readonly webhookSeconds: Histogram<'route' | 'method' | 'status_code'>
  private readonly handovers: Counter
  private readonly signInFailures: Counter

  constructor (private readonly deps: { db: Db, clock: Clock }) {
    const registers = [this.registry]
    this.inbound = new Counter({ name: 'textdesk_inbound_messages_total', help: 'Inbound messages stored (provider retries of the same message not counted).', labelNames: ['channel'], registers })
    this.outbound = new Counter({ name: 'textdesk_outbound_messages_total', help: 'Outbound messages reaching a final status (a delivered message that is then read counts under both).', labelNames: ['channel', 'status'], registers })
    this.outboxRows = new Gauge({ name: 'textdesk_outbox_rows', help: 'Outbox rows: due now, or scheduled for later (backoff, failover deadlines, sends in flight).', labelNames: ['state'], registers })
    this.outboxOldestDue = new Gauge({ name: 'textdesk_outbox_oldest_due_age_seconds', help: 'How long the oldest due outbox row has been waiting (0 when none is due).', registers })
    this.sendSeconds = new Histogram({ name: 'textdesk_provider_send_duration_seconds', help: 'Time for one send request to the provider, by channel and outcome (ok, transient, permanent, ambiguous, error).', labelNames: ['channel', 'outcome'], buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers })
    this.webhookSeconds = new Histogram({ name: 'textdesk_webhook_duration_seconds', help: 'Time to answer a provider webhook, from request to response, by route.', labelNames: ['route', 'method', 'status_code'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers })
    this.handovers = new Counter({ name: 'textdesk_failover_handovers_total', help: 'Failover steps handed over to the next step (the step failed or its condition expired).', registers })
    this.signInFailures = new Counter({ name: 'textdesk_signin_failures_total', help: 'Sign-ins refused for a wrong email address or password.', registers })
    // Known label values start at zero, so rate() sees the first increment.
    for (const channel of CHANNELS) {
      this.inbound.inc({ channel }, 0)
      for (const status of FINAL_STATUSES) this.outbound.inc({ channel, status }, 0)
    }
    processMetrics()
  }

  /** Listens to the services whose events are counted. */
  attach (parts: { status: StatusService, failover: FailoverService, tickets: TicketService }): void {
    parts.status.addListener(async (_trx, message, status) => { this.countStatus(message, status) })
    parts.failover.onHandover(() => { this.countHandover() })
    parts.tickets.onInbound((channel) => { this.countInbound(channel) })
  }

  countInbound (channel: Channel): void {
    this.inbound.inc({ channel })
  }

  /** A StatusService listener. */
  countStatus (message: Pick<Message, 'direction' | 'channel'>, status: MessageStatus): void {
    if (message.direction === 'outbound' && FINAL_STATUSES.includes(status)) this.outbound.inc({ channel: message.channel, status })
  }

  countHandover (): void {
    this.handovers.inc()
  }

  countFailedSignIn (): void {
    this.signInFailures.inc()
  }

  /** The same adapter, with each send timed by channel and outcome. */
  timeSends (adapter: ChannelAdapter): ChannelAdapter {
    const histogram = this.sendSeconds
    return {
      provider: adapter.provider,
      supports: (channel) => adapter.supports(channel),
      close: () => adapter.close?.(),
      send: async (req) => {
        const started = performance.now()
        let outcome: SendOutcome | null = null
        try {
          outcome = await adapter.send(req)
          return outcome
        } finally {
          const label = outcome === null ? 'error' : outcome.ok ? 'ok' : outcome.failure
          histogram.observe({ channel: req.channel, outcome: label }, (performance.now() - started) / 1000)
        }
      }
    }
  }

  /** An onResponse hook for the webhook scope. */
  readonly timeWebhook = (req: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    this.webhookSeconds.observe({ route: req.routeOptions.url ?? 'unknown', method: req.method, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000)
    done()
  }

  readonly contentType = this.registry.contentType

  /** The exposition text: outbox gauges are read from the database now, then this app's and the process's metrics. */
  async render (): Promise<string> {
    const now = this.deps.clock.now()
    const backlog = await outboxBacklog(this.deps.db, now.toISOString())
    this.outboxRows.set({ state: 'due' }, backlog.due)
    this.outboxRows.set({ state: 'scheduled' }, backlog.scheduled)
    this.outboxOldestDue.set(backlog.oldestDueRunAt === null ? 0 : Math.max(0, now.getTime() - Date.parse(backlog.oldestDueRunAt)) / 1000)
    return (await this.registry.metrics()) + (await processMetrics().metrics())
  }
}

/**
 * `GET /metrics` in `scope`. With a token, only `Authorization: Bearer <token>` gets an answer;
 * without one, the caller serves this scope only where it is safe (a separate listener).
 */
export async function metricsRoute (scope: FastifyInstance, deps: { metrics: Metrics, token: string | null }): Promise<void> {
  const expected = deps.token === null ? null : digest(deps.token)
  scope.get('/metrics', async (req, reply) => {
    reply.header('cache-control', 'no-store')
    if (expected !== null) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')
      if (m === null || !timingSafeEqual(digest(m[1]), expected)) {
        return await reply.code(401).header('www-authenticate', 'Bearer realm="metrics"')
          .send({ statusCode: 401, error: 'UNAUTHENTICATED', message: 'Metrics need Authorization: Bearer <METRICS_TOKEN>.' })
      }
    }
    const body = await deps.metrics.render()
    return await reply.type(deps.metrics.contentType).send(body)
  })
}

/**
 * The listener for METRICS_PORT: `/metrics` of `app` and nothing else, logging through app's
 * logger. A reverse proxy in front of the main port never forwards here.
 */
export async function metricsServer (app: FastifyInstance, token: string | null): Promise<FastifyInstance> {
  const server = Fastify({ loggerInstance: app.log.child({ module: 'metrics' }) })
  quietBackgroundRoutes(server)
  await metricsRoute(server, { metrics: app.metrics, token })
  return server
}

// Hashing first gives both sides the same length, so the comparison is constant-time for any input.
function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}
