import type { Executor } from '../db/database.js'

// SQL for API keys. Only the SHA-256 of a key is stored; the key itself is shown once, at creation.

export async function insertApiKey (db: Executor, k: { name: string, keyHash: string, prefix: string }, now: string): Promise<number> {
  const row = await db.insertInto('api_keys')
    .values({ name: k.name, key_hash: k.keyHash, prefix: k.prefix, created_at: now, revoked_at: null, last_used_at: null })
    .returning('id').executeTakeFirstOrThrow()
  return row.id
}

export function findApiKeyByHash (db: Executor, keyHash: string) {
  return db.selectFrom('api_keys').select(['id', 'name', 'prefix', 'revoked_at', 'last_used_at'])
    .where('key_hash', '=', keyHash).executeTakeFirst()
}

export function findActiveApiKeyByName (db: Executor, name: string) {
  return db.selectFrom('api_keys').select(['id', 'name', 'prefix'])
    .where('name', '=', name).where('revoked_at', 'is', null).executeTakeFirst()
}

export function listApiKeys (db: Executor) {
  return db.selectFrom('api_keys').select(['id', 'name', 'prefix', 'created_at', 'revoked_at', 'last_used_at'])
    .orderBy('created_at').orderBy('id').execute()
}

export async function revokeApiKeysByName (db: Executor, name: string, now: string): Promise<number> {
  const res = await db.updateTable('api_keys').set({ revoked_at: now })
    .where('name', '=', name).where('revoked_at', 'is', null).executeTakeFirst()
  return Number(res.numUpdatedRows)
}

export async function touchApiKey (db: Executor, id: number, now: string): Promise<void> {
  await db.updateTable('api_keys').set({ last_used_at: now }).where('id', '=', id).execute()
}
