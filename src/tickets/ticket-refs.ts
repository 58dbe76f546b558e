// A customer pointing at a ticket: a text that starts with `#<ref>` (the ticket number the
// confirmation gave them, "#42 still broken"). Only the leading position counts, and only a
// ticket number as agents write it (no leading zero, at most 9 digits, so it always fits an
// integer column); `#`, `#abc`, `#0`, `#042`, `#42abc` and longer numbers are no reference and the
// text is kept as it came.
const LEADING_REF = /^\s*#([1-9]\d{0,8})(?=$|[\s.,;:!?)-])[.,;:!?)-]?\s*/

export interface TicketRefText {
  ticketId: number
  /** The text without the `#<ref>` prefix (and the punctuation and spaces right after it). */
  rest: string
}

export function parseTicketRef (text: string): TicketRefText | null {
  const m = LEADING_REF.exec(text)
  if (m === null) return null
  return { ticketId: Number(m[1]), rest: text.slice(m[0].length) }
}
