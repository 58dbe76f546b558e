import type { FastifyInstance } from 'fastify'
import sjson from 'secure-json-parse'
import { UserError } from '../errors.js'

/**
 * The deepest nesting any JSON body may have. Our deepest real shape (a Conversations API webhook,
 * or a dispatch step's message content) is 5 levels; code that walks a body recursively
 * (canonicalising it for idempotency, serialising it for the event log) overflows the stack at a
 * few thousand.
 */
export const MAX_JSON_DEPTH = 32

/** True when the JSON text opens more than `max` arrays or objects inside each other. Linear, no recursion. */
export function jsonNestedDeeperThan (text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // a backslash escapes the next character, quotes included
      else if (c === 0x22) inString = false
      continue
    }
    if (c === 0x22) inString = true
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true
    } else if (c === 0x7d || c === 0x5d) depth--
  }
  return false
}

/**
 * Parses a JSON request body, or throws a 400 that says what is wrong: not JSON, nested deeper than
 * MAX_JSON_DEPTH, or carrying a `__proto__` / `constructor.prototype` key (refused by
 * secure-json-parse, as Fastify's own parser does, so no later merge or copy can change an
 * object's prototype). Size is limited before this by each scope's body limit.
 */
export function parseJsonBody (text: string): unknown {
  if (jsonNestedDeeperThan(text, MAX_JSON_DEPTH)) {
    throw new UserError(400, `The JSON body is nested more than ${MAX_JSON_DEPTH} levels deep.`, 'JSON_TOO_DEEP')
  }
  try {
    return sjson.parse(text, { protoAction: 'error', constructorAction: 'error' })
  } catch (err) {
    if (err instanceof SyntaxError && /forbidden prototype property/.test(err.message)) {
      throw new UserError(400, 'The JSON body has a key named "__proto__" or "constructor.prototype"; such keys are refused.', 'JSON_FORBIDDEN_KEY')
    }
    throw new UserError(400, 'The body is not valid JSON.', 'INVALID_JSON')
  }
}

/** Replaces the JSON parser of `app` and of every scope registered in it afterwards. */
export function limitJsonBodies (app: FastifyInstance): void {
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    if ((body as string).length === 0) {
      done(new UserError(400, 'The JSON body is empty.', 'EMPTY_JSON_BODY'))
      return
    }
    try {
      done(null, parseJsonBody(body as string))
    } catch (err) {
      done(err as Error)
    }
  })
}
