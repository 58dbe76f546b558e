import type { FastifyInstance } from 'fastify'
import type { Db } from '../db/database.js'
import { notFound, UserError } from '../errors.js'
import { fetchMedia, MediaFetchError, type MediaFetchOptions } from './media-fetch.js'
import { findMedia } from './media-repository.js'
import { isSampleUrl, readSample, sampleOf } from './simulator-samples.js'

// Shown in the agent's browser as they are. SVG is not here: it can carry script.
const INLINE = /^(image\/(jpeg|png|gif|webp|bmp)|audio\/[a-z0-9.+-]+|video\/[a-z0-9.+-]+|application\/pdf)$/

const EXTENSIONS: Record<string, string> = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/gif': 'gif', 'image/webp': 'webp', 'application/pdf': 'pdf', 'audio/mpeg': 'mp3', 'video/mp4': 'mp4' }

/** How a fetched body is answered: its own type, shown inline, when allowed; otherwise a download that no browser renders. */
export function mediaHeaders (id: string, providerType: string | null): Record<string, string> {
  const type = (providerType ?? '').split(';')[0].trim().toLowerCase()
  const inline = INLINE.test(type)
  const name = `media-${id}.${inline ? (EXTENSIONS[type] ?? type.split('/')[1].replace(/[^a-z0-9]/g, '')) : 'bin'}`
  return {
    'content-type': inline ? type : 'application/octet-stream',
    'content-disposition': `${inline ? 'inline' : 'attachment'}; filename="${name}"`,
    'x-content-type-options': 'nosniff',
    // The media of a customer's message: for this agent's browser only, never a shared cache.
    'cache-control': 'private, max-age=3600',
    'content-security-policy': "default-src 'none'; sandbox"
  }
}

/**
 * GET /media/:id: the media of a message, fetched by the service from the provider and passed on
 * to the signed-in agent (the agent scope's hook refuses anyone else), so that an agent's browser
 * never loads a provider URL.
 */
export async function mediaRoutes (app: FastifyInstance, deps: { db: Db, fetch: MediaFetchOptions }): Promise<void> {
  app.get<{ Params: { id: string } }>('/media/:id', {
    schema: { params: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9a-f-]{36}$' } }, required: ['id'] } }
  }, async (req, reply) => {
    const media = await findMedia(deps.db, req.params.id)
    if (media === undefined) throw notFound('This media')
    // The simulator's own pictures (simulator-samples.ts): answered from the bundled files by the
    // fixed list, with the same headers as fetched media; any other `simulator:` name is not ours.
    if (isSampleUrl(media.url)) {
      const sample = sampleOf(media.url)
      if (sample === undefined) throw notFound('This media')
      return await reply.headers(mediaHeaders(media.id, sample.contentType)).send(await readSample(sample))
    }
    try {
      const fetched = await fetchMedia(media.url, deps.fetch)
      return await reply.headers(mediaHeaders(media.id, fetched.contentType ?? media.content_type)).send(fetched.body)
    } catch (err) {
      if (!(err instanceof MediaFetchError)) throw err
      req.log.warn({ mediaId: media.id, status: err.status, reason: err.message }, 'media not served')
      throw new UserError(err.status, err.message, err.status === 413 ? 'MEDIA_TOO_LARGE' : err.status === 504 ? 'MEDIA_TIMEOUT' : 'MEDIA_NOT_FETCHED')
    }
  })
}
