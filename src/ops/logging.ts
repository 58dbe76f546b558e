import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import pretty from 'pino-pretty'

/**
 * Polled over and over by a browser tab or a machine: the inbox's and the simulator's background
 * refresh, health checks and metrics scrapes. Their request lines would bury everything else.
 */
export const BACKGROUND_ROUTES: readonly string[] = ['/inbox/list', '/inbox/counts', '/tickets/:id/timeline', '/tickets/:id/head', '/tickets/:id/conversation', '/simulator/conversation', '/healthz', '/readyz', '/metrics']

/**
 * Makes the request lines of background routes debug-level: shown with LOG_LEVEL=debug or trace,
 * hidden at info. Fastify logs a request at info, so at info these routes get the `warn` level
 * (their warnings and errors still show). Call before the routes are registered.
 */
export function quietBackgroundRoutes (app: FastifyInstance): void {
  const quiet = new Set(BACKGROUND_ROUTES)
  const log = app.log as { isLevelEnabled?: (level: string) => boolean }
  app.addHook('onRoute', (route) => {
    if (!quiet.has(route.url) || log.isLevelEnabled === undefined) return
    if (log.isLevelEnabled('info') && !log.isLevelEnabled('debug')) route.logLevel = 'warn'
  })
}

/**
 * Logs a person can read: one coloured line per entry on a terminal, JSON (for log shippers)
 * everywhere else. Written synchronously, so a message printed just before exiting is not lost.
 */
export function forTerminal (options: FastifyServerOptions['logger'], isTTY: boolean, destination: number | NodeJS.WritableStream = 1): FastifyServerOptions['logger'] {
  if (!isTTY || options === undefined || typeof options === 'boolean') return options
  return {
    ...options,
    stream: pretty({ destination, singleLine: true, colorize: true, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
  }
}
