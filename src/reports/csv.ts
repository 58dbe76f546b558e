import { stringify } from 'csv-stringify/sync'

/**
 * One CSV document (RFC 4180: a header row, CRLF line ends, fields quoted when they hold a comma,
 * a quote or a line break) through csv-stringify. `escape_formulas` puts a quote before a field that
 * starts with =, +, - or @ (an agent's name, a provider's reason), so a spreadsheet shows it as
 * text instead of running it (OWASP "CSV injection"); numbers are written as numbers.
 */
export function toCsv (header: string[], rows: Array<Array<string | number | null>>): string {
  return stringify([header, ...rows], { record_delimiter: 'windows', escape_formulas: true, cast: { number: (n) => String(n) } })
}
