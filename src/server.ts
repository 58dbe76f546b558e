import 'dotenv/config'
import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { buildApp, loggerOptions } from './app.js'
import { ENABLE_AGENT_COMMAND } from './auth/agent-service.js'
import { ConfigError, describeDatabase, loadConfig, type Config } from './config.js'
import { createDatabase } from './db/database.js'
import { migrateToLatest } from './db/migrate.js'
import { forTerminal } from './ops/logging.js'
import { metricsServer } from './ops/metrics.js'

// Exit codes (sysexits.h, as the CLIs use): 75 a port is taken (EX_TEMPFAIL: it may be free
// later); 78 bad configuration (EX_CONFIG); 1 anything unexpected.
const EXIT_PORT_IN_USE = 75

// Process entry: configuration, schema, app, worker, listen; and a graceful stop on SIGINT/SIGTERM.
let config: Config
try {
  config = loadConfig()
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message)
    process.exit(78)
  }
  throw err
}

// Checkpoints run on a worker thread, not after whichever webhook commits (db/checkpointer.ts).
// Their errors go to stderr until the app's logger exists, then to the log.
// A lost PostgreSQL connection the same way (the pool replaces it).
let checkpointError = (message: string): void => { console.error(`background checkpoint failed: ${message}`) }
let connectionError = (err: Error): void => { console.error(`PostgreSQL connection lost: ${err.message}`) }
const db = createDatabase(config, { backgroundCheckpoints: true, onCheckpointError: (message) => checkpointError(message), onConnectionError: (err) => connectionError(err) })
// Startup applies pending migrations so `npm start` works on a fresh machine; `npm run init-db`
// does the same explicitly and reports what it did.
await migrateToLatest(db)
const app = await buildApp({ config, db, logger: forTerminal(loggerOptions(config), process.stdout.isTTY === true) })
checkpointError = (message) => app.log.error({ message }, 'background checkpoint failed; SQLite checkpoints after commits again')
connectionError = (err) => app.log.warn({ err }, 'PostgreSQL connection lost; the pool opens a new one')
app.log.info({ channel: config.smsChannel, chosen: config.smsChannelAutoSelected ? 'automatically (MESSAGEBIRD_API_KEY ' + (config.messagebird.apiKey === null ? 'not set' : 'set') + ')' : 'by SMS_CHANNEL', database: describeDatabase(config.database) }, 'SMS channel: %s', config.smsChannel)
if (config.smsChannel === 'messagebird' && config.messagebird.signingKey === null) {
  app.log.warn('MESSAGEBIRD_SIGNING_KEY is not set: webhooks are NOT authenticated and anyone who can reach them can post fake SMS')
}
const firstRunOpen = await app.services.firstRun.isOpen()
if (!firstRunOpen && !await app.services.agents.hasActiveAgents()) {
  app.log.warn(`Every agent account is disabled, so nobody can sign in. Enable one with: ${ENABLE_AGENT_COMMAND}`)
}
if (config.smsChannel === 'messagebird' && config.publicUrl === null) {
  app.log.warn('PUBLIC_URL is not set: messages are sent without a reportUrl, so delivery reports only arrive if an account-level status URL is configured')
}

const metrics = config.metrics.port === null ? null : await metricsServer(app, config.metrics.token)
if (config.metrics.token !== null) app.log.info('Metrics: GET /metrics with Authorization: Bearer $METRICS_TOKEN')
if (config.metrics.port !== null) app.log.info(`Metrics: http://${config.metrics.host}:${config.metrics.port}/metrics`)
if (config.metrics.token === null && config.metrics.port === null) app.log.info('Metrics are off: set METRICS_TOKEN or METRICS_PORT to serve /metrics')

closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  if (err !== undefined) app.log.error({ err }, 'shutting down after an error')
  else app.log.info({ signal }, 'shutting down')
  await metrics?.close()
  await app.close()
})

/** Listens, or explains a taken port in one sentence and exits with EXIT_PORT_IN_USE. */
async function listen (server: FastifyInstance, port: number, host: string, variable: string): Promise<string> {
  try {
    return await server.listen({ port, host })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err
    console.error(`port ${port} is in use — is Textdesk already running? Set ${variable} to use another port.`)
    await metrics?.close()
    await app.close()
    process.exit(EXIT_PORT_IN_USE)
  }
}

// The worker starts only once both ports are ours: a second instance started by mistake exits
// before it sends anything.
const address = await listen(app, config.port, config.host, 'PORT')
if (metrics !== null && config.metrics.port !== null) await listen(metrics, config.metrics.port, config.metrics.host, 'METRICS_PORT')
app.services.worker.start()
app.services.tickets.startAutoClose()
app.services.privacy.startRetention()
// When started by a parent process (the benchmark), tell it we are ready to take traffic.
process.send?.({ ready: address })
if (config.smsChannel === 'simulator') {
  app.log.info(`Simulator phone: http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${new URL(address).port}/simulator`)
}
if (firstRunOpen) {
  // After listening, so the address is the real one (PORT=0 picks a free port).
  const local = new URL(address)
  if (local.hostname === '0.0.0.0' || local.hostname === '[::]') local.hostname = '127.0.0.1'
  app.log.warn(`No agent account exists yet. Create the first admin in the browser: open ${local.origin}/login on this machine, or from anywhere else enter this one-time set-up token in the form: ${app.services.firstRun.token}`)
}
