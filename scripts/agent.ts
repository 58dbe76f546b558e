import 'dotenv/config'
import { agentCli } from '../src/auth/agent-cli.js'
import { AgentService } from '../src/auth/agent-service.js'
import { systemClock } from '../src/clock.js'
import { agentPasswordFromEnv, ConfigError, loadConfig } from '../src/config.js'
import { createDatabase, type Db } from '../src/db/database.js'
import { migrateToLatest } from '../src/db/migrate.js'

// `npm run agent -- <command>`: agent accounts from the command line (see src/auth/agent-cli.ts).

const EX_CONFIG = 78

/** Reads one line from the terminal without echoing it; from a pipe, reads the first line. */
async function readHidden (prompt: string): Promise<string> {
  const stdin = process.stdin
  process.stderr.write(prompt)
  stdin.setEncoding('utf8')
  if (!stdin.isTTY) {
    let data = ''
    for await (const chunk of stdin) {
      data += chunk as string
      if (data.includes('\n')) break
    }
    process.stderr.write('\n')
    return data.split(/\r?\n/)[0]
  }
  return await new Promise((resolve) => {
    let value = ''
    const finish = (): void => {
      stdin.off('data', onData)
      stdin.setRawMode(false)
      stdin.pause()
      process.stderr.write('\n')
    }
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') {
          finish()
          resolve(value)
          return
        }
        if (ch === '\u0003') {
          finish()
          process.exit(130)
        }
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('')
        else if (ch >= ' ') value += ch
      }
    }
    stdin.setRawMode(true)
    stdin.resume()
    stdin.on('data', onData)
  })
}

let db: Db | undefined
try {
  const config = loadConfig()
  db = createDatabase(config)
  await migrateToLatest(db)
  const agents = new AgentService({ db, clock: systemClock, passwordHashLogN: config.passwordHashLogN })
  process.exitCode = await agentCli(agents, process.argv.slice(2), {
    out: (line) => console.log(line),
    err: (line) => console.error(line),
    envPassword: agentPasswordFromEnv(),
    readHidden,
    interactive: process.stdin.isTTY
  })
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : `agent: ${(err as Error).message}`)
  process.exitCode = err instanceof ConfigError ? EX_CONFIG : 1
} finally {
  await db?.destroy()
}
