import formbody from '@fastify/formbody'
import view from '@fastify/view'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { systemClock, type Clock } from './clock.js'
import type { Config } from './config.js'
import { createDatabase, type Db } from './db/database.js'
import { errorBody } from './errors.js'
import { inboxRoutes } from './inbox/inbox-routes.js'
import { staticAssets } from './inbox/assets.js'
import { createViewEngine } from './inbox/view-engine.js'
import type { ChannelAdapter } from './messaging/channel.js'
import { MessageBirdChannel } from './messaging/messagebird-channel.js'
import { OutboxWorker } from './messaging/outbox-worker.js'
import { SimulatorChannel } from './messaging/simulator-channel.js'
import { StatusService } from './messaging/status-service.js'
import { VIEWS_DIR } from './paths.js'
import { simulatorRoutes } from './simulator/simulator-routes.js'
import { TicketService } from './tickets/ticket-service.js'
import { messagebirdWebhooks } from './webhooks/messagebird-routes.js'

export interface AppDeps {
  config: Config
  /** Defaults to the database named in config (tests pass a fresh file). */
  db?: Db
  /** Defaults to the channel named in config. */
  channel?: ChannelAdapter
  clock?: Clock
  logger?: FastifyServerOptions['logger']
}

export interface Services {
  config: Config
  db: Db
  clock: Clock
  channel: ChannelAdapter
  simulator: SimulatorChannel | null
  tickets: TicketService
  status: StatusService
  worker: OutboxWorker
}

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
    redact: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["messagebird-signature-jwt"]', 'res.headers["set-cookie"]']
  }
}

/** The one place that wires services, plugins and routes. Does not listen and does not start the worker. */
export async function buildApp (deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps
  const clock = deps.clock ?? systemClock
  const app = Fastify({
    logger: deps.logger ?? loggerOptions(config),
    bodyLimit: config.bodyLimitBytes,
    // Cookie and form parsing are per scope; ids in URLs are plain integers.
    routerOptions: { ignoreTrailingSlash: true }
  })
  const db = deps.db ?? createDatabase(config)
  const log = app.log

  let simulator: SimulatorChannel | null = null
  let channel = deps.channel
  if (channel === undefined) {
    if (config.smsChannel === 'messagebird') {
      channel = new MessageBirdChannel({
        apiKey: config.messagebird.apiKey as string,
        originator: config.messagebird.originator as string,
        whatsappChannelId: config.messagebird.whatsappChannelId,
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
  const tickets = new TicketService({ db, clock, config, log: log.child({ module: 'tickets' }) })
  const worker = new OutboxWorker({ db, channel, status, clock, config, log: log.child({ module: 'outbox' }) })
  tickets.onOutboxWork(() => worker.wake())
  simulator?.onReport(async (report) => await status.applyReport(report))

  const services: Services = { config, db, clock, channel, simulator, tickets, status, worker }
  app.decorate('services', services)
  app.addHook('onClose', async () => {
    await worker.stop()
    channel.close?.()
    await db.destroy()
  })

  app.setErrorHandler(rootErrorHandler)
  app.setNotFoundHandler(async (req, reply) => {
    return await reply.code(404).send({ statusCode: 404, error: 'NOT_FOUND', message: 'There is nothing at this address.' })
  })

  await app.register(async (scope) => { await messagebirdWebhooks(scope, { tickets, status }) })

  await app.register(async (scope) => {
    await scope.register(formbody)
    await scope.register(view, {
      engine: { handlebars: createViewEngine() },
      root: VIEWS_DIR,
      viewExt: 'hbs',
      production: config.nodeEnv === 'production',
      options: { partials: { ticketList: 'partials/ticket-list.hbs', conversation: 'partials/conversation.hbs', phoneMessages: 'partials/phone-messages.hbs' } }
    })
    await scope.register(staticAssets)
    await scope.register(inboxRoutes, { tickets, config })
    if (simulator !== null) await scope.register(simulatorRoutes, { tickets, simulator })
  })

  return app
}

/** One root handler: 4xx messages pass through, 5xx are logged and answered generically. */
const rootErrorHandler: Parameters<FastifyInstance['setErrorHandler']>[0] = function (err, req, reply) {
  const { statusCode, body } = errorBody(err)
  if (statusCode >= 500) req.log.error({ err }, 'request failed')
  void reply.code(statusCode).send(body)
}
