import { randomUUID } from 'node:crypto'

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. Message ids are primary
 * keys; time-ordered ids land on the last page of the index instead of a random one, so each
 * insert dirties (and commits) one page fewer. The random part comes from randomUUID(), which
 * draws from a pooled buffer (a fresh randomBytes call per id showed in the profile).
 */
export function uuidv7 (nowMs: number = Date.now()): string {
  const ms = nowMs.toString(16).padStart(12, '0').slice(-12)
  const r = randomUUID()
  return `${ms.slice(0, 8)}-${ms.slice(8)}-7${r.slice(15, 18)}-${r.slice(19)}`
}
