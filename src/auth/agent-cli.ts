import { parseArgs } from 'node:util'
import { UserError } from '../errors.js'
import { FIRST_AGENT_COMMAND, type AgentService } from './agent-service.js'
import { passwordProblem } from './password.js'

// The logic of `npm run agent`, apart from the terminal, so it can be tested in-process.

export const USAGE = `Usage:
  npm run agent -- add --email ada@example.com --name "Ada Lovelace" [--admin]
  npm run agent -- list
  npm run agent -- disable --email ada@example.com
  npm run agent -- enable --email ada@example.com
  npm run agent -- reset-password --email ada@example.com

add and reset-password read the password from AGENT_PASSWORD, or ask for it (input hidden).
Passwords need at least 12 characters.`

// sysexits(3): 64 usage, 65 bad input; 1 for "no such agent" / "already exists".
export const EX_USAGE = 64
export const EX_DATAERR = 65

export interface CliIo {
  out: (line: string) => void
  err: (line: string) => void
  /** AGENT_PASSWORD, when set. */
  envPassword: string | null
  /** Asks for a line without echoing it (or reads it from a pipe). */
  readHidden: (prompt: string) => Promise<string>
  /** True on a terminal: the password is asked twice. */
  interactive: boolean
}

class CliError extends Error {
  constructor (message: string, readonly exitCode: number) {
    super(message)
  }
}

const usage = (message: string): CliError => new CliError(`${message}\n\n${USAGE}`, EX_USAGE)

async function newPassword (io: CliIo): Promise<string> {
  const password = io.envPassword ?? await io.readHidden('Password (at least 12 characters): ')
  const problem = passwordProblem(password)
  if (problem !== null) throw new CliError(problem + (io.envPassword !== null ? ' (from AGENT_PASSWORD)' : ''), EX_DATAERR)
  if (io.envPassword === null && io.interactive && await io.readHidden('Repeat the password: ') !== password) {
    throw new CliError('The two passwords differ; nothing was changed.', EX_DATAERR)
  }
  return password
}

function requireEmail (email: string | undefined): string {
  if (email === undefined || email.trim() === '') throw usage('--email is required.')
  return email
}

function plural (n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

/** Runs one command; returns the process exit code. */
export async function agentCli (agents: AgentService, argv: string[], io: CliIo): Promise<number> {
  try {
    await run(agents, argv, io)
    return 0
  } catch (err) {
    if (err instanceof CliError) {
      io.err(err.message)
      return err.exitCode
    }
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) {
      io.err(`${(err as Error).message}\n\n${USAGE}`)
      return EX_USAGE
    }
    if (err instanceof UserError) {
      io.err(err.message)
      return err.statusCode === 422 ? EX_DATAERR : 1
    }
    throw err
  }
}

async function run (agents: AgentService, argv: string[], io: CliIo): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      email: { type: 'string' },
      name: { type: 'string' },
      admin: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  const [command, ...extra] = positionals
  if (values.help === true) {
    io.out(USAGE)
    return
  }
  if (command === undefined) throw usage('No command given.')
  if (extra.length > 0) throw usage(`Unexpected argument: ${extra[0]}`)

  switch (command) {
    case 'add': {
      const email = requireEmail(values.email)
      if (values.name === undefined || values.name.trim() === '') throw usage('--name is required (it is shown next to the agent\'s replies).')
      const password = await newPassword(io)
      const agent = await agents.add({ email, name: values.name, role: values.admin === true ? 'admin' : 'agent', password })
      io.out(`Created ${agent.role} ${agent.email} (${agent.name}). They can sign in at /login.`)
      return
    }
    case 'list': {
      const rows = await agents.list()
      if (rows.length === 0) {
        io.out(`No agents yet. Create the first one with: ${FIRST_AGENT_COMMAND}`)
        return
      }
      const cols = ['id', 'email', 'name', 'role', 'status'] as const
      const table = rows.map((a) => ({ id: String(a.id), email: a.email, name: a.name, role: a.role, status: a.disabled_at === null ? 'active' : `disabled ${a.disabled_at.slice(0, 10)}` }))
      const header = Object.fromEntries(cols.map((c) => [c, c.toUpperCase()])) as Record<typeof cols[number], string>
      const width = Object.fromEntries(cols.map((c) => [c, Math.max(...[header, ...table].map((r) => [...r[c]].length))]))
      for (const r of [header, ...table]) io.out(cols.map((c) => r[c].padEnd(width[c])).join('  ').trimEnd())
      return
    }
    case 'disable': {
      const { agent, sessionsEnded } = await agents.disable(requireEmail(values.email))
      io.out(`Disabled ${agent.email}; ${plural(sessionsEnded, 'session')} ended. Re-enable with: npm run agent -- enable --email ${agent.email}`)
      return
    }
    case 'enable': {
      const agent = await agents.enable(requireEmail(values.email))
      io.out(`Enabled ${agent.email}.`)
      return
    }
    case 'reset-password': {
      const email = requireEmail(values.email)
      const password = await newPassword(io)
      const { agent, sessionsEnded } = await agents.resetPassword(email, password)
      io.out(`New password set for ${agent.email}; ${plural(sessionsEnded, 'session')} ended.`)
      return
    }
    default:
      throw usage(`Unknown command "${command}".`)
  }
}
