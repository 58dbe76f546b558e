import type { Executor } from '../db/database.js'
import type { Selectable } from 'kysely'
import type { WhatsappTemplatesTable } from '../db/schema.js'

// All SQL for WhatsApp templates: a handful of rows per desk, read whole, in name order.

export type TemplateRow = Selectable<WhatsappTemplatesTable>
export interface TemplateFields { namespace: string, name: string, language: string, params: string }

export async function listTemplates (db: Executor): Promise<TemplateRow[]> {
  return await db.selectFrom('whatsapp_templates').selectAll().orderBy('name').orderBy('language').execute()
}

export async function findTemplate (db: Executor, id: number): Promise<TemplateRow | undefined> {
  return await db.selectFrom('whatsapp_templates').selectAll().where('id', '=', id).executeTakeFirst()
}

export async function insertTemplate (db: Executor, t: TemplateFields, agentId: number, now: string): Promise<number> {
  const row = await db.insertInto('whatsapp_templates').values({ ...t, created_by: agentId, created_at: now, updated_at: now })
    .returning('id').executeTakeFirstOrThrow()
  return row.id
}

/** Whether a row was changed (false: it is gone). */
export async function updateTemplate (db: Executor, id: number, t: TemplateFields, now: string): Promise<boolean> {
  const result = await db.updateTable('whatsapp_templates').set({ ...t, updated_at: now }).where('id', '=', id).executeTakeFirst()
  return Number(result.numUpdatedRows) > 0
}

/** Whether a row was deleted (false: it was already gone). */
export async function deleteTemplate (db: Executor, id: number): Promise<boolean> {
  const result = await db.deleteFrom('whatsapp_templates').where('id', '=', id).executeTakeFirst()
  return Number(result.numDeletedRows) > 0
}
