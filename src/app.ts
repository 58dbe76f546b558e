import { takeLiveCursor } from './inbox/render.js'
import formbody from '@fastify/formbody'
import view from '@fastify/view'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { ApiKeyService } from './api/api-keys.js'
import { apiRoutes } from './api/api-routes.js'
import { NotificationService } from './api/notification-service.js'
import { StatusCallbacks } from './api/status-callbacks.js'
import { systemClock, type Clock } from './clock.js'
import { AgentService } from './auth/agent-service.js'
import { CannedReplyService } from './canned/canned-service.js'
import { agentAuth } from './auth/auth-routes.js'
import { FirstRunSetup } from './auth/first-run.js'
import { HashGate } from './auth/hash-gate.js'
import { LoginThrottle } from './auth/login-throttle.js'
import { SessionService } from './auth/session-service.js'
import { WebhookReplayGuard } from './auth/webhook-replay-guard.js'
import type { Config } from './config.js'
import { createDatabase, type Db } from './db/database.js'
import { errorBody } from './errors.js'
import type { EventBus } from './events/bus.js'
import { InProcessEventBus } from './events/in-process.js'
import { PostgresEventBus } from './events/postgres.js'
import { InProcessPresenceBoard } from './events/in-process-presence.js'
import { liveRoutes, type LiveRoutesDeps } from './events/live-routes.js'
import type { PresenceBoard } from './events/presence.js'
import { limitJsonBodies } from './http/json-body.js'
import { refuseNulCharacters } from './http/text-input.js'
import { maskPhoneNumbers, requestWithoutQuery } from './http/log-privacy.js'
import { limitBodies, limitRate, machineFacing, notFound, securityHeaders } from './http/security.js'
import { inboxRoutes } from './inbox/inbox-routes.js'
import { SearchService } from './inbox/search-service.js'
import { staticAssets } from './inbox/assets.js'
import { createViewEngine } from './inbox/view-engine.js'
import type { ChannelAdapter } from './messaging/channel.js'
import { FailoverService } from './messaging/failover.js'
import { MessageBirdChannel } from './messaging/messagebird-channel.js'
import { OutboundQueue } from './messaging/outbound.js'
import { OutboxWorker } from './messaging/outbox-worker.js'
import { QuietHours } from './messaging/quiet-hours.js'
import type { SenderDirectory } from './messaging/senders.js'
import { ScheduledReplies } from './tickets/scheduled-replies.js'
import { SimulatorChannel } from './messaging/simulator-channel.js'
import { StatusService } from './messaging/status-service.js'
import { VIEWS_DIR } from './paths.js'
import { simulatorRoutes } from './simulator/simulator-routes.js'
import { messengerSimulatorRoutes } from './simulator/messenger-routes.js'
import { TemplateService } from './templates/template-service.js'
import { WhatsAppComposer } from './tickets/whatsapp-composer.js'
import { ageWhatsAppWindow, windowForAddress } from './tickets/whatsapp-window.js'
import { ContactService } from './tickets/contact-service.js'
import { PrivacyService } from './tickets/privacy-service.js'
import { ProfileService } from './tickets/profile-service.js'
import { MergeService } from './tickets/merge-service.js'
import { ticketPort } from './tickets/ticket-port.js'
import { TicketService } from './tickets/ticket-service.js'
import { findTicket } from './tickets/ticket-repository.js'
import { ReportService } from './reports/report-service.js'
import { reportRoutes } from './reports/report-routes.js'
import { mediaRoutes } from './media/media-routes.js'
import { messagebirdWebhooks } from './webhooks/messagebird-routes.js'
import { messagebirdSignature } from './webhooks/signature.js'
import { healthRoutes } from './ops/health.js'
import { quietBackgroundRoutes } from './ops/logging.js'
import { Metrics, metricsRoute } from './ops/metrics.js'

export interface AppDeps {
  config: Config
  /** Defaults to the database named in config (tests pass a fresh file). */
  db?: Db
  /** Defaults to the channel named in config. */
  channel?: ChannelAdapter
  clock?: Clock
  logger?: FastifyServerOptions['logger']
  /** The live stream's timers (ping, presence sweep): tests shorten them instead of sleeping. */
  live?: Pick<LiveRoutesDeps, 'pingMs' | 'presenceSweepMs'>
}

export interface Services {
  config: Config
  db: Db
  clock: Clock
  channel: ChannelAdapter
  simulator: SimulatorChannel | null
  tickets: TicketService
  contacts: ContactService
  profiles: ProfileService
  failover: FailoverService
  apiKeys: ApiKeyService
  notifications: NotificationService
  callbacks: StatusCallbacks
  status: StatusService
  worker: OutboxWorker
  agents: AgentService
  sessions: SessionService
  loginThrottle: LoginThrottle
  passwordHashes: HashGate
  firstRun: FirstRunSetup
  webhookReplay: WebhookReplayGuard
  events: EventBus
  presence: PresenceBoard
  canned: CannedReplyService
  privacy: PrivacyService
}

// Agent pages post replies of at most 1,600 characters; nothing in that scope needs more.
const HTML_BODY_LIMIT = 32 * 1024

declare module 'fastify' {
  interface FastifyInstance {
    services: Services
  }
}

export function loggerOptions (config: Config): FastifyServerOptions['logger'] {
  if (config.logLevel === 'silent') return false
  return {
    level: config.logLevel,
    // Never log secrets or signatures; SMS bodies are never passed to the logger at all.
    redact: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["messagebird-signature-jwt"]', 'res.headers["set-cookie"]'],
    // Paths without query strings, and phone numbers masked in every line (http/log-privacy.ts).
    serializers: { req: requestWithoutQuery },
    hooks: { streamWrite: maskPhoneNumbers }
  }
}

/** The one place that wires services, plugins and routes. Does not listen and does not start the worker. */
export async function buildApp (deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps
  const clock = deps.clock ?? systemClock
  const app = Fastify({
    logger: deps.logger ?? loggerOptions(config),
    bodyLimit: config.bodyLimitBytes,
    // A hop count becomes the equivalent function (Fastify's types only take the other forms).
    trustProxy: typeof config.trustProxy === 'number' ? trustHops(config.trustProxy) : config.trustProxy,
    // Cookie and form parsing are per scope; ids in URLs are plain integers.
    routerOptions: { ignoreTrailingSlash: true }
  })
  const db = deps.db ?? createDatabase(config)
  const log = app.log
  // One instance: events stay in the process. On PostgreSQL, where several instances may share the
  // database, they travel through LISTEN/NOTIFY (events/postgres.ts).
  let events: EventBus
  if (config.database.kind === 'postgres') {
    const bus = new PostgresEventBus({ db, clock, config: config.database, replayMax: config.events.replayMax, replayMinutes: config.events.replayMinutes, onError: (message) => log.warn(message) })
    await bus.ready()
    events = bus
  } else {
    events = new InProcessEventBus({ db, clock, replayMax: config.events.replayMax, replayMinutes: config.events.replayMinutes })
  }
  const presence: PresenceBoard = events instanceof PostgresEventBus ? events.presenceBoard() : new InProcessPresenceBoard({ clock, events })

  let simulator: SimulatorChannel | null = null
  let channel = deps.channel
  if (channel === undefined) {
    if (config.smsChannel === 'messagebird') {
      channel = new MessageBirdChannel({
        apiKey: config.messagebird.apiKey as string,
        originator: config.messagebird.originator as string,
        originators: config.messagebird.originators,
        whatsappChannelId: config.messagebird.whatsappChannelId,
        messengerChannelId: config.messagebird.messengerChannelId,
        timeoutMs: config.messagebird.timeoutMs
      })
    } else {
      simulator = new SimulatorChannel({ deliveryDelayMs: config.simulator.deliveryDelayMs, clock, onError: (err) => log.error({ err }, 'simulated report failed') })
      channel = simulator
    }
  } else if (channel instanceof SimulatorChannel) {
    simulator = channel
  }

  const status = new StatusService({ db, clock, log: log.child({ module: 'status' }) })
  // Agents' pages show each message's delivery state: tell them once the status change commits.
  // Wired here because messaging must not know about tickets' live events. `sending` lasts
  // milliseconds (the worker's claim, then the provider's answer moves it on) and is not announced.
  status.addListener(async (trx, message, next) => {
    if (next !== 'sending') await events.publishInTransaction(trx, { ticketId: message.ticket_id, change: 'delivery' })
  })
  const metrics = new Metrics({ db, clock })
  const outbound = new OutboundQueue(ticketPort, status)
  const failover = new FailoverService({ db, clock, status, outbound, tickets: ticketPort, log: log.child({ module: 'failover' }) })
  const quietHours = new QuietHours(config.quietHours.window, config.quietHours.timezone)
  const tickets = new TicketService({ db, clock, config, failover, outbound, events, quietHours, log: log.child({ module: 'tickets' }), supports: (c) => channel.supports(c) })
  const worker = new OutboxWorker({ db, channel: metrics.timeSends(channel), status, tickets: ticketPort, clock, config, quietHours, log: log.child({ module: 'outbox' }) })
  const scheduled = new ScheduledReplies({ db, clock, outbound, status, quietHours, changed: async (ticketId) => { await events.publish({ ticketId, change: 'message' }); worker.wake() } })
  tickets.onOutboxWork(() => worker.wake())
  failover.attach(worker)
  const callbacks = new StatusCallbacks({ db, clock, config, log: log.child({ module: 'callbacks' }) })
  callbacks.attach({ status, failover, worker })
  const contacts = new ContactService({ db, clock })
  const search = new SearchService({ db, defaultCountry: config.inbox.defaultCountry })
  const apiKeys = new ApiKeyService({ db, clock })
  const notifications = new NotificationService({ db, clock, config, failover, outbound, events, log: log.child({ module: 'api' }), wake: () => worker.wake() })
  simulator?.onReport(async (report) => await status.applyReport(report))
  metrics.attach({ status, failover, tickets })

  const passwordHashes = new HashGate(config.passwordHashes)
  const agents = new AgentService({ db, clock, passwordHashLogN: config.passwordHashLogN, gate: passwordHashes })
  const sessions = new SessionService({ db, clock, config })
  const loginThrottle = new LoginThrottle({ db, clock, config })
  const firstRun = new FirstRunSetup({ agents, config })
  const webhookReplay = new WebhookReplayGuard({ db, clock })
  const canned = new CannedReplyService({ db, clock })
  const templates = new TemplateService({ db, clock })
  const composer = new WhatsAppComposer({ db, clock, outbound, events, templates, mmsOffered: channel.supports('mms') })
  composer.onOutboxWork(() => worker.wake())
  // The simulated provider refuses free text once a phone's WhatsApp window has closed, as WhatsApp
  // does. A number that never wrote on WhatsApp is let through, so failover to an added WhatsApp
  // address can still be watched in the simulator.
  simulator?.onWindowCheck(async (address) => {
    const w = await windowForAddress(db, address, clock.now())
    return w.lastInboundAt === null || w.open
  })

  const profiles = new ProfileService({ db, clock, events })
  const merges = new MergeService({ db, clock, events, outbound })
  const privacy = new PrivacyService({ db, clock, events, log: log.child({ module: 'privacy' }), retentionDays: config.privacy.retentionDays })
  const services: Services = { config, db, clock, channel, simulator, tickets, contacts, profiles, failover, apiKeys, notifications, callbacks, status, worker, agents, sessions, loginThrottle, passwordHashes, firstRun, webhookReplay, events, presence, canned, privacy }
  app.decorate('services', services)
  // Pages resume their live stream from where the request started (see takeLiveCursor).
  app.addHook('onRequest', async (request) => { if (request.method === 'GET') takeLiveCursor(request) })
  app.decorate('metrics', metrics)
  app.addHook('onClose', async () => {
    tickets.stopAutoClose()
    privacy.stopRetention()
    await failover.close()
    await worker.stop()
    await events.close()
    channel.close?.()
    await db.destroy()
  })

  app.setErrorHandler(rootErrorHandler)
  app.setNotFoundHandler(notFound)
  limitJsonBodies(app)
  refuseNulCharacters(app)
  await securityHeaders(app, config)
  quietBackgroundRoutes(app)

  // Health and metrics answer load balancers and scrapers: no session, no rate limit.
  await app.register(async (scope) => {
    machineFacing(scope)
    await healthRoutes(scope, { db, worker, clock, config, log: log.child({ module: 'health' }) })
    if (config.metrics.token !== null) await metricsRoute(scope, { metrics, token: config.metrics.token })
  })

  await app.register(async (scope) => {
    machineFacing(scope)
    await limitRate(scope, { perMinute: config.rateLimit.webhooksPerMinute, headers: false })
    const signingKey = config.messagebird.signingKey
    const signature = signingKey === null ? null : messagebirdSignature({ signingKey, publicUrl: config.publicUrl, clock, replay: webhookReplay })
    scope.addHook('onResponse', metrics.timeWebhook)
    await messagebirdWebhooks(scope, { tickets, status, verify: signature?.verify })
  })

  await app.register(async (scope) => {
    machineFacing(scope)
    await limitRate(scope, { perMinute: config.rateLimit.apiPerMinute })
    await apiRoutes(scope, { apiKeys, notifications, privacy, config, supports: (c) => channel.supports(c), senders: sendersOf(config) })
  })

  await app.register(async (scope) => {
    limitBodies(scope, HTML_BODY_LIMIT)
    await scope.register(formbody)
    await scope.register(view, {
      engine: { handlebars: createViewEngine() },
      root: VIEWS_DIR,
      viewExt: 'hbs',
      production: config.nodeEnv === 'production',
      options: { partials: { ticketList: 'partials/ticket-list.hbs', viewNav: 'partials/view-nav.hbs', timeline: 'partials/timeline.hbs', ticketHead: 'partials/ticket-head.hbs', phoneMessages: 'partials/phone-messages.hbs', messengerMessages: 'partials/messenger-messages.hbs', cannedVariables: 'partials/canned-variables.hbs', searchForm: 'partials/search-form.hbs', searchResults: 'partials/search-results.hbs' } }
    })
    await agentAuth(scope, { agents, sessions, throttle: loginThrottle, firstRun, config })
    await scope.register(staticAssets)
    await scope.register(inboxRoutes, { tickets, contacts, search, profiles, presence, canned, merges, privacy, config, simulatorOn: simulator !== null, scheduled, whatsapp: { templates, composer } })
    await scope.register(liveRoutes, {
      events,
      presence,
      ticketExists: async (id) => await findTicket(db, id) !== undefined,
      sessionActive: async (id) => await sessions.stillActive(id),
      limits: { maxStreams: config.events.maxStreams, maxStreamsPerSession: config.events.maxStreamsPerSession },
      ...deps.live
    })
    if (simulator !== null) await scope.register(simulatorRoutes, { tickets, simulator, ageWhatsApp: async (number) => await ageWhatsAppWindow(db, number, clock.now()) })
    if (simulator !== null) await scope.register(messengerSimulatorRoutes, { tickets, simulator })
    await scope.register(reportRoutes, { reports: new ReportService({ db, clock }), simulatorOn: simulator !== null })
    await scope.register(mediaRoutes, { db, fetch: { ...config.media, accessKey: config.messagebird.apiKey } })
  })

  return app
}

/** The senders a dispatch step may choose: with the simulator and nothing configured, any (senders.ts). */
function sendersOf (config: Config): SenderDirectory {
  const { originators, whatsappChannelId, messengerChannelId } = config.messagebird
  return {
    originators,
    channelIds: {
      ...(whatsappChannelId === null ? {} : { whatsapp: whatsappChannelId }),
      ...(messengerChannelId === null ? {} : { messenger: messengerChannelId })
    }
  }
}

function trustHops (hops: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < hops
}

/** One root handler: 4xx messages pass through, 5xx are logged and answered generically. */
const rootErrorHandler: Parameters<FastifyInstance['setErrorHandler']>[0] = function (err, req, reply) {
  const { statusCode, body } = errorBody(err)
  if (statusCode >= 500) req.log.error({ err }, 'request failed')
  void reply.code(statusCode).send(body)
}
