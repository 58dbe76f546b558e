import type { Executor } from '../db/database.js'

// SQL for Idempotency-Key records: the first answer to a key, replayed for 24 hours.

export function findIdempotencyRecord (db: Executor, apiKeyId: number, key: string) {
  return db.selectFrom('idempotency_keys').selectAll()
    .where('api_key_id', '=', apiKeyId).where('key', '=', key)
    .executeTakeFirst()
}

export async function insertIdempotencyRecord (db: Executor, r: { apiKeyId: number, key: string, requestHash: string, statusCode: number, responseBody: string }, now: string): Promise<void> {
  await db.insertInto('idempotency_keys').values({
    api_key_id: r.apiKeyId,
    key: r.key,
    request_hash: r.requestHash,
    status_code: r.statusCode,
    response_body: r.responseBody,
    created_at: now
  }).execute()
}

export async function deleteIdempotencyRecordsBefore (db: Executor, cutoff: string): Promise<void> {
  await db.deleteFrom('idempotency_keys').where('created_at', '<', cutoff).execute()
}
