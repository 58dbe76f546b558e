import t from 'tap'
import { agentCli, type CliIo } from '../../src/auth/agent-cli.js'
import { buildTestApp } from '../helper.js'
import { FAST_HASH_ENV, signIn } from './agent-session.js'

function io (opts: { envPassword?: string, typed?: string[], interactive?: boolean } = {}) {
  const out: string[] = []
  const err: string[] = []
  const prompts: string[] = []
  const typed = [...(opts.typed ?? [])]
  const cli: CliIo = {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    envPassword: opts.envPassword ?? null,
    readHidden: async (prompt) => { prompts.push(prompt); return typed.shift() ?? '' },
    interactive: opts.interactive ?? false
  }
  return { cli, out, err, prompts, text: () => out.join('\n'), errors: () => err.join('\n') }
}

t.test('add, list, disable, enable and reset-password', async (t) => {
  const { services, app, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agents = services.agents

  const empty = io()
  t.equal(await agentCli(agents, ['list'], empty.cli), 0)
  t.match(empty.text(), 'No agents yet. Create the first one with: npm run agent -- add --email you@example.com --name "Your Name" --admin')

  const add = io({ envPassword: 'correct horse battery staple' })
  t.equal(await agentCli(agents, ['add', '--email', 'Ada@Example.com', '--name', 'Ada Lovelace', '--admin'], add.cli), 0, add.errors())
  t.equal(add.text(), 'Created admin ada@example.com (Ada Lovelace). They can sign in at /login.')
  t.same(add.prompts, [], 'AGENT_PASSWORD means no prompt')

  const prompted = io({ typed: ['another long passphrase', 'another long passphrase'], interactive: true })
  t.equal(await agentCli(agents, ['add', '--email', 'bob@example.com', '--name', 'Bob'], prompted.cli), 0, prompted.errors())
  t.same(prompted.prompts, ['Password (at least 12 characters): ', 'Repeat the password: '])

  const list = io()
  await agentCli(agents, ['list'], list.cli)
  t.same(list.out, [
    'ID  EMAIL            NAME          ROLE   STATUS',
    '1   ada@example.com  Ada Lovelace  admin  active',
    '2   bob@example.com  Bob           agent  active'
  ])

  const bob = await signIn(app, 'bob@example.com', 'another long passphrase')
  const disable = io()
  t.equal(await agentCli(agents, ['disable', '--email', 'bob@example.com'], disable.cli), 0)
  t.equal(disable.text(), 'Disabled bob@example.com; 1 session ended. Re-enable with: npm run agent -- enable --email bob@example.com')
  t.equal((await bob.inject({ method: 'GET', url: '/inbox?view=open', headers: { accept: 'text/html' } })).statusCode, 303, 'the disabled agent is signed out')
  const listed = io()
  await agentCli(agents, ['list'], listed.cli)
  t.match(listed.out[2], /^2\s+bob@example.com\s+Bob\s+agent\s+disabled 2026-01-01$/)
  t.equal(await agentCli(agents, ['enable', '--email', 'bob@example.com'], io().cli), 0)

  const reset = io({ envPassword: 'a completely new passphrase' })
  t.equal(await agentCli(agents, ['reset-password', '--email', 'ada@example.com'], reset.cli), 0)
  t.equal(reset.text(), 'New password set for ada@example.com; 0 sessions ended.')
  t.equal((await services.agents.authenticate('ada@example.com', 'a completely new passphrase')).ok, true)
  const hashes = await db.selectFrom('agents').select('password_hash').execute()
  for (const h of hashes) t.notMatch(h.password_hash, /passphrase|staple/)
})

t.test('clear errors and exit codes; nothing changes on an error', async (t) => {
  const { services, db } = await buildTestApp(t, { env: FAST_HASH_ENV })
  const agents = services.agents
  const run = async (args: string[], opts: Parameters<typeof io>[0] = {}) => {
    const x = io(opts)
    const code = await agentCli(agents, args, x.cli)
    return { code, stderr: x.errors(), stdout: x.text() }
  }

  const weak = await run(['add', '--email', 'a@example.com', '--name', 'A'], { envPassword: 'short' })
  t.equal(weak.code, 65)
  t.equal(weak.stderr, 'The password is too short (5 characters): use at least 12. A few unrelated words make a strong one. (from AGENT_PASSWORD)')
  const weakTyped = await run(['add', '--email', 'a@example.com', '--name', 'A'], { typed: ['elevenchars'], interactive: true })
  t.equal(weakTyped.code, 65)
  t.match(weakTyped.stderr, /too short \(11 characters\)/)
  const differ = await run(['add', '--email', 'a@example.com', '--name', 'A'], { typed: ['long enough password', 'long enough passw0rd'], interactive: true })
  t.equal(differ.code, 65)
  t.equal(differ.stderr, 'The two passwords differ; nothing was changed.')
  t.equal((await db.selectFrom('agents').select('id').execute()).length, 0, 'nothing was created')

  const noEmail = await run(['add', '--name', 'A'], { envPassword: 'long enough password' })
  t.equal(noEmail.code, 64)
  t.match(noEmail.stderr, /^--email is required\.\n\nUsage:/)
  t.match((await run(['add', '--email', 'a@example.com'], { envPassword: 'long enough password' })).stderr, /--name is required/)
  t.equal((await run([])).code, 64)
  const unknown = await run(['frobnicate'])
  t.equal(unknown.code, 64)
  t.match(unknown.stderr, /Unknown command "frobnicate"/)
  t.equal((await run(['list', '--bogus'])).code, 64, 'unknown options are usage errors')
  t.equal((await run(['list', 'extra'])).code, 64)
  t.match((await run(['--help'])).stdout, /^Usage:/)

  const missing = await run(['disable', '--email', 'ghost@example.com'])
  t.equal(missing.code, 1)
  t.equal(missing.stderr, 'The agent ghost@example.com was not found')
  t.equal((await run(['reset-password', '--email', 'ghost@example.com'], { envPassword: 'long enough password' })).code, 1)

  t.equal((await run(['add', '--email', 'a@example.com', '--name', 'A'], { envPassword: 'long enough password' })).code, 0)
  const dup = await run(['add', '--email', 'A@example.com', '--name', 'A'], { envPassword: 'long enough password' })
  t.equal(dup.code, 1)
  t.equal(dup.stderr, 'An agent with the email a@example.com already exists.')

  const badEmail = await run(['add', '--email', 'nope', '--name', 'A'], { envPassword: 'long enough password' })
  t.equal(badEmail.code, 65)
  t.equal(badEmail.stderr, '"nope" is not an email address.')
})
