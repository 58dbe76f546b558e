import type { CountryCode } from 'libphonenumber-js/max'
import type { Db } from '../db/database.js'
import type { TicketStatus } from '../db/schema.js'
import { UserError } from '../errors.js'
import { typedNumberToE164 } from '../tickets/phone.js'
import { ticketRef } from '../tickets/conversations.js'
import * as repo from './search-repository.js'
import type { SearchFilters, SearchWord, TextHit, TicketHit } from './search-repository.js'
import { addressLabel } from '../messaging/address.js'

// Search from one box (README "Search"): what the text in the box means, the filters, and the
// results as the page shows them. No SQL here: search-repository.ts holds it, per engine.

/** Longer queries are refused with 400 and a sentence: nobody types more, and a pasted page would only cost. */
export const MAX_QUERY_LENGTH = 200
/** Words in one query at most (all must match). */
export const MAX_WORDS = 12
/** Results of each kind (tickets by number or reference; messages; notes) on the page, newest first. */
export const RESULT_LIMIT = 50
/** Words of this many characters or more also find longer words they start ("refund" finds "refunded"). */
export const PREFIX_FROM = 3

export interface SearchInput { q?: string, status?: string, assignee?: string, from?: string, to?: string }

export interface ParsedQuery {
  /** `#12`, or digits that can be a ticket reference. */
  ticketId: number | null
  /** The number in E.164, when the box holds something that reads as a whole phone number. */
  number: string | null
  /** Its last digits (4 or more), searched when no contact has that exact number, or when it is not a whole number. */
  suffix: string | null
  words: SearchWord[]
}

const bad = (message: string): UserError => new UserError(400, message, 'BAD_SEARCH')

/** What the text in the box asks for. Throws a 400 with a sentence a person can act on. */
export function parseQuery (raw: string, defaultCountry: CountryCode | null): ParsedQuery {
  const q = raw.trim()
  if (q.length > MAX_QUERY_LENGTH) {
    throw bad(`A search is at most ${MAX_QUERY_LENGTH} characters; this one has ${q.length.toLocaleString('en')}. Search for a few words, a phone number or a ticket number.`)
  }
  const ref = /^#\s*(\d{1,9})$/.exec(q)
  if (ref !== null) return { ticketId: Number(ref[1]), number: null, suffix: null, words: [] }

  let number: string | null = null
  let suffix: string | null = null
  let ticketId: number | null = null
  const digits = q.replace(/\D/g, '')
  const phoneLike = /^[\d\s().+-]+$/.test(q)
  if (phoneLike && digits.length >= 4) {
    number = typedNumberToE164(q, defaultCountry)
    // A whole number typed with a trunk prefix (the 0 of 0612…) or 00: those zeros are not among
    // the stored number's last digits. Short digits are last digits as typed (0025).
    suffix = digits.length >= 8 ? digits.replace(/^0+/, '') : digits
  }
  if (/^[1-9]\d{0,8}$/.test(q)) ticketId = Number(q)

  // Words: runs of letters and digits, as both engines' tokenizers cut them. Everything else
  // (quotes, *, (), -, :, ^ …) separates words and never reaches a query language. A number typed
  // with spaces is a number, not four words; typed as one run of digits it is also searched as a word.
  const words = phoneLike && !/^\d+$/.test(q)
    ? []
    : [...new Set(q.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [])]
  if (words.length > MAX_WORDS) throw bad(`A search matches at most ${MAX_WORDS} words at once; this one has ${words.length}. Keep the words that matter most.`)
  if (ticketId === null && number === null && suffix === null && words.length === 0) {
    throw bad(`There is nothing to search for in “${q.slice(0, 40)}”: type words from a message or note, a phone number (at least its last 4 digits), or a ticket number like #42.`)
  }
  return { ticketId, number, suffix, words: words.map((text) => ({ text, prefix: [...text].length >= PREFIX_FROM })) }
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/

function dateStart (raw: string, field: string): Date {
  const m = DATE.exec(raw)
  const d = m === null ? null : new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])))
  if (m === null || d === null || d.getUTCDate() !== Number(m[3]) || d.getUTCMonth() !== Number(m[2]) - 1) {
    throw bad(`The ${field} date "${raw.slice(0, 20)}" is not a date; use the form 2026-01-31.`)
  }
  return d
}

/** The filters of the form, checked. Dates are whole UTC days, both ends included. */
export function parseFilters (input: SearchInput, agentId: number): SearchFilters {
  const status = input.status ?? ''
  if (status !== '' && status !== 'open' && status !== 'pending' && status !== 'closed') throw bad('The status filter is open, pending or closed (or empty for any).')
  const assignee = input.assignee ?? ''
  let who: SearchFilters['assignee'] = null
  if (assignee === 'me') who = agentId
  else if (assignee === 'none') who = 'none'
  else if (/^[1-9]\d{0,8}$/.test(assignee)) who = Number(assignee)
  else if (assignee !== '') throw bad('The assignee filter is me, none, or an agent (or empty for anyone).')
  const from = (input.from ?? '') === '' ? null : dateStart(input.from as string, 'from')
  const to = (input.to ?? '') === '' ? null : dateStart(input.to as string, 'to')
  if (from !== null && to !== null && from > to) throw bad('The from date is after the to date; swap them.')
  return {
    status: status === '' ? null : status as TicketStatus,
    assignee: who,
    from: from?.toISOString() ?? null,
    until: to === null ? null : new Date(to.getTime() + 86_400_000).toISOString()
  }
}

export interface SearchResults {
  query: ParsedQuery
  /** Tickets found by reference or number. */
  tickets: Array<TicketHit & { ref: string, customer: string, why: string }>
  /** Messages and notes holding the words, newest first. */
  hits: Array<TextHit & { ref: string, customer: string, who: string }>
  /** True when a kind of result reached RESULT_LIMIT: there may be more, older ones. */
  more: boolean
}

const WHO: Record<string, string> = { confirmation: 'Automatic', help: 'Automatic', opt_out: 'Automatic', opt_in: 'Automatic', notification: 'API' }

export class SearchService {
  constructor (private readonly deps: { db: Db, defaultCountry: CountryCode | null }) {}

  parse (q: string): ParsedQuery {
    return parseQuery(q, this.deps.defaultCountry)
  }

  async search (query: ParsedQuery, filters: SearchFilters): Promise<SearchResults> {
    const { db } = this.deps
    const byRef = query.ticketId === null ? [] : await repo.ticketById(db, query.ticketId, filters)
    let byNumber: TicketHit[] = []
    let why = ''
    if (query.number !== null) {
      byNumber = await repo.ticketsByNumber(db, { number: query.number }, filters, RESULT_LIMIT)
      why = `Number ${query.number}`
    }
    if (byNumber.length === 0 && query.suffix !== null) {
      byNumber = await repo.ticketsByNumber(db, { suffix: query.suffix }, filters, RESULT_LIMIT)
      why = `Number ending in ${query.suffix}`
    }
    const found = await repo.searchText(db, query.words, filters, RESULT_LIMIT)
    // Each source gave its newest RESULT_LIMIT: the newest RESULT_LIMIT of both are among them.
    const hits = found.slice(0, RESULT_LIMIT)
    // A ticket found by its reference and by its number is listed once, as the reference.
    const tickets = [
      ...byRef.map((t) => ({ ...t, why: `Ticket #${ticketRef(t.id)}` })),
      ...byNumber.filter((t) => !byRef.some((r) => r.id === t.id)).map((t) => ({ ...t, why }))
    ]
    return {
      query,
      tickets: tickets.map((t) => ({ ...t, ref: ticketRef(t.id), customer: t.contact_name ?? addressLabel(t.phone) })),
      hits: hits.map((h) => ({
        ...h,
        ref: ticketRef(h.ticket_id),
        customer: h.contact_name ?? addressLabel(h.phone),
        who: h.source === 'note'
          ? `Note by ${h.author_name ?? 'an agent'}`
          : h.direction === 'inbound' ? 'Customer' : h.author_name ?? WHO[h.kind ?? ''] ?? 'Sent'
      })),
      more: byNumber.length >= RESULT_LIMIT || found.filter((h) => h.source === 'message').length >= RESULT_LIMIT || found.filter((h) => h.source === 'note').length >= RESULT_LIMIT
    }
  }
}
