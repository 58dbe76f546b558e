import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PUBLIC_DIR } from '../paths.js'

/**
 * The pictures the simulator's phone can send as an MMS, bundled with the service. Stored on the
 * message as `simulator:<name>`: a scheme no webhook or API request can store (both take http(s)
 * URLs only), so only the simulator's own routes produce it, and GET /media/:id answers it from
 * this fixed list without fetching anything.
 */
export const SAMPLE_PICTURES = [
  { name: 'lid.png', label: 'A cracked lid', contentType: 'image/png' },
  { name: 'parcel.png', label: 'A parcel', contentType: 'image/png' },
  { name: 'receipt.png', label: 'A receipt', contentType: 'image/png' }
] as const

export type SamplePicture = typeof SAMPLE_PICTURES[number]

const SCHEME = 'simulator:'

export function sampleUrl (sample: SamplePicture): string {
  return SCHEME + sample.name
}

export function isSampleUrl (url: string): boolean {
  return url.startsWith(SCHEME)
}

/** The sample a stored `simulator:` URL names, or undefined for any other name. */
export function sampleOf (url: string): SamplePicture | undefined {
  if (!isSampleUrl(url)) return undefined
  const name = url.slice(SCHEME.length)
  return SAMPLE_PICTURES.find((s) => s.name === name)
}

/** A sample by the name the phone's form posts; undefined when it is not one of the list. */
export function sampleNamed (name: unknown): SamplePicture | undefined {
  return SAMPLE_PICTURES.find((s) => s.name === name)
}

/** The bundled file; the path is built from the list's own entry, never from a request. */
export async function readSample (sample: SamplePicture): Promise<Buffer> {
  return await readFile(join(PUBLIC_DIR, 'samples', sample.name))
}
