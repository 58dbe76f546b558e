import Handlebars from 'handlebars'
import { MATCH_END, MATCH_START } from './search-repository.js'

/**
 * A search snippet as HTML: the text escaped first, then the match markers the database put
 * around each match (MATCH_START, MATCH_END: control characters, never markup) turned into
 * <mark>. The markers are read as a pair at a time, so the result is well formed whatever the text
 * holds (a stray marker in a message only opens or closes a <mark> the same way).
 */
export function snippetHtml (snippet: string): string {
  const escaped = Handlebars.escapeExpression(snippet)
  let open = false
  let out = ''
  for (const ch of escaped) {
    if (ch === MATCH_START) {
      if (!open) out += '<mark>'
      open = true
    } else if (ch === MATCH_END) {
      if (open) out += '</mark>'
      open = false
    } else {
      out += ch
    }
  }
  return open ? out + '</mark>' : out
}
