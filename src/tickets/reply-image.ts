import type { Channel } from '../db/schema.js'
import { invalid } from '../errors.js'
import { CHANNEL_LABELS } from '../messaging/channel.js'
import { isNorthAmerican } from '../messaging/messagebird-channel.js'
import { providerRecipient } from '../messaging/address.js'

/** MessageBird's MMS API takes media URLs of up to this many characters (as the API's `media_url`). */
export const MAX_IMAGE_URL = 2048

/**
 * The composer's "Attach an image (MMS)": an https URL the provider fetches when it sends, or null
 * when none was given. Anything else is refused (422) before anything is stored.
 */
export function replyImage (raw: string | undefined, opts: { failover?: boolean }): string | null {
  const url = (raw ?? '').trim()
  if (url === '') return null
  let https = false
  try { https = new URL(url).protocol === 'https:' } catch {}
  if (!https || url.length > MAX_IMAGE_URL) {
    throw invalid(`The image must be an https link (https://…) of at most ${MAX_IMAGE_URL} characters, which the provider can fetch; "${url.slice(0, 60)}" is not one. Nothing was sent.`, [{ field: 'media_url', message: `must be an https URL of at most ${MAX_IMAGE_URL} characters` }])
  }
  if (opts.failover === true) throw invalid('An image goes out as one MMS to the customer\'s phone; failover is not offered with an image. Untick "Send with failover" or remove the image. Nothing was sent.', [{ field: 'media_url', message: 'not with failover' }])
  return url
}

/** Whether an address can be sent an MMS: a US or Canadian phone number (MessageBird's MMS reach). */
export function mmsReachable (channel: Channel, address: string): boolean {
  return (channel === 'sms' || channel === 'mms') && isNorthAmerican(address)
}

/** Where a reply with an image goes: the same phone number, on channel `mms`; 422 when it cannot. */
export function mmsTarget (target: { channel: Channel, address: string }, mmsOffered: boolean): { channel: Channel, address: string } {
  const field = [{ field: 'media_url', message: 'an image goes by MMS to a US or Canadian phone number' }]
  if (target.channel !== 'sms' && target.channel !== 'mms') {
    throw invalid(`An image goes out by MMS, to a phone number; ${CHANNEL_LABELS[target.channel]} ${providerRecipient(target.address)} cannot take one here. Remove the image, or pick their phone number in "Send to". Nothing was sent.`, field)
  }
  if (!isNorthAmerican(target.address)) {
    throw invalid(`MMS reaches US and Canadian numbers only (+1); ${target.address} is not one. Remove the image to send the text by SMS. Nothing was sent.`, field)
  }
  if (!mmsOffered) throw invalid('The configured provider does not send MMS, so an image cannot be attached. Remove the image to send the text by SMS. Nothing was sent.', field)
  return { channel: 'mms', address: target.address }
}
