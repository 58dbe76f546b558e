import nock from 'nock'
import type { Test } from 'tap'
import { MessageBirdChannel } from '../../src/messaging/messagebird-channel.js'
import { buildTestApp, type TestAppOptions } from '../helper.js'

// The real app with the real MessageBird SDK, its HTTPS calls intercepted by nock: what reached
// MessageBird's API is the evidence of what was sent.

const API = 'https://rest.messagebird.com'
export const MB_ENV = { SMS_CHANNEL: 'messagebird', MESSAGEBIRD_API_KEY: 'test_key', MESSAGEBIRD_ORIGINATOR: '3197010260000', PUBLIC_URL: 'https://support.example.com' }

export interface SentSms { recipients: string, body: string }

/** Builds the app on the MessageBird channel; `sent` lists every SMS the SDK posted, and no other host can be reached. */
export async function messagebirdApp (t: Test, opts: TestAppOptions = {}) {
  nock.disableNetConnect()
  const sent: SentSms[] = []
  nock(API).post('/messages').reply(201, (_uri, body) => {
    sent.push(body as SentSms)
    return { id: `mb-out-${sent.length}` }
  }).persist()
  t.teardown(() => {
    nock.cleanAll()
    nock.enableNetConnect()
  })
  const channel = new MessageBirdChannel({ apiKey: 'test_key', originator: '3197010260000', whatsappChannelId: null, timeoutMs: 1000 })
  const built = await buildTestApp(t, { ...opts, channel, env: { ...MB_ENV, ...opts.env } })
  /** Hands every due send to the SDK (the worker is not running in tests). */
  const drain = async (): Promise<number> => await built.services.worker.drain()
  return { ...built, sent, drain }
}
