// Compliance keywords. Providers (MessageBird among them) match the whole message, trimmed and
// case-insensitive; "STOP PLEASE" is not an opt-out. We also ignore trailing punctuation.
const OPT_OUT = new Set(['STOP', 'STOPALL', 'STOP ALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT'])
const OPT_IN = new Set(['START', 'UNSTOP'])
const HELP = new Set(['HELP', 'INFO'])

export type Keyword = 'opt_out' | 'opt_in' | 'help'

export function detectKeyword (text: string): Keyword | null {
  const word = text.normalize('NFKC').trim().replace(/[\s.!?,;:]+$/u, '').replace(/\s+/g, ' ').toUpperCase()
  if (OPT_OUT.has(word)) return 'opt_out'
  if (OPT_IN.has(word)) return 'opt_in'
  if (HELP.has(word)) return 'help'
  return null
}

export const OPT_OUT_CONFIRMATION = 'You are unsubscribed and will get no more messages from us. Reply START to subscribe again.'
export const OPT_IN_CONFIRMATION = 'You are subscribed again. Reply STOP at any time to stop messages.'
