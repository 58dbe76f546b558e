import Fastify from 'fastify'

// The yardstick: a Fastify route that parses the same form body and answers OK, nothing else.
const app = Fastify({ logger: false })
app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer' }, (_req, body, done) => {
  done(null, Object.fromEntries(new URLSearchParams((body as Buffer).toString('utf8'))))
})
app.post('/webhooks/messagebird', async () => 'OK')
const address = await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
process.send?.({ ready: address })
