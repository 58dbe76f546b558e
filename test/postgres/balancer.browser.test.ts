import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createAgent } from '../auth/agent-session.js'
import { FAST_HASH_ENV } from '../auth/agent-session.js'
import { launch, person, signIn, textIn } from '../browser/harness.js'
import { buildTestApp, createEmptyPostgresDatabase, postgresOnly } from '../helper.js'
import { startInstance } from './instance.js'

// The README's "Running several instances", as CI can run it: two real instances on one
// PostgreSQL database behind nginx configured from deploy/nginx.conf (round-robin, no sticky
// sessions), and an agent in Chromium working through the balancer while texts land on both.

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p))
const skip = postgresOnly('instances behind a load balancer').skip || (NGINX === undefined ? 'nginx is not installed (apt-get install -y nginx-light); .ci/run installs it' : false)

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

t.test('two instances behind nginx (deploy/nginx.conf): an agent signs in, stays live and sees every text, whichever instance took it', { skip }, async (t) => {
  const databaseUrl = await createEmptyPostgresDatabase(t)
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const env = { ...FAST_HASH_ENV, PUBLIC_URL: base, TRUST_PROXY: '1' }
  const [a, b] = await Promise.all([startInstance(t, databaseUrl, env), startInstance(t, databaseUrl, env)])
  const admin = await buildTestApp(t, { env: FAST_HASH_ENV, databaseUrl })
  await createAgent(admin.services, { email: 'ada@example.com', name: 'Ada Lovelace' })

  // nginx runs its workers as `nobody`: its files live in a folder anyone may write.
  const dir = mkdtempSync(join(tmpdir(), 'textdesk-balancer-'))
  chmodSync(dir, 0o777)
  const upstream = (url: string): string => new URL(url).host
  const site = readFileSync('deploy/nginx.conf', 'utf8')
    .replace(/server 10\.0\.0\.11:3000/, `server ${upstream(a.url)}`)
    .replace(/server 10\.0\.0\.12:3000/, `server ${upstream(b.url)}`)
    .replace('listen 443 ssl;', `listen 127.0.0.1:${port};`)
  t.not(site, readFileSync('deploy/nginx.conf', 'utf8'), 'the example configuration is the one used')
  writeFileSync(join(dir, 'site.conf'), site)
  writeFileSync(join(dir, 'nginx.conf'), `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 256; }
http {
  log_format upstream '$request $status $upstream_addr';
  access_log ${dir}/access.log upstream;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  include ${dir}/site.conf;
}
`)
  // nginx binds its port before it returns (and then runs in the background).
  const started = spawnSync(NGINX as string, ['-c', join(dir, 'nginx.conf')], { encoding: 'utf8' })
  t.equal(started.status, 0, `nginx started ${started.stderr}`)
  t.teardown(() => {
    const pid = Number(readFileSync(join(dir, 'nginx.pid'), 'utf8'))
    try { process.kill(pid, 'SIGTERM') } catch {}
    rmSync(dir, { recursive: true, force: true })
  })

  const browser = await launch(t)
  const ada = await person(t, browser, 'Ada')
  await signIn(ada.page, base, 'ada@example.com')
  await ada.page.goto(`${base}/inbox`)
  let navigations = 0
  ada.page.on('framenavigated', (frame) => { if (frame === ada.page.mainFrame()) navigations++ })

  for (let i = 0; i < 6; i++) {
    await textIn(base, `+3161200000${i}`, `Through the balancer ${i}`, `lb-${i}`)
    await ada.page.locator('#ticket-list .ticket-row', { hasText: `Through the balancer ${i}` }).waitFor()
  }
  t.equal(navigations, 0, 'every text arrived live, without a reload')

  const log = readFileSync(join(dir, 'access.log'), 'utf8').split('\n')
  const servedBy = (request: RegExp): Set<string> => new Set(log.filter((l) => request.test(l)).map((l) => l.split(' ').at(-1) as string))
  t.same([...servedBy(/^POST \/webhooks\/messagebird .* 200 /)].sort(), [upstream(a.url), upstream(b.url)].sort(), 'the texts landed on both instances')
  t.ok(servedBy(/^GET \/inbox\/events/).size >= 1, 'the event stream went through the balancer')
  t.ok(servedBy(/^POST \/login .* 303 /).size === 1, 'signed in through the balancer')
  t.same(ada.problems, [], 'no console error, page error or CSP violation')
})
