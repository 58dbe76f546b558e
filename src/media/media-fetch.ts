import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns'
import type { IncomingMessage } from 'node:http'
import https from 'node:https'
import { BlockList, isIP } from 'node:net'

/**
 * Fetches a provider's media URL for GET /media/:id, guarded against being turned against us
 * (server-side request forgery): only https, only hosts on the allowlist (every redirect hop
 * too), never an address inside our own network (checked on the resolved address, so a DNS name
 * that points at 127.0.0.1 is refused as well), at most `maxBytes`, within `timeoutMs`.
 * node:https rather than fetch: it lets the connection use our own DNS lookup, which is where
 * the private-address check must happen (fetch offers that only through an undici Agent of a
 * version matched to Node's bundled one).
 */
export interface MediaFetchOptions {
  hosts: readonly string[]
  maxBytes: number
  timeoutMs: number
  /** MessageBird's access key: sent only to MessageBird's own hosts, which need it for media. */
  accessKey: string | null
}

export interface FetchedMedia { contentType: string | null, body: Buffer }

/** Why a fetch was refused or failed: `status` is what GET /media/:id answers. */
export class MediaFetchError extends Error {
  constructor (readonly status: 413 | 502 | 504, message: string) {
    super(message)
    this.name = 'MediaFetchError'
  }
}

const MAX_REDIRECTS = 3

const PRIVATE = new BlockList()
for (const [net, bits] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) {
  PRIVATE.addSubnet(net, bits, 'ipv4')
}
// IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged by its IPv4 address (isPrivateAddress).
for (const [net, bits] of [['::', 127], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) {
  PRIVATE.addSubnet(net, bits, 'ipv6')
}

/** Loopback, private, link-local (cloud metadata), carrier-grade NAT, multicast, unspecified. */
export function isPrivateAddress (address: string): boolean {
  const family = isIP(address)
  if (family === 0) return false
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped !== null) return isPrivateAddress(mapped[1])
  return PRIVATE.check(address, family === 4 ? 'ipv4' : 'ipv6')
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void

/** A dns.lookup that refuses names resolving to a private address; used for every media connection. */
export function guardedLookup (hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err !== null) return callback(err, [])
    const list = addresses
    const refused = list.find((a) => isPrivateAddress(a.address))
    if (refused !== undefined || list.length === 0) {
      const e: NodeJS.ErrnoException = new Error(`${hostname} resolves to ${refused?.address ?? 'nothing'}, an address inside the private network: refused`)
      e.code = 'EMEDIAPRIVATE'
      return callback(e, [])
    }
    if (options.all === true) return callback(null, list)
    callback(null, list[0].address, list[0].family)
  })
}

/** The reason a URL may not be fetched, or null when it may. */
export function refusedUrl (raw: string, hosts: readonly string[]): string | null {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return 'the media URL is not a URL'
  }
  if (url.protocol !== 'https:') return `only https media URLs are fetched (got ${url.protocol.replace(':', '')})`
  if (url.username !== '' || url.password !== '') return 'a media URL with credentials in it is not fetched'
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '')
  if (isPrivateAddress(host)) return `${host} is an address inside the private network`
  if (!hosts.includes(host)) return `${host} is not one of the media hosts (MEDIA_HOSTS: ${hosts.join(', ')})`
  return null
}

function needsAccessKey (host: string): boolean {
  return host === 'messagebird.com' || host.endsWith('.messagebird.com')
}

export async function fetchMedia (raw: string, opts: MediaFetchOptions): Promise<FetchedMedia> {
  let url = raw
  for (let hop = 0; ; hop++) {
    const refused = refusedUrl(url, opts.hosts)
    if (refused !== null) throw new MediaFetchError(502, hop === 0 ? `Not fetched: ${refused}` : `Not fetched: the provider redirected elsewhere, and ${refused}`)
    const res = await get(new URL(url), opts)
    const status = res.statusCode ?? 0
    if (status >= 300 && status < 400 && res.headers.location !== undefined) {
      res.resume()
      if (hop >= MAX_REDIRECTS) throw new MediaFetchError(502, `Not fetched: more than ${MAX_REDIRECTS} redirects`)
      url = new URL(res.headers.location, url).href
      continue
    }
    if (status < 200 || status >= 300) {
      res.resume()
      throw new MediaFetchError(502, `The provider answered HTTP ${status} for this media (it may have expired)`)
    }
    return { contentType: res.headers['content-type'] ?? null, body: await readCapped(res, opts.maxBytes) }
  }
}

async function get (url: URL, opts: MediaFetchOptions): Promise<IncomingMessage> {
  return await new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: 'image/*, audio/*, video/*, application/pdf, */*;q=0.1' }
    if (opts.accessKey !== null && needsAccessKey(url.hostname)) headers.authorization = `AccessKey ${opts.accessKey}`
    const req = https.request(url, { method: 'GET', headers, lookup: guardedLookup, timeout: opts.timeoutMs }, resolve)
    req.on('timeout', () => req.destroy(new MediaFetchError(504, `The provider did not answer within ${opts.timeoutMs} ms (MEDIA_TIMEOUT_MS)`)))
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof MediaFetchError) return reject(err)
      reject(new MediaFetchError(502, err.code === 'EMEDIAPRIVATE' ? `Not fetched: ${err.message}` : `Could not reach the media host (${err.code ?? err.message})`))
    })
    req.end()
  })
}

/** Reads the body, stopping (and dropping the connection) as soon as it passes `maxBytes`. */
async function readCapped (res: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const tooBig = (): MediaFetchError => new MediaFetchError(413, `The media is larger than ${maxBytes} bytes (MEDIA_MAX_BYTES): not shown`)
  const announced = Number(res.headers['content-length'])
  if (Number.isFinite(announced) && announced > maxBytes) {
    res.destroy()
    throw new MediaFetchError(413, `The media is ${announced} bytes, larger than ${maxBytes} bytes (MEDIA_MAX_BYTES): not shown`)
  }
  const chunks: Buffer[] = []
  let total = 0
  try {
    for await (const chunk of res) {
      total += (chunk as Buffer).length
      if (total > maxBytes) {
        res.destroy()
        throw tooBig()
      }
      chunks.push(chunk as Buffer)
    }
  } catch (err) {
    if (err instanceof MediaFetchError) throw err
    throw new MediaFetchError(502, `The media download broke off (${(err as Error).message})`)
  }
  return Buffer.concat(chunks)
}
