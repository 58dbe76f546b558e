import type { Test } from 'tap'
import type { OutboundRequest } from '../../src/messaging/channel.js'
import { SimulatorChannel } from '../../src/messaging/simulator-channel.js'
import { FAST_HASH_ENV, signedInAgent, type AgentSession } from '../auth/agent-session.js'
import { buildTestApp, FakeClock, form } from '../helper.js'

// Profiles and agent-started conversations at the HTTP edge: the real app on a database of its
// own, a simulator whose sends are recorded (what reached the "network" is the evidence), an
// agent signed in as a browser is, and customers texting through the webhook.

export const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
export const HTML = { accept: 'text/html' }
export type Agent = AgentSession & { id: number, name: string }

export async function setup (t: Test, env: Record<string, string> = {}) {
  const clock = new FakeClock()
  const channel = new SimulatorChannel({ deliveryDelayMs: 0, clock })
  const sent: OutboundRequest[] = []
  const send = channel.send.bind(channel)
  channel.send = async (req) => {
    sent.push(req)
    return await send(req)
  }
  const built = await buildTestApp(t, { clock, channel, env: { ...FAST_HASH_ENV, ...env } })
  const ada = await signedInAgent(built.app, { email: 'ada@example.com', name: 'Ada Lovelace' })
  let n = 0
  const text = async (from: string, body: string): Promise<number> => {
    clock.advance(1000)
    const res = await built.app.inject({ method: 'POST', url: '/webhooks/messagebird', headers: FORM, payload: form({ originator: from.replace('+', ''), payload: body, id: `in-${++n}` }) })
    if (res.statusCode !== 200) throw new Error(`webhook answered ${res.statusCode}: ${res.body}`)
    return res.json().ticket_id as number
  }
  const flush = async () => {
    await built.services.worker.drain()
    await channel.idle()
  }
  const contactOf = async (phone: string) => await built.db.selectFrom('contacts').selectAll().where('phone', '=', phone).executeTakeFirstOrThrow()
  const post = async (agent: Agent, url: string, fields: Record<string, string>) =>
    await agent.inject({ method: 'POST', url, headers: { ...FORM, ...HTML }, payload: form(fields) })
  const get = async (agent: Agent, url: string) => await agent.inject({ method: 'GET', url, headers: HTML })
  return { ...built, clock, channel, sent, ada, text, flush, contactOf, post, get }
}

/** The one-time token a "New message" page carries. */
export function formToken (html: string): string {
  const m = /name="token" value="([^"]+)"/.exec(html)
  if (m === null) throw new Error('no token in the page')
  return m[1]
}
