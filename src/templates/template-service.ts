import type { Clock } from '../clock.js'
import { isUniqueViolation, type Db } from '../db/database.js'
import { invalid, notFound, UserError } from '../errors.js'
import type { HsmTemplate } from '../messaging/channel.js'
import * as repo from './template-repository.js'

export const MAX_TEMPLATE_PARAMS = 10
export const MAX_PARAM_VALUE_LENGTH = 1024

export interface TemplateForm { namespace?: string, name?: string, language?: string, params?: string }

export interface Template {
  id: number
  namespace: string
  name: string
  language: string
  /** The parameters' names, in order: `{{1}}` of the approved template is the first. */
  params: string[]
  updated_at: string
}

// The shapes WhatsApp gives these: a namespace is the account's id (hex with underscores), a
// template name is lowercase letters, digits and underscores, a language is `en` or `en_US`.
const NAMESPACE = /^[A-Za-z0-9_-]{1,100}$/
const NAME = /^[a-z0-9_]{1,100}$/
const LANGUAGE = /^[a-z]{2,3}(_[A-Z]{2})?$/
const PARAM_NAME = /^[\p{L}\p{N} _.-]{1,40}$/u

/** `/admin/templates/42` → 42; anything else is a template that does not exist, said in words. */
export function templateIdOf (raw: string): number {
  if (!/^[1-9]\d{0,8}$/.test(raw)) throw new UserError(404, `There is no template ${raw.slice(0, 40)}.`, 'NOT_FOUND')
  return Number(raw)
}

function toTemplate (row: repo.TemplateRow): Template {
  return { id: row.id, namespace: row.namespace, name: row.name, language: row.language, params: JSON.parse(row.params) as string[], updated_at: row.updated_at }
}

/** Checks a template form and says every problem in one sentence each; 422 when any. */
export function parseTemplateForm (form: TemplateForm): repo.TemplateFields {
  const problems: Array<{ field: string, message: string }> = []
  const namespace = (form.namespace ?? '').trim()
  const name = (form.name ?? '').trim()
  const language = (form.language ?? '').trim()
  const params = (form.params ?? '').split(/[\n,]/).map((p) => p.trim()).filter((p) => p !== '')
  if (!NAMESPACE.test(namespace)) problems.push({ field: 'namespace', message: namespace === '' ? 'The namespace is missing: copy it from your WhatsApp account in MessageBird.' : 'The namespace is letters, digits, _ and - only (at most 100), as MessageBird shows it.' })
  if (!NAME.test(name)) problems.push({ field: 'name', message: name === '' ? 'The template name is missing.' : `"${name.slice(0, 40)}" is not a WhatsApp template name: lowercase letters, digits and _ only (at most 100), exactly as it was approved.` })
  if (!LANGUAGE.test(language)) problems.push({ field: 'language', message: language === '' ? 'The language is missing (for example en or en_US).' : `"${language.slice(0, 20)}" is not a language code: write it like en, nl or en_US, as the template was approved.` })
  if (params.length > MAX_TEMPLATE_PARAMS) problems.push({ field: 'params', message: `A template here has at most ${MAX_TEMPLATE_PARAMS} parameters; this one lists ${params.length}.` })
  const bad = params.find((p) => !PARAM_NAME.test(p))
  if (bad !== undefined) problems.push({ field: 'params', message: `The parameter name "${bad.slice(0, 40)}" is too long or has symbols: use words, digits, spaces, _ . or - (at most 40 characters).` })
  if (problems.length > 0) throw invalid(`${problems.map((p) => p.message).join(' ')} Nothing was saved.`, problems)
  return { namespace, name, language, params: JSON.stringify(params) }
}

/**
 * The approved WhatsApp templates (admins keep the list; every agent may send them). A template
 * is WhatsApp's to approve: this list only records what was approved, so that the composer can
 * offer it with the right parameters.
 */
export class TemplateService {
  constructor (private readonly deps: { db: Db, clock: Clock }) {}

  async list (): Promise<Template[]> {
    return (await repo.listTemplates(this.deps.db)).map(toTemplate)
  }

  async get (id: number): Promise<Template> {
    const row = await repo.findTemplate(this.deps.db, id)
    if (row === undefined) throw notFound(`Template ${id}`)
    return toTemplate(row)
  }

  async create (agentId: number, form: TemplateForm): Promise<number> {
    const fields = parseTemplateForm(form)
    return await this.unique(fields, async () => await repo.insertTemplate(this.deps.db, fields, agentId, this.deps.clock.now().toISOString()))
  }

  async update (id: number, form: TemplateForm): Promise<void> {
    const fields = parseTemplateForm(form)
    const changed = await this.unique(fields, async () => await repo.updateTemplate(this.deps.db, id, fields, this.deps.clock.now().toISOString()))
    if (!changed) throw notFound(`Template ${id}`)
  }

  async remove (id: number): Promise<void> {
    if (!await repo.deleteTemplate(this.deps.db, id)) throw notFound(`Template ${id}`)
  }

  /** The `hsm` content of template `id` with the agent's values, or a 422 that says what is missing. */
  async fill (id: number, values: string[]): Promise<{ template: Template, hsm: HsmTemplate }> {
    const row = await repo.findTemplate(this.deps.db, id)
    if (row === undefined) throw invalid('That template is no longer in the list; pick another one. Nothing was sent.', [{ field: 'template', message: 'no such template' }])
    const template = toTemplate(row)
    const params = template.params.map((_, i) => (values[i] ?? '').trim())
    const empty = template.params.filter((_, i) => params[i] === '')
    if (empty.length > 0) throw invalid(`Fill in ${empty.map((p) => `"${p}"`).join(', ')} for the template ${template.name}. Nothing was sent.`, empty.map((p) => ({ field: 'params', message: `${p} is empty` })))
    const long = template.params.find((_, i) => params[i].length > MAX_PARAM_VALUE_LENGTH)
    if (long !== undefined) throw invalid(`"${long}" is longer than ${MAX_PARAM_VALUE_LENGTH} characters. Nothing was sent.`, [{ field: 'params', message: `${long} is too long` }])
    return { template, hsm: { namespace: template.namespace, templateName: template.name, language: template.language, params } }
  }

  private async unique<T> (fields: repo.TemplateFields, run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (err) {
      if (isUniqueViolation(err)) throw invalid(`There is already a template ${fields.name} (${fields.language}) in namespace ${fields.namespace}. Edit that one instead. Nothing was saved.`, [{ field: 'name', message: 'already exists' }])
      throw err
    }
  }
}
