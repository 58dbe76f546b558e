import type { Clock } from '../clock.js'
import type { Db } from '../db/database.js'
import { isUniqueViolation } from '../db/database.js'
import type { Agent } from '../db/schema.js'
import { conflict, invalid, notFound } from '../errors.js'
import * as repo from './agent-repository.js'
import { HashGate } from './hash-gate.js'
import { accountThrottleKey } from './login-throttle.js'
import { deleteThrottle } from './login-throttle-repository.js'
import { defaultParams, hashPassword, needsRehash, passwordProblem, verifyPassword, type HashParams } from './password.js'
import { deleteSessionsForAgent } from './session-repository.js'

export type Role = Agent['role']
export type SignedInAgent = Pick<Agent, 'id' | 'name' | 'email' | 'role'>

export type Authentication =
  | { ok: true, agent: SignedInAgent }
  | { ok: false, reason: 'invalid' | 'disabled' }

export const FIRST_AGENT_COMMAND = 'npm run agent -- add --email you@example.com --name "Your Name" --admin'
export const ENABLE_AGENT_COMMAND = 'npm run agent -- enable --email <address>'

export function normaliseEmail (email: string): string {
  return email.trim().toLowerCase()
}

/** Agent accounts: creation, sign-in checks, disabling and password resets. */
export class AgentService {
  private readonly params: HashParams
  private readonly gate: HashGate
  private decoy: Promise<string> | null = null

  /** `gate` bounds concurrent hashes in a server; a CLI run hashes one password and needs none. */
  constructor (private readonly deps: { db: Db, clock: Clock, passwordHashLogN: number, gate?: HashGate }) {
    this.params = defaultParams(deps.passwordHashLogN)
    this.gate = deps.gate ?? new HashGate({ concurrency: 1, queue: Number.POSITIVE_INFINITY })
  }

  async add (input: { email: string, name: string, role: Role, password: string }): Promise<SignedInAgent> {
    const agent = await this.prepare(input)
    try {
      const id = await repo.insertAgent(this.deps.db, agent, this.now())
      return { id, email: agent.email, name: agent.name, role: agent.role }
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict(`An agent with the email ${agent.email} already exists.`)
      throw err
    }
  }

  /**
   * The first admin, by the same rules as `add`; null when an agent already exists. One statement
   * checks and inserts, so of two concurrent attempts exactly one creates an admin.
   */
  async addFirstAdmin (input: { email: string, name: string, password: string }): Promise<SignedInAgent | null> {
    const agent = await this.prepare({ ...input, role: 'admin' })
    const id = await repo.insertAgentIfNone(this.deps.db, agent, this.now())
    return id === undefined ? null : { id, email: agent.email, name: agent.name, role: agent.role }
  }

  async anyAgent (): Promise<boolean> {
    return await repo.anyAgent(this.deps.db)
  }

  private async prepare (input: { email: string, name: string, role: Role, password: string }): Promise<{ email: string, name: string, role: Role, passwordHash: string }> {
    const email = normaliseEmail(input.email)
    const name = input.name.trim()
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email) || email.length > 254) throw invalid(`"${input.email}" is not an email address.`)
    if (name === '' || name.length > 100) throw invalid('The name must be 1 to 100 characters long; it is shown to other agents next to replies.')
    const problem = passwordProblem(input.password)
    if (problem !== null) throw invalid(problem)
    return { email, name, role: input.role, passwordHash: await this.hash(input.password) }
  }

  async list () {
    return await repo.listAgents(this.deps.db)
  }

  async hasActiveAgents (): Promise<boolean> {
    return await repo.anyActiveAgent(this.deps.db)
  }

  /** Disabling also ends every session the agent has, so access stops at once. */
  async disable (email: string): Promise<{ agent: Agent, sessionsEnded: number }> {
    const agent = await this.require(email)
    const now = this.now()
    const sessionsEnded = await this.deps.db.transaction().execute(async (trx) => {
      await repo.setAgentDisabled(trx, agent.id, agent.disabled_at ?? now, now)
      return await deleteSessionsForAgent(trx, agent.id)
    })
    return { agent, sessionsEnded }
  }

  async enable (email: string): Promise<Agent> {
    const agent = await this.require(email)
    await repo.setAgentDisabled(this.deps.db, agent.id, null, this.now())
    return agent
  }

  /** A new password signs the agent out everywhere and lifts a sign-in lockout on the account. */
  async resetPassword (email: string, password: string): Promise<{ agent: Agent, sessionsEnded: number }> {
    const problem = passwordProblem(password)
    if (problem !== null) throw invalid(problem)
    const agent = await this.require(email)
    const passwordHash = await this.hash(password)
    const sessionsEnded = await this.deps.db.transaction().execute(async (trx) => {
      await repo.setAgentPassword(trx, agent.id, passwordHash, this.now())
      await deleteThrottle(trx, accountThrottleKey(agent.email))
      return await deleteSessionsForAgent(trx, agent.id)
    })
    return { agent, sessionsEnded }
  }

  /**
   * Checks a sign-in. An unknown email costs the same hashing work as a wrong password, so the
   * response time does not tell which accounts exist. `disabled` is only reported to someone who
   * knows the password.
   */
  async authenticate (email: string, password: string): Promise<Authentication> {
    if (password.length > 4 * 1024) return { ok: false, reason: 'invalid' }
    const agent = await repo.findAgentByEmail(this.deps.db, normaliseEmail(email))
    if (agent === undefined) {
      await this.verify(password, await this.decoyHash())
      return { ok: false, reason: 'invalid' }
    }
    if (!await this.verify(password, agent.password_hash)) return { ok: false, reason: 'invalid' }
    if (agent.disabled_at !== null) return { ok: false, reason: 'disabled' }
    if (needsRehash(agent.password_hash, this.params)) {
      await repo.setAgentPassword(this.deps.db, agent.id, await this.hash(password), this.now())
    }
    return { ok: true, agent: { id: agent.id, name: agent.name, email: agent.email, role: agent.role } }
  }

  private async require (email: string): Promise<Agent> {
    const agent = await repo.findAgentByEmail(this.deps.db, normaliseEmail(email))
    if (agent === undefined) throw notFound(`The agent ${normaliseEmail(email)}`)
    return agent
  }

  private async decoyHash (): Promise<string> {
    if (this.decoy === null) {
      const made = this.hash('decoy password for unknown accounts')
      this.decoy = made
      // A refused or failed first hash must not stay cached: the next attempt makes it again.
      made.catch(() => { if (this.decoy === made) this.decoy = null })
    }
    return await this.decoy
  }

  private async hash (password: string): Promise<string> {
    return await this.gate.run(async () => await hashPassword(password, this.params))
  }

  private async verify (password: string, stored: string): Promise<boolean> {
    return await this.gate.run(async () => await verifyPassword(password, stored))
  }

  private now (): string {
    return this.deps.clock.now().toISOString()
  }
}
