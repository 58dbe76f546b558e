import { createHash, randomBytes } from 'node:crypto'
import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import type { Db } from '../db/database.js'
import type { SignedInAgent } from './agent-service.js'
import { csrfTokenFor, csrfTokenMatches, newSecret } from './csrf.js'
import * as repo from './session-repository.js'

export interface ActiveSession {
  id: string
  agent: SignedInAgent
  csrfToken: string
  csrfSecret: string
  expiresAt: string
}

// Writing last_seen_at on every request would turn each page view into a write.
const TOUCH_AFTER_MS = 5 * 60_000

export function sessionIdFor (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

/**
 * Server-side sessions. The browser holds a random 32-byte token; the database holds only its
 * SHA-256, so a leaked database does not hand out live sessions. Expiry is absolute and checked
 * here on every request; a disabled agent's sessions stop working at once.
 */
export class SessionService {
  constructor (private readonly deps: { db: Db, clock: Clock, config: Pick<Config, 'session'> }) {}

  get ttlSeconds (): number {
    return this.deps.config.session.ttlHours * 3600
  }

  async create (agentId: number): Promise<{ token: string, expiresAt: string }> {
    const token = randomBytes(32).toString('base64url')
    const now = this.deps.clock.now()
    const expiresAt = new Date(now.getTime() + this.ttlSeconds * 1000).toISOString()
    await this.deps.db.transaction().execute(async (trx) => {
      await repo.deleteExpiredSessions(trx, now.toISOString())
      await repo.insertSession(trx, { id: sessionIdFor(token), agentId, csrfSecret: newSecret(), expiresAt }, now.toISOString())
    })
    return { token, expiresAt }
  }

  async resolve (token: string | undefined): Promise<ActiveSession | null> {
    if (token === undefined || !/^[A-Za-z0-9_-]{43}$/.test(token)) return null
    const id = sessionIdFor(token)
    const row = await repo.findSessionWithAgent(this.deps.db, id)
    if (row === undefined) return null
    const now = this.deps.clock.now()
    if (Date.parse(row.expires_at) <= now.getTime()) {
      await repo.deleteSession(this.deps.db, id)
      return null
    }
    if (row.disabled_at !== null) return null
    if (now.getTime() - Date.parse(row.last_seen_at) > TOUCH_AFTER_MS) await repo.touchSession(this.deps.db, id, now.toISOString())
    return {
      id,
      agent: { id: row.agent_id, name: row.name, email: row.email, role: row.role },
      csrfToken: csrfTokenFor(row.csrf_secret, 'session'),
      csrfSecret: row.csrf_secret,
      expiresAt: row.expires_at
    }
  }

  /**
   * Whether a session resolved earlier still works (not signed out, expired, or its agent
   * disabled): for connections that outlive the request that opened them (the live event stream).
   */
  async stillActive (id: string): Promise<boolean> {
    const row = await repo.findSessionWithAgent(this.deps.db, id)
    return row !== undefined && row.disabled_at === null && Date.parse(row.expires_at) > this.deps.clock.now().getTime()
  }

  csrfValid (session: ActiveSession, presented: unknown): boolean {
    return csrfTokenMatches(session.csrfSecret, 'session', presented)
  }

  async end (token: string | undefined): Promise<void> {
    if (token === undefined || token === '') return
    await repo.deleteSession(this.deps.db, sessionIdFor(token))
  }
}
