import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely'

// Portable types: snake_case columns, ISO-8601 UTC strings set in code, text unions for statuses,
// integers instead of booleans. The same schema is meant to run on Postgres later.

type Id = Generated<number>
type Iso = string

/** The channels a message can travel on. Which of them a server accepts depends on its provider's configuration. */
export type Channel = 'sms' | 'whatsapp' | 'messenger' | 'mms'
export type Direction = 'inbound' | 'outbound'
export type TicketStatus = 'open' | 'pending' | 'closed'
/** Who wrote a ticket's latest previewed message. */
export type SenderKind = 'customer' | 'agent' | 'api' | 'automatic'

/**
 * Our status model for messages. Inbound messages are `received`.
 * Outbound: queued → sending → sent → buffered → delivered → read, or a failure
 * (`failed`, `expired`, `blocked`). `unknown` means the provider may or may not have accepted
 * the message (a timeout or a crash mid-send) and we are waiting for a report to tell.
 */
export type MessageStatus =
  | 'received'
  | 'queued' | 'sending' | 'unknown' | 'sent' | 'buffered'
  | 'delivered' | 'read'
  | 'failed' | 'expired' | 'blocked'

export type MessageKind = 'customer' | 'confirmation' | 'reply' | 'notification' | 'help' | 'opt_out' | 'opt_in' | 'csat_survey' | 'csat_thanks'

export interface ContactsTable {
  id: Id
  /** E.164, e.g. +31612345678 */
  phone: string
  name: string | null
  opted_out_at: Iso | null
  created_at: Iso
  updated_at: Iso
  /** Free text about the customer, from their profile page; who wrote it last and when. */
  notes: ColumnType<string | null, string | null | undefined, string | null>
  notes_updated_by: ColumnType<number | null, number | null | undefined, number | null>
  notes_updated_at: ColumnType<Iso | null, Iso | null | undefined, Iso | null>
  /** When the contact's personal data was erased; null: never. */
  erased_at: ColumnType<Iso | null, Iso | null | undefined, Iso | null>
}

export type ContactField = 'name' | 'notes'

/** Who changed a contact's name or notes, when, and what it became (null: cleared). */
export interface ContactChangesTable {
  id: Id
  contact_id: number
  field: ContactField
  value: string | null
  agent_id: number
  created_at: Iso
}

/** The one-time token of a "New message" form that was sent, and the ticket it went to. */
export interface ConversationTokensTable {
  token: string
  agent_id: number
  ticket_id: number | null
  created_at: Iso
}

/**
 * Every number a contact has, their own phone included, one row per number: a number belongs to
 * at most one contact. `contacts.phone` and `contact_addresses` point here with foreign keys.
 */
export interface ContactNumbersTable {
  number: string
  contact_id: number
  created_at: Iso
}

/** Extra addresses that another contact already held when one number became one contact. */
export interface ContactAddressConflictsTable {
  id: number
  contact_id: number
  channel: Channel
  address: string
  position: number
  created_at: Iso
  owner_contact_id: number
  set_aside_at: Iso
}

/** Rate-limit state of automatic answers to keywords, per contact. */
export interface AutoRepliesTable {
  contact_id: number
  help_at: Iso | null
  opt_in_at: Iso | null
  opt_out_at: Iso | null
  window_started_at: Iso
  window_count: number
  /** The last thank-you for a satisfaction rating. */
  csat_at: ColumnType<Iso | null, Iso | null | undefined, Iso | null>
}

/** A ticket asked "How did we do?" after its close, and the customer's rating (1 to 5) once given. */
export interface CsatSurveysTable {
  ticket_id: number
  contact_id: number
  /** Who had the ticket when it closed: the rating counts for them. */
  agent_id: number | null
  message_id: string
  sent_at: Iso
  /** A single digit after this is an ordinary text. */
  expires_at: Iso
  rating: number | null
  rated_at: Iso | null
  rating_message_id: string | null
}

export type MediaKind = 'image' | 'video' | 'audio' | 'file'

/** An item of media a message carries; `url` is the provider's, fetched only through GET /media/:id. */
export interface MessageMediaTable {
  id: string
  message_id: string
  position: number
  kind: MediaKind
  url: string
  caption: string | null
  content_type: string | null
  created_at: Iso
}

export interface ContactAddressesTable {
  id: Id
  contact_id: number
  channel: Channel
  address: string
  position: number
  created_at: Iso
}

export interface TicketsTable {
  id: Id
  contact_id: number
  status: TicketStatus
  assignee_id: number | null
  created_at: Iso
  updated_at: Iso
  closed_at: Iso | null
  closed_by: number | null
  // Denormalised so the inbox list is one indexed range scan, whatever the table size.
  last_message_at: Iso
  last_message_preview: string
  last_message_direction: Direction
  message_count: number
  /** When the status last changed (pending tickets auto-close from here). */
  status_at: Iso | null
  last_sender: SenderKind | null
  last_sender_agent_id: number | null
  /** The newest customer message: unread for an agent whose last read is older. */
  last_customer_message_at: Iso | null
  /** The oldest customer message no agent reply has followed yet; null when answered. */
  awaiting_reply_since: Iso | null
  /** The ticket this one was merged into (it is closed and in no view); null for every other ticket. */
  merged_into: ColumnType<number | null, number | null | undefined, number | null>
  /** When retention (RETENTION_DAYS) last erased the ticket's message texts. */
  texts_erased_at: ColumnType<Iso | null, Iso | null | undefined, Iso | null>
  /** The first agent reply that answered the customer, who wrote it, and since when the customer had waited (reports). */
  first_reply_at: ColumnType<Iso | null, Iso | null | undefined, Iso | null>
  first_reply_agent_id: ColumnType<number | null, number | null | undefined, number | null>
  first_reply_waited_from: ColumnType<Iso | null, Iso | null | undefined, Iso | null>
}

export type TicketEventKind = 'assigned' | 'status' | 'opt_out' | 'opt_in' | 'retry' | 'merged_into' | 'merged_from'

/** The timeline's entries that are not messages or notes. */
export interface TicketEventsTable {
  id: Id
  ticket_id: number
  kind: TicketEventKind
  /** Who did it; null for the system (the customer's text, auto-assignment, auto-close). */
  agent_id: number | null
  target_agent_id: number | null
  from_status: TicketStatus | null
  to_status: TicketStatus | null
  created_at: Iso
  /** The message the event is about: the retry an agent sent, the text whose `#<ref>` reopened the ticket. */
  message_id: ColumnType<string | null, string | null | undefined, string | null>
  /** A merge: the ticket this one was merged into (`merged_into`) or the one merged into it (`merged_from`). */
  other_ticket_id: ColumnType<number | null, number | null | undefined, number | null>
}

/** Private notes: never messages, never in the outbox. */
export interface NotesTable {
  id: Id
  ticket_id: number
  agent_id: number
  body: string
  created_at: Iso
}

export interface AgentTicketReadsTable {
  agent_id: number
  ticket_id: number
  read_at: Iso
}

export interface TicketCountsTable {
  bucket: string
  /** A bucket's count is the sum over its shards (migration 20261216T0900-counter-shards). */
  shard: number
  n: number
}

export interface MessagesTable {
  /** Our id (UUID); sent to providers as the `reference` so reports can be matched back. */
  id: string
  ticket_id: number
  direction: Direction
  kind: MessageKind
  channel: Channel
  from_address: string | null
  to_address: string
  body: string
  provider: string | null
  provider_message_id: string | null
  status: MessageStatus
  status_at: Iso
  status_reason: string | null
  error_code: string | null
  price_amount: string | null
  price_currency: string | null
  segments: number | null
  attempts: number
  agent_id: number | null
  dispatch_id: string | null
  created_at: Iso
  updated_at: Iso
  /** The failed outbound message this one sends again (unique: one retry per message). */
  retry_of: ColumnType<string | null, string | null | undefined, string | null>
  /** Inbound: the customer's own ticket their text named with a leading `#<ref>` (stripped from `body`). */
  ref_ticket_id: ColumnType<number | null, number | null | undefined, number | null>
  /** Inbound with a recognised `#<ref>`: the text as it arrived, prefix included. */
  original_body: ColumnType<string | null, string | null | undefined, string | null>
  /** Outbound: the time an agent scheduled it for ("Send later"); null when sent as soon as queued. */
  send_at: ColumnType<string | null, string | null | undefined, string | null>
  /** Outbound: whether quiet hours hold it (migration 20261217T0930-send-later). */
  quiet_hours: ColumnType<QuietHoursPolicy | null, QuietHoursPolicy | null | undefined, QuietHoursPolicy | null>
  /** Outbound WhatsApp template message: its `hsm` content as JSON (migration 20261219T0900-whatsapp-templates); null for free text. */
  template: ColumnType<string | null, string | null | undefined, string | null>
}

/** 'hold': quiet hours hold it; 'urgent': the API asked to bypass them (its handovers too). */
export type QuietHoursPolicy = 'hold' | 'urgent'

export interface MessageEventsTable {
  id: Id
  message_id: string
  status: string
  occurred_at: Iso
  received_at: Iso
  source: string
  /** The raw report (JSON) for audit. */
  raw: string | null
}

export type OutboxKind = 'send' | 'failover_deadline' | 'settle_unknown' | 'status_callback'

export interface OutboxTable {
  id: Id
  kind: OutboxKind
  message_id: string | null
  dispatch_id: string | null
  payload: string | null
  run_at: Iso
  attempts: ColumnType<number, number | undefined, number>
  last_error: string | null
  locked_until: Iso | null
  created_at: Iso
}

export interface AgentsTable {
  id: Id
  email: string
  name: string
  role: 'admin' | 'agent'
  password_hash: string
  disabled_at: Iso | null
  created_at: Iso
  updated_at: Iso
  /** 1 when auto-assignment may give this agent new tickets. */
  available: ColumnType<number, number | undefined, number>
  last_assigned_at: ColumnType<Iso | null, Iso | null | undefined, Iso | null>
}

export interface SessionsTable {
  /** SHA-256 of the cookie token; the token itself is never stored. */
  id: string
  agent_id: number
  csrf_secret: string
  created_at: Iso
  expires_at: Iso
  last_seen_at: Iso
}

export interface LoginThrottleTable {
  key: string
  failures: number
  window_started_at: Iso
  locked_until: Iso | null
}

export interface WebhookJtisTable {
  jti: string
  expires_at: Iso
}

export type DispatchStatus = 'pending' | 'completed' | 'failed'
export type StepStatus = 'waiting' | 'active' | 'met' | 'failed' | 'expired'

export interface DispatchesTable {
  id: string
  status: DispatchStatus
  template: string
  ticket_id: number
  current_step: number
  api_key_id: number | null
  created_at: Iso
  updated_at: Iso
  ended_at: Iso | null
}

export interface DispatchStepsTable {
  dispatch_id: string
  position: number
  channel: Channel
  to_address: string
  from_address: string | null
  body: string
  /** An mms step's image (https); becomes its message's message_media row when the step starts. */
  media_url: string | null
  condition_status: 'delivered' | 'read' | null
  expiry_seconds: number | null
  message_id: string | null
  status: StepStatus
  started_at: Iso | null
  deadline_at: Iso | null
  ended_at: Iso | null
}

export interface ApiKeysTable {
  id: Id
  name: string
  key_hash: string
  prefix: string
  created_at: Iso
  revoked_at: Iso | null
  last_used_at: Iso | null
}

export interface IdempotencyKeysTable {
  api_key_id: number
  key: string
  request_hash: string
  status_code: number
  response_body: string
  created_at: Iso
}

/** The API key that sent a message through POST /api/v1/messages. */
export interface ApiMessagesTable {
  message_id: string
  api_key_id: number
}

/** A shared text agents insert in the composer; `body` may hold variables ({{customer.name}}). */
export interface CannedRepliesTable {
  id: Id
  /** Lowercase letters, digits, - and _; unique. */
  name: string
  body: string
  created_by: number
  created_at: Iso
  updated_by: number
  updated_at: Iso
}

export type CannedReplyAction = 'created' | 'updated' | 'deleted' | 'gsm_fix'

/** Who changed a canned reply, when, and what it read afterwards (before, for a deletion). */
export interface CannedReplyChangesTable {
  id: Id
  canned_reply_id: number
  action: CannedReplyAction
  name: string
  body: string
  agent_id: number
  created_at: Iso
}

/** A customer merged into another one: the merged contact's row is gone, this remembers it. */
export interface ContactMergesTable {
  id: Id
  from_contact_id: number
  from_phone: string
  from_name: string | null
  into_contact_id: number
  agent_id: number
  created_at: Iso
}

/** The keyed hash of a number an erased contact had, with their consent at that moment. */
export interface ErasedNumbersTable {
  number_hash: string
  opted_out_at: Iso | null
  erased_at: Iso
}

/** The HMAC key of erased numbers: one row, made by the migration. */
export interface PrivacyKeysTable {
  id: number
  hmac_key: string
}

export type AuditAction = 'erase' | 'retention'

/** Who erased what and when; `agent_id` null is the system (retention). */
export interface AuditLogTable {
  id: Id
  action: AuditAction
  agent_id: number | null
  contact_id: number | null
  ticket_id: number | null
  detail: string | null
  created_at: Iso
}

/** An approved WhatsApp template (hsm) agents may send outside the 24-hour window. */
export interface WhatsappTemplatesTable {
  id: Id
  namespace: string
  name: string
  language: string
  /** JSON array of the parameters' names, in order. */
  params: string
  created_by: number
  created_at: Iso
  updated_at: Iso
}

export interface Database {
  contacts: ContactsTable
  contact_addresses: ContactAddressesTable
  contact_numbers: ContactNumbersTable
  contact_address_conflicts: ContactAddressConflictsTable
  auto_replies: AutoRepliesTable
  tickets: TicketsTable
  messages: MessagesTable
  message_events: MessageEventsTable
  outbox: OutboxTable
  agents: AgentsTable
  sessions: SessionsTable
  login_throttle: LoginThrottleTable
  webhook_jtis: WebhookJtisTable
  dispatches: DispatchesTable
  dispatch_steps: DispatchStepsTable
  api_keys: ApiKeysTable
  idempotency_keys: IdempotencyKeysTable
  api_messages: ApiMessagesTable
  ticket_events: TicketEventsTable
  notes: NotesTable
  agent_ticket_reads: AgentTicketReadsTable
  ticket_counts: TicketCountsTable
  canned_replies: CannedRepliesTable
  canned_reply_changes: CannedReplyChangesTable
  contact_changes: ContactChangesTable
  conversation_tokens: ConversationTokensTable
  contact_merges: ContactMergesTable
  erased_numbers: ErasedNumbersTable
  privacy_keys: PrivacyKeysTable
  audit_log: AuditLogTable
  csat_surveys: CsatSurveysTable
  whatsapp_templates: WhatsappTemplatesTable
  message_media: MessageMediaTable
}

export type Contact = Selectable<ContactsTable>
export type Ticket = Selectable<TicketsTable>
export type Message = Selectable<MessagesTable>
export type NewMessage = Insertable<MessagesTable>
export type MessageUpdate = Updateable<MessagesTable>
export type OutboxRow = Selectable<OutboxTable>
export type Agent = Selectable<AgentsTable>
export type TicketEvent = Selectable<TicketEventsTable>
export type Note = Selectable<NotesTable>
export type Dispatch = Selectable<DispatchesTable>
export type DispatchStep = Selectable<DispatchStepsTable>
export type CannedReply = Selectable<CannedRepliesTable>
