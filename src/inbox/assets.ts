import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { lookalikesScript } from '../messaging/gsm-lookalikes.js'
import { PUBLIC_DIR } from '../paths.js'

// The inbox's static files, read once. Scripts are external files so the Content-Security-Policy
// can forbid inline script. gsm-lookalikes.js is written from the server's own module, so the
// composer and the canned replies' fix replace the same characters.
const FILES: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'gsm-lookalikes.js': 'text/javascript; charset=utf-8'
}
const GENERATED: Record<string, () => string> = {
  'gsm-lookalikes.js': lookalikesScript
}

export async function staticAssets (app: FastifyInstance): Promise<void> {
  const cache = new Map(Object.keys(FILES).map((name) => [name, GENERATED[name] !== undefined ? Buffer.from(GENERATED[name](), 'utf8') : readFileSync(join(PUBLIC_DIR, name))]))
  // Public: the sign-in page needs the stylesheet before anyone is signed in.
  app.get<{ Params: { name: string } }>('/assets/:name', { config: { public: true } }, async (req, reply) => {
    const body = cache.get(req.params.name)
    if (body === undefined) return await reply.callNotFound()
    return await reply.type(FILES[req.params.name]).header('cache-control', 'public, max-age=300').send(body)
  })
}
