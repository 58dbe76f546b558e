import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'

// The real entry point, run from source through tap's TypeScript loader: what `npm start` runs.
const LOADER = 'file://' + join(process.cwd(), 'node_modules/@tapjs/typescript/dist/esm/import.mjs')

function start (env: Record<string, string>): { child: ChildProcess, stdout: () => string, stderr: () => string } {
  const child = spawn(process.execPath, ['--import', LOADER, 'src/server.ts'], {
    env: { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'info', SMS_CHANNEL: 'simulator', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc']
  })
  let out = ''
  let err = ''
  child.stdout?.on('data', (b: Buffer) => { out += b.toString() })
  child.stderr?.on('data', (b: Buffer) => { err += b.toString() })
  return { child, stdout: () => out, stderr: () => err }
}

/** The server tells a parent process its address once it listens (server.ts: process.send). */
async function ready (child: ChildProcess): Promise<string> {
  const [message] = await Promise.race([
    once(child, 'message') as Promise<[{ ready: string }]>,
    once(child, 'exit').then(([code]) => { throw new Error(`the server exited with ${String(code)} before listening`) })
  ])
  return message.ready
}

t.test('a second start on a busy port says so in one sentence and exits with 75', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'textdesk-start-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = { DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}` }

  const first = start({ ...env, PORT: '0' })
  t.teardown(() => { if (first.child.exitCode === null) first.child.kill('SIGKILL') })
  const address = await ready(first.child)
  const port = new URL(address).port
  t.ok(Number(port) > 0, `the first instance listens at ${address}`)

  const second = start({ ...env, PORT: port })
  const [code] = await once(second.child, 'exit') as [number | null]
  t.equal(code, 75, 'exit code 75 (EX_TEMPFAIL)')
  t.equal(second.stderr().trim(), `port ${port} is in use — is Textdesk already running? Set PORT to use another port.`, 'one plain sentence, no stack trace')
  t.notMatch(second.stdout(), /Server listening/)

  const health = await fetch(`${address}/healthz`)
  t.equal(health.status, 200, 'the first instance is unharmed')
  t.equal((await fetch(`${address}/readyz`)).status, 200, 'and its outbox worker runs')

  // Not a terminal: one JSON object per line, for log shippers.
  const lines = first.stdout().trim().split('\n')
  t.ok(lines.length > 0)
  for (const line of lines) t.doesNotThrow(() => JSON.parse(line), line)
  t.notMatch(first.stdout(), /"url":"\/(healthz|readyz)"/, 'health checks are not logged at info')
  t.match(first.stdout(), `"msg":"Simulator phone: http://127.0.0.1:${port}/simulator"`, 'the start-up hint names the port really used')

  first.child.kill('SIGTERM')
  const [stopped] = await once(first.child, 'exit') as [number | null]
  t.equal(stopped, 0, 'a clean stop exits with 0')
})
