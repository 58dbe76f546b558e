import type { Clock } from '../clock.js'
import { isUniqueViolation, type Db } from '../db/database.js'
import type { CannedReply } from '../db/schema.js'
import { invalid, UserError } from '../errors.js'
import { hasLookalikes, replaceLookalikes } from '../messaging/gsm-lookalikes.js'
import { MAX_SMS_TEXT_LENGTH, nonGsmCharacters, normaliseLineBreaks, smsParts, type SmsParts } from '../messaging/sms-parts.js'
import * as repo from './canned-repository.js'
import { fillVariables, knownVariablesList, variableProblem, type VariableValues } from './variables.js'

export const MAX_CANNED_NAME_LENGTH = 32
export const MAX_CANNED_BODY_LENGTH = MAX_SMS_TEXT_LENGTH
const NAME = /^[a-z0-9_-]+$/

export interface CannedReplyInput { name?: string, body?: string }

/** How a canned reply's text travels: parts and encoding as written, and what the GSM-7 fix would give. */
export interface CannedSms extends SmsParts {
  /** Characters that make it UCS-2. */
  nonGsm: string[]
  /** Look-alikes are present: the fix would change the text. */
  fixable: boolean
  /** The encoding after the fix. */
  fixedEncoding: SmsParts['encoding']
}

export function cannedSms (body: string): CannedSms {
  const parts = smsParts(body)
  const fixable = hasLookalikes(body)
  return { ...parts, nonGsm: nonGsmCharacters(body), fixable, fixedEncoding: fixable ? smsParts(replaceLookalikes(body)).encoding : parts.encoding }
}

/** `/canned/7` → 7; anything else is a reply that does not exist, said in words. */
export function cannedIdOf (raw: string): number {
  if (!/^[1-9]\d{0,8}$/.test(raw)) throw notFoundReply(raw)
  return Number(raw)
}

const notFoundReply = (what: string | number) => new UserError(404, `There is no canned reply ${String(what).slice(0, 40)}; it may have been deleted.`, 'NOT_FOUND')

/** The name, trimmed, or a 422 that says what is wrong with it. */
export function validName (raw: string | undefined): string {
  const name = (raw ?? '').trim()
  const field = 'name'
  if (name === '') throw invalid('Give the canned reply a name, such as "greeting": agents type /greeting in the reply to insert it.', [{ field, message: 'must not be empty' }])
  if (name.length > MAX_CANNED_NAME_LENGTH) throw invalid(`The name is ${name.length} characters long; the limit is ${MAX_CANNED_NAME_LENGTH}.`, [{ field, message: `at most ${MAX_CANNED_NAME_LENGTH} characters` }])
  if (!NAME.test(name)) {
    const lower = name.toLowerCase()
    if (NAME.test(lower)) throw invalid(`Names are lowercase: use "${lower}" instead of "${name}".`, [{ field, message: 'lowercase letters, digits, - and _ only' }])
    const bad = [...new Set([...lower].filter((ch) => !/[a-z0-9_-]/.test(ch)))].map((ch) => ch === ' ' ? 'spaces' : `"${ch}"`)
    throw invalid(`A name may hold lowercase letters, digits, - and _ only; "${name.slice(0, 40)}" has ${bad.join(', ')}.${bad.includes('spaces') ? ' Use - or _ between words.' : ''}`, [{ field, message: 'lowercase letters, digits, - and _ only' }])
  }
  return name
}

/** The text, line breaks normalised and trimmed, or a 422: empty, too long, or a variable that is unknown or not closed. */
export function validBody (raw: string | undefined): string {
  const body = normaliseLineBreaks(raw ?? '').trim()
  const field = 'body'
  if (body === '') throw invalid('The text is empty. Write the reply agents should insert.', [{ field, message: 'must not be empty' }])
  if (body.length > MAX_CANNED_BODY_LENGTH) throw invalid(`The text is ${body.length} characters long; the limit is ${MAX_CANNED_BODY_LENGTH}, as for a reply. Shorten it; nothing was saved.`, [{ field, message: `at most ${MAX_CANNED_BODY_LENGTH} characters` }])
  const problem = variableProblem(body)
  if (problem?.kind === 'unknown') {
    const names = problem.variables.map((v) => `{{${v}}}`)
    throw invalid(`Unknown variable${names.length > 1 ? 's' : ''} ${names.join(', ')}. The known variables are ${knownVariablesList()}. Nothing was saved.`, [{ field, message: `unknown variable ${names.join(', ')}` }])
  }
  if (problem?.kind === 'unclosed') {
    throw invalid(`A variable is not closed: write variables with two braces on each side, like {{customer.name}}. The known variables are ${knownVariablesList()}. Nothing was saved.`, [{ field, message: 'a {{ or }} without its pair' }])
  }
  return body
}

const duplicate = (name: string) => invalid(`There is already a canned reply named "${name}". Choose another name, or edit that one.`, [{ field: 'name', message: 'already taken' }])

/** Shared canned replies: every agent may create, edit and delete them; each change is recorded with who made it. */
export class CannedReplyService {
  constructor (private readonly deps: { db: Db, clock: Clock }) {}

  private now (): string {
    return this.deps.clock.now().toISOString()
  }

  async list () {
    const rows = await repo.listCannedRepliesWithEditors(this.deps.db)
    return rows.map((r) => ({ ...r, sms: cannedSms(r.body) }))
  }

  async get (id: number): Promise<CannedReply> {
    const row = await repo.findCannedReply(this.deps.db, id)
    if (row === undefined) throw notFoundReply(id)
    return row
  }

  async history (id: number) {
    return await repo.listCannedReplyChanges(this.deps.db, id)
  }

  async create (agentId: number, input: CannedReplyInput): Promise<number> {
    const name = validName(input.name)
    const body = validBody(input.body)
    return await this.uniquely(name, async () => await this.deps.db.transaction().execute(async (trx) => {
      const now = this.now()
      const id = await repo.insertCannedReply(trx, { name, body }, agentId, now)
      await repo.recordCannedReplyChange(trx, { cannedReplyId: id, action: 'created', name, body, agentId }, now)
      return id
    }))
  }

  async update (id: number, agentId: number, input: CannedReplyInput): Promise<void> {
    const name = validName(input.name)
    const body = validBody(input.body)
    await this.uniquely(name, async () => await this.deps.db.transaction().execute(async (trx) => {
      const now = this.now()
      if (!await repo.updateCannedReply(trx, id, { name, body }, agentId, now)) throw notFoundReply(id)
      await repo.recordCannedReplyChange(trx, { cannedReplyId: id, action: 'updated', name, body, agentId }, now)
    }), id)
  }

  async remove (id: number, agentId: number): Promise<void> {
    await this.deps.db.transaction().execute(async (trx) => {
      const gone = await repo.deleteCannedReply(trx, id)
      if (gone === undefined) throw notFoundReply(id)
      await repo.recordCannedReplyChange(trx, { cannedReplyId: id, action: 'deleted', name: gone.name, body: gone.body, agentId }, this.now())
    })
  }

  /** Replaces the look-alike characters of a reply's text (curly quotes, long dashes, …); whether it changed. */
  async fixGsm (id: number, agentId: number): Promise<{ changed: boolean }> {
    return await this.deps.db.transaction().execute(async (trx) => {
      const row = await repo.findCannedReply(trx, id)
      if (row === undefined) throw notFoundReply(id)
      const fixed = replaceLookalikes(row.body)
      if (fixed === row.body) return { changed: false }
      // "…" becomes "...": a text at the limit could pass it. Checked like any save.
      const body = validBody(fixed)
      const now = this.now()
      await repo.updateCannedReply(trx, id, { name: row.name, body }, agentId, now)
      await repo.recordCannedReplyChange(trx, { cannedReplyId: id, action: 'gsm_fix', name: row.name, body, agentId }, now)
      return { changed: true }
    })
  }

  /** Every reply filled in for one ticket and agent: what the composer inserts. */
  async filledFor (values: VariableValues): Promise<Array<{ id: number, name: string, text: string }>> {
    const rows = await repo.listCannedReplies(this.deps.db)
    return rows.map((r) => ({ id: r.id, name: r.name, text: fillVariables(r.body, values) }))
  }

  /**
   * Runs a write whose name must be unique: a clear 422 when another reply has the name, also
   * when two agents take it at the same moment (the unique index refuses the second).
   */
  private async uniquely<T> (name: string, write: () => Promise<T>, self?: number): Promise<T> {
    const other = await repo.findCannedReplyByName(this.deps.db, name)
    if (other !== undefined && other.id !== self) throw duplicate(name)
    try {
      return await write()
    } catch (err) {
      if (isUniqueViolation(err)) throw duplicate(name)
      throw err
    }
  }
}
