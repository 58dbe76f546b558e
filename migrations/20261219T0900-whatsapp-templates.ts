import type { Kysely } from 'kysely'

// WhatsApp templates and template messages.
//
// - whatsapp_templates: the approved templates (MessageBird Conversations API `hsm`) an agent may
//   send outside the 24-hour window: namespace, template name, language code and the names of its
//   parameters in order (a JSON array of strings). One row per (namespace, name, language): the
//   unique index decides a race between two admins saving the same template.
// - messages.template: for a template message, the `hsm` content it is sent with (JSON:
//   namespace, templateName, language, params); null for free text. The outbox reads it at send
//   time, so a template edited or deleted after the message was queued does not change what goes out.
// Plain statements and a nullable added column: the same on both engines, no table rewrite.
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('whatsapp_templates')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('namespace', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('language', 'text', (c) => c.notNull())
    .addColumn('params', 'text', (c) => c.notNull())
    .addColumn('created_by', 'integer', (c) => c.notNull().references('agents.id'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('whatsapp_templates_key').on('whatsapp_templates').columns(['namespace', 'name', 'language']).unique().execute()
  await db.schema.alterTable('messages').addColumn('template', 'text').execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('messages').dropColumn('template').execute()
  await db.schema.dropTable('whatsapp_templates').execute()
}
