import { sql, type RawBuilder } from 'kysely'
import { engineOf, type Executor } from '../db/database.js'
import type { TicketStatus } from '../db/schema.js'

// All SQL for search (README "Search"), and the one place where search differs by engine: SQLite
// matches through the FTS5 tables messages_fts and notes_fts and cuts snippets with snippet();
// PostgreSQL matches search_tsvector(body) through its GIN indexes and the snippet is cut by
// cutSnippet() below (not ts_headline(), which drops what looks like markup). Both come from the
// migration 20261213T0900-search. The same words go in and the same rows come out: the caller
// hands over words of letters and digits only (parseQuery in search-service.ts), never query syntax.

/** Marks the start and end of a match in a snippet; highlight.ts escapes the text, then turns them into <mark>. */
export const MATCH_START = '\u0001'
export const MATCH_END = '\u0002'

export interface SearchFilters {
  status: TicketStatus | null
  /** An agent's id, 'none' for unassigned, null for anyone. */
  assignee: number | 'none' | null
  /** ISO instants: from (inclusive) and until (exclusive). */
  from: string | null
  until: string | null
}

/** A word to find: whole (`refund`), or as the start of words (`ref` finds refund, reference). */
export interface SearchWord { text: string, prefix: boolean }

export interface TicketHit {
  id: number
  status: TicketStatus
  assignee_name: string | null
  phone: string
  contact_name: string | null
  last_message_at: string
  last_message_preview: string
}

export interface TextHit {
  source: 'message' | 'note'
  item_id: string
  created_at: string
  direction: string | null
  kind: string | null
  author_name: string | null
  /** The matching passage, matches between MATCH_START and MATCH_END. Raw text: escape it. */
  snippet: string
  ticket_id: number
  status: TicketStatus
  assignee_name: string | null
  phone: string
  contact_name: string | null
}

/** Ticket filters, on `t` (tickets) as joined below. */
function ticketFilters (f: SearchFilters): RawBuilder<unknown>[] {
  const where: RawBuilder<unknown>[] = []
  if (f.status !== null) where.push(sql`t.status = ${f.status}`)
  if (f.assignee === 'none') where.push(sql`t.assignee_id is null`)
  else if (f.assignee !== null) where.push(sql`t.assignee_id = ${f.assignee}`)
  return where
}

const and = (parts: RawBuilder<unknown>[]): RawBuilder<unknown> =>
  parts.length === 0 ? sql`` : sql` and ${sql.join(parts, sql` and `)}`

const TICKET_COLUMNS = sql`t.id, t.status, asg.name as assignee_name, c.phone, c.name as contact_name, t.last_message_at, t.last_message_preview`
const TICKET_JOINS = sql`join contacts c on c.id = t.contact_id left join agents asg on asg.id = t.assignee_id`

/** For tickets found by their number or reference, the date range asks: was the ticket active then? */
function activeBetween (f: SearchFilters): RawBuilder<unknown>[] {
  const where: RawBuilder<unknown>[] = []
  if (f.from !== null) where.push(sql`t.last_message_at >= ${f.from}`)
  if (f.until !== null) where.push(sql`t.created_at < ${f.until}`)
  return where
}

/** `#12` finds ticket 12, or the ticket it was merged into. */
export async function ticketById (db: Executor, id: number, f: SearchFilters): Promise<TicketHit[]> {
  const r = await sql<TicketHit>`select ${TICKET_COLUMNS} from tickets t ${TICKET_JOINS}
    where t.id = (select coalesce(m.merged_into, m.id) from tickets m where m.id = ${id})${and([...ticketFilters(f), ...activeBetween(f)])}`.execute(db)
  return r.rows
}

/**
 * Tickets of the contacts who have `number` (E.164, exact: a primary-key lookup), or, with
 * `suffix`, a number ending in those digits (4 or more): the index on each number's last four
 * digits finds the candidates, the rest of the suffix is checked on them.
 */
export async function ticketsByNumber (db: Executor, match: { number: string } | { suffix: string }, f: SearchFilters, limit: number): Promise<TicketHit[]> {
  const owners = 'number' in match
    ? sql`select contact_id from contact_numbers where number = ${match.number}`
    : sql`select contact_id from contact_numbers
        where substr(number, length(number) - 3) = ${match.suffix.slice(-4)} and number like ${'%' + match.suffix}`
  const r = await sql<TicketHit>`select ${TICKET_COLUMNS} from tickets t ${TICKET_JOINS}
    where t.contact_id in (${owners}) and t.merged_into is null${and([...ticketFilters(f), ...activeBetween(f)])}
    order by t.last_message_at desc, t.id desc limit ${limit}`.execute(db)
  return r.rows
}

/**
 * Messages and notes holding every word, newest first, at most `limit` of each source. The date
 * range applies to when the message or note was written.
 */
export async function searchText (db: Executor, words: SearchWord[], f: SearchFilters, limit: number): Promise<TextHit[]> {
  if (words.length === 0) return []
  const written = (col: RawBuilder<unknown>): RawBuilder<unknown>[] => [
    ...(f.from === null ? [] : [sql`${col} >= ${f.from}`]),
    ...(f.until === null ? [] : [sql`${col} < ${f.until}`])
  ]
  const [messages, notes] = engineOf(db) === 'postgres'
    ? await Promise.all([postgresMessages(db, words, f, written, limit), postgresNotes(db, words, f, written, limit)])
    : await Promise.all([sqliteMessages(db, words, f, written, limit), sqliteNotes(db, words, f, written, limit)])
  return [...messages, ...notes].sort((a, b) => a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0)
}

type Written = (col: RawBuilder<unknown>) => RawBuilder<unknown>[]

/**
 * An FTS5 query: every word quoted (so nothing a person types is FTS5 syntax), `*` after a word
 * searched as a prefix, words side by side meaning AND.
 */
export function fts5Query (words: SearchWord[]): string {
  return words.map((w) => `"${w.text.replaceAll('"', '""')}"${w.prefix ? '*' : ''}`).join(' ')
}

/** The same query for to_tsquery: `word:*` for a prefix, `&` between words. Words hold letters and digits only. */
export function tsQuery (words: SearchWord[]): string {
  return words.map((w) => `'${w.text.replaceAll("'", "''")}'${w.prefix ? ':*' : ''}`).join(' & ')
}

// Snippets: about 16 words around the matches (cutSnippet cuts the same on PostgreSQL).
const snippet = (table: string): RawBuilder<unknown> => sql`snippet(${sql.raw(table)}, 0, char(1), char(2), '…', 16)`

// FTS5 walks its index newest first (ORDER BY rowid DESC) and stops at the limit: a common word
// costs a page of rows, not every row that holds it.
async function sqliteMessages (db: Executor, words: SearchWord[], f: SearchFilters, written: Written, limit: number): Promise<TextHit[]> {
  const r = await sql<TextHit>`select 'message' as source, m.id as item_id, m.created_at, m.direction, m.kind, au.name as author_name,
      ${snippet('messages_fts')} as snippet, t.id as ticket_id, t.status, asg.name as assignee_name, c.phone, c.name as contact_name
    from messages_fts
    join messages m on m.rowid = messages_fts.rowid
    join tickets t on t.id = m.ticket_id
    ${TICKET_JOINS}
    left join agents au on au.id = m.agent_id
    where messages_fts match ${fts5Query(words)}${and([...ticketFilters(f), ...written(sql`m.created_at`)])}
    order by messages_fts.rowid desc limit ${limit}`.execute(db)
  return r.rows
}

async function sqliteNotes (db: Executor, words: SearchWord[], f: SearchFilters, written: Written, limit: number): Promise<TextHit[]> {
  const r = await sql<TextHit>`select 'note' as source, 'note-' || n.id as item_id, n.created_at, null as direction, null as kind, au.name as author_name,
      ${snippet('notes_fts')} as snippet, t.id as ticket_id, t.status, asg.name as assignee_name, c.phone, c.name as contact_name
    from notes_fts
    join notes n on n.id = notes_fts.rowid
    join tickets t on t.id = n.ticket_id
    ${TICKET_JOINS}
    left join agents au on au.id = n.agent_id
    where notes_fts match ${fts5Query(words)}${and([...ticketFilters(f), ...written(sql`n.created_at`)])}
    order by notes_fts.rowid desc limit ${limit}`.execute(db)
  return r.rows
}

/**
 * PostgreSQL's snippet, cut here rather than by ts_headline(): its parser reads `<script>` or
 * `<b>` in a customer's text as markup and leaves it out of the headline, so the agent would see
 * a text that is not what the customer wrote. This cuts the same window snippet() does on SQLite
 * (about 16 words from a little before the first match) and marks the same words: runs of letters
 * and digits equal to a word searched, or starting with it for a prefix.
 */
export function cutSnippet (body: string, words: SearchWord[], size = 16): string {
  const tokens = [...body.matchAll(/[\p{L}\p{N}]+/gu)].map((m) => ({ start: m.index, end: m.index + m[0].length, text: m[0].toLowerCase() }))
  const hit = (text: string): boolean => words.some((w) => w.prefix ? text.startsWith(w.text) : text === w.text)
  const first = Math.max(0, tokens.findIndex((tk) => hit(tk.text)))
  const from = tokens.length <= size ? 0 : Math.max(0, Math.min(first - 3, tokens.length - size))
  const to = Math.min(tokens.length, from + size)
  const startAt = from === 0 ? 0 : tokens[from].start
  const endAt = to >= tokens.length ? body.length : tokens[to - 1].end
  let out = from === 0 ? '' : '…'
  let at = startAt
  for (const tk of tokens.slice(from, to)) {
    if (!hit(tk.text)) continue
    out += body.slice(at, tk.start) + MATCH_START + body.slice(tk.start, tk.end) + MATCH_END
    at = tk.end
  }
  return out + body.slice(at, endAt) + (endAt < body.length ? '…' : '')
}

async function postgresMessages (db: Executor, words: SearchWord[], f: SearchFilters, written: Written, limit: number): Promise<TextHit[]> {
  const r = await sql<TextHit>`select 'message' as source, m.id as item_id, m.created_at, m.direction, m.kind, au.name as author_name,
      m.body as snippet,
      t.id as ticket_id, t.status, asg.name as assignee_name, c.phone, c.name as contact_name
    from messages m
    join tickets t on t.id = m.ticket_id
    ${TICKET_JOINS}
    left join agents au on au.id = m.agent_id
    where search_tsvector(m.body) @@ to_tsquery('pg_catalog.simple', ${tsQuery(words)})${and([...ticketFilters(f), ...written(sql`m.created_at`)])}
    order by m.created_at desc, m.id desc limit ${limit}`.execute(db)
  return r.rows.map((row) => ({ ...row, snippet: cutSnippet(row.snippet, words) }))
}

async function postgresNotes (db: Executor, words: SearchWord[], f: SearchFilters, written: Written, limit: number): Promise<TextHit[]> {
  const r = await sql<TextHit>`select 'note' as source, 'note-' || n.id as item_id, n.created_at, null as direction, null as kind, au.name as author_name,
      n.body as snippet,
      t.id as ticket_id, t.status, asg.name as assignee_name, c.phone, c.name as contact_name
    from notes n
    join tickets t on t.id = n.ticket_id
    ${TICKET_JOINS}
    left join agents au on au.id = n.agent_id
    where search_tsvector(n.body) @@ to_tsquery('pg_catalog.simple', ${tsQuery(words)})${and([...ticketFilters(f), ...written(sql`n.created_at`)])}
    order by n.created_at desc, n.id desc limit ${limit}`.execute(db)
  return r.rows.map((row) => ({ ...row, snippet: cutSnippet(row.snippet, words) }))
}
