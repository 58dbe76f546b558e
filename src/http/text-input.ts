import type { FastifyInstance } from 'fastify'
import { UserError } from '../errors.js'

/** True when `value` (a parsed body, query or params object) holds U+0000 in any string or key. */
export function holdsNul (value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000')
  if (Array.isArray(value)) return value.some(holdsNul)
  if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (key.includes('\u0000') || holdsNul(item)) return true
    }
  }
  return false
}

/**
 * Refuses, with a 400, any request whose path parameters, query or body carry a NUL character.
 * No field of ours means anything with one, PostgreSQL's text type cannot store it (the insert
 * fails), and C-based tools downstream cut strings at it. One check at the edge answers the same on
 * both engines, before anything is read or written. Bodies are already depth-limited when parsed,
 * so the walk is bounded.
 */
export function refuseNulCharacters (app: FastifyInstance): void {
  app.addHook('preValidation', (req, _reply, done) => {
    if (holdsNul(req.params) || holdsNul(req.query) || holdsNul(req.body)) {
      done(new UserError(400, 'The request contains a NUL character (U+0000), which no field accepts.', 'NUL_CHARACTER'))
      return
    }
    done()
  })
}
