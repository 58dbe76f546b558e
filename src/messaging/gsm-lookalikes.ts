// Characters that look like a GSM-7 character but are not one. A single curly quote makes a whole
// SMS UCS-2: 70 characters per part instead of 160. This map is the one list of them: the server
// uses it for the canned replies' "fix" and serves it to the page script as
// /assets/gsm-lookalikes.js (src/inbox/assets.ts), so the composer's button replaces exactly the
// same characters. Only typographic twins are here: nothing that changes a letter (á stays á).

/** Each look-alike and its plain GSM-7 replacement ('' for invisible characters, which are dropped). */
export const GSM_LOOKALIKES: Readonly<Record<string, string>> = Object.freeze({
  // Single quotes, apostrophes, primes and accents used as apostrophes
  '\u2018': "'", // ‘
  '\u2019': "'", // ’
  '\u201A': "'", // ‚
  '\u201B': "'", // ‛
  '\u2032': "'", // ′
  '\u2039': "'", // ‹
  '\u203A': "'", // ›
  '\u00B4': "'", // ´
  '\u0060': "'", // `
  // Double quotes and double primes
  '\u201C': '"', // “
  '\u201D': '"', // ”
  '\u201E': '"', // „
  '\u201F': '"', // ‟
  '\u2033': '"', // ″
  '\u00AB': '"', // «
  '\u00BB': '"', // »
  // Dashes, hyphens and the minus sign
  '\u2010': '-', // hyphen
  '\u2011': '-', // non-breaking hyphen
  '\u2012': '-', // figure dash
  '\u2013': '-', // – en dash
  '\u2014': '-', // — em dash
  '\u2015': '-', // ― horizontal bar
  '\u2212': '-', // − minus
  // Spaces that are not the space character
  '\u00A0': ' ', // no-break space
  '\u2002': ' ', // en space
  '\u2003': ' ', // em space
  '\u2007': ' ', // figure space
  '\u2008': ' ', // punctuation space
  '\u2009': ' ', // thin space
  '\u200A': ' ', // hair space
  '\u202F': ' ', // narrow no-break space
  '\u205F': ' ', // medium mathematical space
  '\u3000': ' ', // ideographic space
  '\t': ' ',
  // Line separators
  '\u2028': '\n',
  '\u2029': '\n',
  // Invisible characters
  '\u200B': '', // zero-width space
  '\u2060': '', // word joiner
  '\uFEFF': '', // zero-width no-break space (byte-order mark)
  '\u00AD': '', // soft hyphen
  // Ellipsis and bullets written as one character
  '\u2026': '...', // …
  '\u2022': '-' // •
})

/** Whether `text` holds any character of the map. */
export function hasLookalikes (text: string): boolean {
  for (const ch of text) if (Object.hasOwn(GSM_LOOKALIKES, ch)) return true
  return false
}

/** `text` with every look-alike replaced by its GSM-7 twin; every other character kept. */
export function replaceLookalikes (text: string): string {
  let out = ''
  for (const ch of text) out += Object.hasOwn(GSM_LOOKALIKES, ch) ? GSM_LOOKALIKES[ch] : ch
  return out
}

/** The page script's copy-free view of the map: a classic script that sets `window.TextdeskLookalikes`. */
export function lookalikesScript (): string {
  return `// Generated from src/messaging/gsm-lookalikes.ts: the one list of GSM-7 look-alikes.\nwindow.TextdeskLookalikes = ${JSON.stringify(GSM_LOOKALIKES)};\n`
}
