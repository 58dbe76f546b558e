import { createHash, randomBytes } from 'node:crypto'
import type { Clock } from '../clock.js'
import type { Db } from '../db/database.js'
import { conflict, invalid, notFound } from '../errors.js'
import * as repo from './api-key-repository.js'

const KEY_PREFIX = 'tdk_'
// Shown in `api-key list` so a key can be recognised without being stored.
const VISIBLE_CHARS = 12
// last_used_at is for "is this key still in use?", not an audit log: one write per minute is enough.
const TOUCH_EVERY_MS = 60_000
const NAME = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/

export interface ApiKeyIdentity { id: number, name: string }

export function hashApiKey (key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex')
}

/** API keys for the notifications API: 32 random bytes, stored as their SHA-256 only. */
export class ApiKeyService {
  constructor (private readonly deps: { db: Db, clock: Clock }) {}

  async create (nameInput: string): Promise<{ key: string, id: number, name: string, prefix: string }> {
    const name = nameInput.trim()
    if (!NAME.test(name)) throw invalid(`The key name "${name.slice(0, 70)}" is not allowed: use 1 to 64 letters, digits, spaces, dots, dashes or underscores, starting with a letter or digit.`, [{ field: 'name', message: 'invalid' }])
    const key = KEY_PREFIX + randomBytes(32).toString('base64url')
    const prefix = key.slice(0, VISIBLE_CHARS)
    const now = this.deps.clock.now().toISOString()
    const id = await this.deps.db.transaction().execute(async (trx) => {
      if (await repo.findActiveApiKeyByName(trx, name) !== undefined) {
        throw conflict(`An active key named "${name}" already exists. Revoke it first, or choose another name (e.g. "${name}-2") to rotate without downtime.`)
      }
      return await repo.insertApiKey(trx, { name, keyHash: hashApiKey(key), prefix }, now)
    })
    return { key, id, name, prefix }
  }

  async list () {
    return await repo.listApiKeys(this.deps.db)
  }

  async revoke (name: string): Promise<number> {
    const n = await repo.revokeApiKeysByName(this.deps.db, name.trim(), this.deps.clock.now().toISOString())
    if (n === 0) throw notFound(`An active API key named "${name.trim()}"`)
    return n
  }

  /** The key's identity, or null when it is unknown or revoked. */
  async authenticate (presented: string): Promise<ApiKeyIdentity | null> {
    if (!presented.startsWith(KEY_PREFIX) || presented.length > 200) return null
    const row = await repo.findApiKeyByHash(this.deps.db, hashApiKey(presented))
    if (row === undefined || row.revoked_at !== null) return null
    const now = this.deps.clock.now()
    if (row.last_used_at === null || now.getTime() - Date.parse(row.last_used_at) >= TOUCH_EVERY_MS) {
      await repo.touchApiKey(this.deps.db, row.id, now.toISOString())
    }
    return { id: row.id, name: row.name }
  }
}
