import { systemClock, type Clock } from '../clock.js'
import type { Db } from '../db/database.js'
import { UserError } from '../errors.js'
import { ApiKeyService } from './api-keys.js'

export const API_KEY_USAGE = `Usage:
  npm run api-key -- create --name <name>   create a key; it is printed once, on the last line
  npm run api-key -- list                   list keys (name, visible prefix, created, last used, revoked)
  npm run api-key -- revoke --name <name>   revoke the active key with that name`

function option (args: string[], name: string): string | null {
  const i = args.indexOf(`--${name}`)
  if (i >= 0) return args[i + 1] ?? null
  const inline = args.find((a) => a.startsWith(`--${name}=`))
  return inline === undefined ? null : inline.slice(name.length + 3)
}

/**
 * The api-key command, separate from its entry script so tests can run it on their own database.
 * Returns the process exit code; everything meant for the person goes through `out` and `err`.
 */
export async function runApiKeyCli (args: string[], io: { db: Db, clock?: Clock, out: (line: string) => void, err: (line: string) => void }): Promise<number> {
  const keys = new ApiKeyService({ db: io.db, clock: io.clock ?? systemClock })
  const [command] = args
  try {
    if (command === 'create') {
      const name = option(args, 'name')
      if (name === null || name.trim() === '') {
        io.err('create needs a name: npm run api-key -- create --name bakery')
        return 2
      }
      const created = await keys.create(name)
      io.out(`Created API key "${created.name}" (${created.prefix}…).`)
      io.out('It is shown only now and stored only as a hash: copy it into the client\'s configuration.')
      io.out('Use it as: Authorization: Bearer <key>')
      io.out(created.key)
      return 0
    }
    if (command === 'list') {
      const rows = await keys.list()
      if (rows.length === 0) {
        io.out('No API keys yet. Create one with: npm run api-key -- create --name <name>')
        return 0
      }
      io.out(['NAME', 'PREFIX', 'CREATED', 'LAST USED', 'STATUS'].join('\t'))
      for (const r of rows) {
        io.out([r.name, `${r.prefix}…`, r.created_at, r.last_used_at ?? 'never', r.revoked_at === null ? 'active' : `revoked ${r.revoked_at}`].join('\t'))
      }
      return 0
    }
    if (command === 'revoke') {
      const name = option(args, 'name')
      if (name === null || name.trim() === '') {
        io.err('revoke needs a name: npm run api-key -- revoke --name bakery')
        return 2
      }
      await keys.revoke(name)
      io.out(`Revoked the API key "${name.trim()}". Requests with it now get 401.`)
      return 0
    }
    io.err(command === undefined ? API_KEY_USAGE : `Unknown command "${command}".\n${API_KEY_USAGE}`)
    return 2
  } catch (err) {
    if (err instanceof UserError) {
      io.err(err.message)
      return 1
    }
    throw err
  }
}
