/** An error whose message is safe to show to the person who caused it. */
export class UserError extends Error {
  constructor (readonly statusCode: number, message: string, readonly code = 'BAD_REQUEST', readonly details?: Array<{ field: string, message: string }>) {
    super(message)
    this.name = 'UserError'
  }
}

export const notFound = (what: string): UserError => new UserError(404, `${what} was not found`, 'NOT_FOUND')
export const conflict = (message: string): UserError => new UserError(409, message, 'CONFLICT')
export const invalid = (message: string, details?: Array<{ field: string, message: string }>): UserError => new UserError(422, message, 'VALIDATION_FAILED', details)

interface FrameworkError { statusCode?: number, code?: string, message: string, validation?: unknown }

/** The status and JSON body for any error: ours pass their message through, 5xx stay generic. */
export function errorBody (err: unknown): { statusCode: number, body: { statusCode: number, error: string, message: string, details?: unknown } } {
  if (err instanceof UserError) {
    return { statusCode: err.statusCode, body: { statusCode: err.statusCode, error: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) } }
  }
  const fe = (err ?? {}) as FrameworkError
  if (fe.validation !== undefined) {
    return { statusCode: 400, body: { statusCode: 400, error: 'VALIDATION_FAILED', message: fe.message } }
  }
  const statusCode = typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 600 ? fe.statusCode : 500
  if (statusCode >= 500) return { statusCode, body: { statusCode, error: 'INTERNAL', message: 'Something went wrong on our side. Nothing was changed; please try again.' } }
  const mediaType = /: (.*)$/.exec(fe.message)?.[1]
  const friendly: Record<string, string> = {
    FST_ERR_CTP_INVALID_MEDIA_TYPE: `Unsupported content type${mediaType !== undefined ? ` "${mediaType}"` : ''}: send application/x-www-form-urlencoded or application/json`,
    FST_ERR_CTP_BODY_TOO_LARGE: 'The request body is too large',
    FST_ERR_CTP_EMPTY_JSON_BODY: 'The JSON body is empty',
    FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'The Content-Length header does not match the body'
  }
  const code = fe.code ?? 'BAD_REQUEST'
  return { statusCode, body: { statusCode, error: code, message: friendly[code] ?? fe.message } }
}
