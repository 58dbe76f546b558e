import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import type { Services } from '../../src/app.js'

/** A client for the notifications API with a freshly created key. */
export async function apiClient (app: FastifyInstance, services: Services, name = 'bakery') {
  const { key } = await services.apiKeys.create(name)
  const call = async (method: InjectOptions['method'], url: string, payload?: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> =>
    await app.inject({ method, url, headers: { authorization: `Bearer ${key}`, ...headers }, ...(payload !== undefined ? { payload: payload as InjectOptions['payload'] } : {}) })
  return {
    key,
    post: async (url: string, payload: unknown, headers?: Record<string, string>) => await call('POST', url, payload, headers),
    get: async (url: string) => await call('GET', url)
  }
}

export const CUPCAKES = 'Your cupcakes are ready for collection'

/** The seeds' bakery workflow: SMS to the first number, then the second if not delivered in time. */
export function bakeryWorkflow (first = '31612345671', second = '31612345672', expiry = 15) {
  return {
    template: 'failover',
    workflow: [
      {
        from: { type: 'sms', number: '31970102600' },
        to: { type: 'sms', number: first },
        message: { content: { type: 'text', text: CUPCAKES } },
        failover: { expiry_time: expiry, condition_status: 'delivered' }
      },
      {
        from: { type: 'sms', number: '31970102600' },
        to: { type: 'sms', number: second },
        message: { content: { type: 'text', text: 'Message retry. ' + CUPCAKES } }
      }
    ]
  }
}
