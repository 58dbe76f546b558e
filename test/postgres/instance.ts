import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import type { Test } from 'tap'

// A real instance of the service for the multi-instance tests: `src/server.ts` in a process of
// its own (its own pool, outbox worker and LISTEN connection), as a supervisor starts it.

const LOADER = 'file://' + join(process.cwd(), 'node_modules/@tapjs/typescript/dist/esm/import.mjs')

export interface Instance { url: string, child: ChildProcess }

export async function startInstance (t: Test, databaseUrl: string, env: Record<string, string> = {}): Promise<Instance> {
  const child = spawn(process.execPath, ['--import', LOADER, 'src/server.ts'], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      SMS_CHANNEL: 'simulator',
      SIMULATOR_DELIVERY_DELAY_MS: '0',
      HOST: '127.0.0.1',
      PORT: '0',
      DATABASE_URL: databaseUrl,
      DATABASE_POOL_SIZE: '5',
      ALLOW_UNSIGNED_WEBHOOKS: 'true',
      WEBHOOK_RATE_LIMIT_PER_MINUTE: '100000',
      ...env
    },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc']
  })
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    await once(child, 'exit')
  })
  const [message] = await Promise.race([
    once(child, 'message') as Promise<[{ ready: string }]>,
    once(child, 'exit').then(([code]) => { throw new Error(`an instance exited with ${String(code)} before listening`) })
  ])
  return { url: message.ready, child }
}
