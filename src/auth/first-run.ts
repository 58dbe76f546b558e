import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { invalid } from '../errors.js'
import type { AgentService, SignedInAgent } from './agent-service.js'

/** Headers a reverse proxy adds: a request carrying them came from somewhere else through a proxy. */
const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip']

export function isLoopback (address: string | undefined): boolean {
  if (address === undefined) return false
  const a = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a)
}

/**
 * Whether a request comes from this machine. Without TRUST_PROXY the socket's address decides, and
 * a request with a proxy's forwarding headers does not count (a proxy on this machine forwards
 * other people's requests from 127.0.0.1). With TRUST_PROXY set to hops or addresses, the client
 * address Fastify derives through those proxies decides. With TRUST_PROXY=true every hop is
 * trusted, so anyone could claim 127.0.0.1: nothing counts as local.
 */
export function fromThisMachine (req: FastifyRequest, trustProxy: Config['trustProxy']): boolean {
  if (trustProxy === true) return false
  if (trustProxy === false) {
    if (FORWARDING_HEADERS.some((h) => req.headers[h] !== undefined)) return false
    return isLoopback(req.socket.remoteAddress)
  }
  return isLoopback(req.ip)
}

export type SetupAccess = 'local' | 'token'

/**
 * Creating the first admin in the browser, while no agent exists. Open to this machine without
 * more ado, and to anyone else who presents the one-time token the server prints at start-up (a
 * new one each start). Once any agent exists it is closed for good.
 */
export class FirstRunSetup {
  readonly token = randomBytes(32).toString('base64url')

  constructor (private readonly deps: { agents: AgentService, config: Pick<Config, 'trustProxy'> }) {}

  async isOpen (): Promise<boolean> {
    return !await this.deps.agents.anyAgent()
  }

  /** What a request needs to use the form: nothing from this machine, the token from elsewhere. */
  access (req: FastifyRequest): SetupAccess {
    return fromThisMachine(req, this.deps.config.trustProxy) ? 'local' : 'token'
  }

  tokenMatches (presented: unknown): boolean {
    if (typeof presented !== 'string') return false
    const given = Buffer.from(presented.trim())
    const expected = Buffer.from(this.token)
    return given.length === expected.length && timingSafeEqual(given, expected)
  }

  /** The first admin, by the CLI's rules; null when someone else created one first. */
  async createAdmin (input: { name: string, email: string, password: string, confirmation: string }): Promise<SignedInAgent | null> {
    if (input.password !== input.confirmation) throw invalid('The two passwords are not the same. Type the same password twice.')
    return await this.deps.agents.addFirstAdmin({ name: input.name, email: input.email, password: input.password })
  }
}
