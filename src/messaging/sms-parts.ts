// How many SMS parts a text takes, and in which encoding (3GPP TS 23.038 and 23.040). One
// implementation for the server (the reply limit and the parts confirmation) and the simulator's
// price; public/app.js keeps a copy for the composer's counter, and test/fixtures/sms-parts.json
// is the corpus both are checked against.

/** GSM 03.38 basic character set: one septet each. */
const GSM_BASIC = '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà'
/** The extension table: an escape septet plus one, so two septets each, never split across parts. */
const GSM_EXTENSION = '^{}\\[~]|€\f'

export type SmsEncoding = 'GSM-7' | 'UCS-2'

export interface SmsParts {
  encoding: SmsEncoding
  /** Septets (GSM-7) or UTF-16 code units (UCS-2). */
  units: number
  parts: number
}

/** The longest text the composer and the server accept, in characters (UTF-16 code units, after CRLF → LF). */
export const MAX_SMS_TEXT_LENGTH = 1600
/** Above this many parts the agent confirms before sending. */
export const MAX_PARTS_WITHOUT_CONFIRM = 3

/** A browser submits a textarea's line breaks as CRLF; the composer counts LF. */
export function normaliseLineBreaks (text: string): string {
  return text.replace(/\r\n/g, '\n')
}

export function smsParts (text: string): SmsParts {
  const sizes: number[] = []
  let gsm = true
  for (const ch of text) {
    if (GSM_BASIC.includes(ch)) sizes.push(1)
    else if (GSM_EXTENSION.includes(ch)) sizes.push(2)
    else { gsm = false; break }
  }
  if (!gsm) {
    // UCS-2 counts UTF-16 code units; a character outside the BMP takes two, kept in one part.
    sizes.length = 0
    for (const ch of text) sizes.push(ch.length)
  }
  const single = gsm ? 160 : 70
  const multi = gsm ? 153 : 67
  const units = sizes.reduce((a, b) => a + b, 0)
  if (units === 0) return { encoding: gsm ? 'GSM-7' : 'UCS-2', units: 0, parts: 0 }
  if (units <= single) return { encoding: gsm ? 'GSM-7' : 'UCS-2', units, parts: 1 }
  // Concatenated parts carry a header; a two-unit character never straddles two parts.
  let parts = 1
  let used = 0
  for (const size of sizes) {
    if (used + size > multi) {
      parts++
      used = 0
    }
    used += size
  }
  return { encoding: gsm ? 'GSM-7' : 'UCS-2', units, parts }
}

/** The distinct characters of `text` that GSM-7 cannot carry (what makes it UCS-2), in order of appearance. */
export function nonGsmCharacters (text: string): string[] {
  const found = new Set<string>()
  for (const ch of text) if (!GSM_BASIC.includes(ch) && !GSM_EXTENSION.includes(ch)) found.add(ch)
  return [...found]
}
