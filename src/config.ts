// The only module that reads process.env. Everything else receives a frozen Config.
import { readFileSync } from 'node:fs'
import { isSupportedCountry, type CountryCode } from 'libphonenumber-js/max'
import { IANAZone } from 'luxon'

export type SmsChannelName = 'simulator' | 'messagebird'
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

export interface Config {
  nodeEnv: 'development' | 'production' | 'test'
  host: string
  port: number
  /** Public base URL without trailing slash, e.g. https://support.example.com (used for reportUrl and signatures). */
  publicUrl: string | null
  /** Where the database lives: `sqlite:<path>` (the default) or `postgres://…` (README "PostgreSQL"). */
  database: DatabaseConfig
  smsChannel: SmsChannelName
  /** True when SMS_CHANNEL was not set and the channel was chosen from the presence of a MessageBird key. */
  smsChannelAutoSelected: boolean
  messagebird: {
    apiKey: string | null
    /** The default sender: the first of `originators`. */
    originator: string | null
    /** Every SMS sender this account owns (MESSAGEBIRD_ORIGINATORS, or MESSAGEBIRD_ORIGINATOR alone), without a leading +. */
    originators: readonly string[]
    signingKey: string | null
    whatsappChannelId: string | null
    /** Conversations API channel id of the Facebook Messenger page; Messenger is off without it. */
    messengerChannelId: string | null
    timeoutMs: number
  }
  allowUnsignedWebhooks: boolean
  /** Start with the simulator channel although NODE_ENV=production (demonstrations, benchmarks). */
  allowSimulatorInProduction: boolean
  confirmationTemplate: string
  helpText: string
  /**
   * Automatic answers to HELP, START and STOP: at most one per keyword and number every
   * `intervalMinutes`, and at most `maxPerDay` per number in 24 hours (all keywords together).
   */
  autoReply: { intervalMinutes: number, maxPerDay: number }
  logLevel: LogLevel
  outbox: {
    pollIntervalMs: number
    maxAttempts: number
    backoffBaseMs: number
    backoffMaxMs: number
    /** How long to wait for a delivery report before an ambiguous send (timeout, crash mid-send) is settled as failed. */
    ambiguousGraceMs: number
  }
  /** Outbound messages still `sent` after this long are flagged as unconfirmed in the inbox. */
  unconfirmedAfterSeconds: number
  failover: { defaultExpirySeconds: number, confirmationWithFailover: boolean }
  simulator: { deliveryDelayMs: number }
  /**
   * `defaultCountry`: how a number typed without its country code is read (ISO 3166 alpha-2, e.g.
   * NL: 0612345678 is +31612345678); null when not set (such a number is searched by its last digits).
   */
  inbox: { pageSize: number, defaultCountry: CountryCode | null }
  /**
   * The team inbox: `autoAssign` gives each new ticket to the next available agent with fewer than
   * `autoAssignMaxOpen` open tickets; a customer's text within `reopenWindowHours` of a close
   * reopens that ticket (0: a new ticket); pending tickets close after `pendingAutoCloseHours`
   * (0: never); a close can be undone for `closeUndoSeconds`. A text starting with `#<ref>` of the
   * customer's own ticket closed within `refReopenDays` reopens it when they have no other open
   * ticket (0: never by reference).
   */
  teamInbox: { autoAssign: 'off' | 'round-robin', autoAssignMaxOpen: number, reopenWindowHours: number, pendingAutoCloseHours: number, closeUndoSeconds: number, refReopenDays: number }
  /**
   * Live events kept for Last-Event-ID replay: at most this many, for at most this long. At most
   * `maxStreams` open event streams in the process and `maxStreamsPerSession` per signed-in session.
   */
  events: { replayMax: number, replayMinutes: number, maxStreams: number, maxStreamsPerSession: number }
  /** Message texts of tickets closed more than `retentionDays` ago are erased (0: kept). */
  privacy: { retentionDays: number }
  session: { ttlHours: number, secureCookies: boolean }
  /**
   * Failed sign-ins per account and per client address: from half the limit on, each failure
   * makes the next attempt wait (1 s, 2 s, 4 s … up to a minute); at the limit, sign-in is refused
   * for `lockoutMinutes`. Failures older than `lockoutMinutes` are forgotten.
   */
  login: { maxFailures: number, maxFailuresPerIp: number, lockoutMinutes: number }
  /** scrypt cost as log2(N) for new password hashes (r=8, p=3). */
  passwordHashLogN: number
  /** Password hashes that run at once (on libuv's thread pool), and how many more may wait. */
  passwordHashes: { concurrency: number, queue: number }
  /** Requests per minute per client address. */
  rateLimit: { webhooksPerMinute: number, apiPerMinute: number }
  /** Fastify `trustProxy`: false, true, a hop count, or a comma-separated list of proxy addresses. */
  trustProxy: boolean | number | string
  /** Where signed status callbacks for API messages and dispatches go (optional). */
  statusCallbackUrl: string | null
  statusCallbackSecret: string | null
  /** Delivery of status callbacks: per-request timeout, attempts before giving up, exponential backoff between them. */
  statusCallback: { timeoutMs: number, maxAttempts: number, backoffBaseMs: number, backoffMaxMs: number }
  bodyLimitBytes: number
  /**
   * `GET /metrics`: with a token, served on the main port to `Authorization: Bearer <token>`;
   * with a port, also served on a listener of its own at `host:port`. Neither: not served.
   */
  metrics: { token: string | null, port: number | null, host: string }
  /**
   * QUIET_HOURS: a daily window, in minutes after local midnight (`start` > `end` crosses
   * midnight), or null when off. Judged in the recipient's zone when their number's country has
   * one; else in `timezone` (QUIET_HOURS_TIMEZONE, an IANA zone).
   */
  quietHours: { window: QuietWindow | null, timezone: string }
  /**
   * CSAT: closing a ticket texts the customer "How did we do? Reply 1–5"; a reply that is just a
   * digit 1 to 5 within `windowHours` of that is the ticket's rating.
   */
  csat: { enabled: boolean, windowHours: number }
  /**
   * GET /media/:id fetches a message's media from the provider: only https URLs on `hosts` (exact
   * host names), at most `maxBytes`, within `timeoutMs` (README "Media").
   */
  media: { hosts: string[], maxBytes: number, timeoutMs: number }
}

export interface QuietWindow { start: number, end: number }

export type DatabaseConfig = SqliteConfig | PostgresConfig
export interface SqliteConfig { kind: 'sqlite', path: string, synchronous: 'NORMAL' | 'FULL' }
export interface PostgresConfig {
  kind: 'postgres'
  /** The connection URL as given (it may hold a password: never log it; see describeDatabase). */
  url: string
  /** Connections this process keeps open at most (DATABASE_POOL_SIZE). */
  poolSize: number
  /** Server-side limit on one statement, in ms; 0 for none (DATABASE_STATEMENT_TIMEOUT_MS). */
  statementTimeoutMs: number
  /** TLS to the server: off, encrypted (`require`), or encrypted with the certificate and host name checked (`verify-full`). */
  ssl: { mode: 'off' | 'require' | 'verify-full', ca: string | null }
  /** Whether queries go out as named prepared statements (DATABASE_PREPARED_STATEMENTS; off behind a transaction-pooling proxy that cannot keep them). */
  preparedStatements: boolean
}

/** The database for logs and messages: the engine and where, never a password. */
export function describeDatabase (database: DatabaseConfig): string {
  if (database.kind === 'sqlite') return `sqlite:${database.path}`
  const u = new URL(database.url)
  return `postgres://${u.username === '' ? '' : `${decodeURIComponent(u.username)}@`}${u.host}${u.pathname}`
}

export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`)
    this.name = 'ConfigError'
  }
}

const DEFAULT_CONFIRMATION = 'Thanks for contacting customer support! Your ticket ID is {ref}.'
const DEFAULT_HELP = 'Customer support: reply to this number with your question and an agent will answer. Reply STOP to stop messages.'

type Env = Record<string, string | undefined>

export function loadConfig (env: Env = process.env): Config {
  const problems: string[] = []
  const str = (name: string): string | null => {
    const v = env[name]
    return v === undefined || v.trim() === '' ? null : v.trim()
  }
  // A Conversations API channel id is a 32-character hex id (Dashboard → Channels); catching a
  // pasted URL or name here beats a 404 from MessageBird on the first send.
  const channelId = (name: string): string | null => {
    const raw = str(name)
    if (raw !== null && !/^[0-9a-f]{32}$/i.test(raw)) problems.push(`${name} must be a MessageBird channel id: 32 hexadecimal characters (got "${raw.slice(0, 40)}")`)
    return raw
  }
  const int = (name: string, def: number, min: number, max: number): number => {
    const raw = str(name)
    if (raw === null) return def
    if (!/^-?\d+$/.test(raw)) {
      problems.push(`${name} must be a whole number between ${min} and ${max} (got "${raw}")`)
      return def
    }
    const n = Number(raw)
    if (n < min || n > max) problems.push(`${name} must be between ${min} and ${max} (got ${n})`)
    return n
  }
  const bool = (name: string, def: boolean): boolean => {
    const raw = str(name)
    if (raw === null) return def
    if (/^(1|true|yes|on)$/i.test(raw)) return true
    if (/^(0|false|no|off)$/i.test(raw)) return false
    problems.push(`${name} must be true or false (got "${raw}")`)
    return def
  }
  const oneOf = <T extends string>(name: string, allowed: readonly T[], def: T): T => {
    const raw = str(name)
    if (raw === null) return def
    if (!(allowed as readonly string[]).includes(raw)) {
      problems.push(`${name} must be one of ${allowed.join(', ')} (got "${raw}")`)
      return def
    }
    return raw as T
  }

  const mediaHosts = (): string[] => {
    const raw = str('MEDIA_HOSTS')
    if (raw === null) return ['media.messagebird.com']
    const hosts = raw.split(',').map((h) => h.trim().toLowerCase()).filter((h) => h !== '')
    const bad = hosts.filter((h) => !/^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(h))
    if (bad.length > 0) problems.push(`MEDIA_HOSTS must be a comma-separated list of host names, without scheme, port or path (got "${bad.join('", "')}")`)
    return hosts
  }
  const nodeEnv = oneOf('NODE_ENV', ['development', 'production', 'test'] as const, 'development')
  // Cheaper hashes only make a test suite fast; anywhere else they would weaken stored passwords.
  const passwordHashLogN = (env: string): number => {
    const n = int('PASSWORD_SCRYPT_LOG_N', 15, 10, 20)
    if (n < 15 && env !== 'test') problems.push(`PASSWORD_SCRYPT_LOG_N below 15 is only allowed with NODE_ENV=test (got ${n})`)
    return n
  }
  const trustProxy = (): boolean | number | string => {
    const raw = str('TRUST_PROXY')
    if (raw === null || /^(0|false|no|off)$/i.test(raw)) return false
    if (/^(true|yes|on)$/i.test(raw)) return true
    if (/^\d+$/.test(raw)) return Number(raw)
    if (/^[0-9a-fA-F:./]+(\s*,\s*[0-9a-fA-F:./]+)*$/.test(raw)) return raw
    problems.push(`TRUST_PROXY must be true, false, a number of proxy hops, or a comma-separated list of proxy addresses (got "${raw}")`)
    return false
  }
  // scrypt runs on libuv's thread pool, shared with file system, DNS and zlib work: at least one
  // thread must stay free for them whatever a burst of sign-ins does.
  const passwordHashes = (): { concurrency: number, queue: number } => {
    const poolSize = /^\d+$/.test(env.UV_THREADPOOL_SIZE ?? '') ? Number(env.UV_THREADPOOL_SIZE) : 4
    const most = Math.max(1, poolSize - 1)
    const concurrency = int('PASSWORD_HASH_CONCURRENCY', Math.min(2, most), 1, 64)
    if (concurrency > most) problems.push(`PASSWORD_HASH_CONCURRENCY must be below the libuv thread pool size (UV_THREADPOOL_SIZE, ${poolSize}), so that password checks never take every thread (got ${concurrency})`)
    return { concurrency, queue: int('PASSWORD_HASH_QUEUE', 16, 0, 10_000) }
  }
  const databaseConfig = (): DatabaseConfig => {
    const databaseUrl = str('DATABASE_URL') ?? 'sqlite:./data/textdesk.sqlite'
    const synchronous = oneOf('SQLITE_SYNCHRONOUS', ['NORMAL', 'FULL'] as const, 'NORMAL')
    const poolSize = int('DATABASE_POOL_SIZE', 10, 1, 1000)
    const statementTimeoutMs = int('DATABASE_STATEMENT_TIMEOUT_MS', 30_000, 0, 3_600_000)
    const sslMode = oneOf('DATABASE_SSL', ['off', 'require', 'verify-full'] as const, 'off')
    const caFile = str('DATABASE_SSL_CA_FILE')
    const preparedStatements = oneOf('DATABASE_PREPARED_STATEMENTS', ['on', 'off'] as const, 'on') === 'on'
    if (/^postgres(ql)?:\/\//i.test(databaseUrl)) {
      const url = postgresUrl(databaseUrl)
      // SQLITE_SYNCHRONOUS is left alone (.env.example sets it): PostgreSQL commits are durable on their own.
      let ca: string | null = null
      if (caFile !== null) {
        if (sslMode !== 'verify-full') problems.push(`DATABASE_SSL_CA_FILE is only used with DATABASE_SSL=verify-full (DATABASE_SSL is ${sslMode})`)
        try {
          ca = readFileSync(caFile, 'utf8')
          if (!ca.includes('-----BEGIN CERTIFICATE-----')) problems.push(`DATABASE_SSL_CA_FILE must be a PEM file of CA certificates (${caFile} holds no "BEGIN CERTIFICATE")`)
        } catch (err) {
          problems.push(`DATABASE_SSL_CA_FILE cannot be read (${caFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)})`)
        }
      }
      return { kind: 'postgres', url, poolSize, statementTimeoutMs, ssl: { mode: sslMode, ca }, preparedStatements }
    }
    for (const name of ['DATABASE_POOL_SIZE', 'DATABASE_STATEMENT_TIMEOUT_MS', 'DATABASE_SSL', 'DATABASE_SSL_CA_FILE', 'DATABASE_PREPARED_STATEMENTS']) {
      if (str(name) !== null) problems.push(`${name} applies to PostgreSQL only; DATABASE_URL names a SQLite file (remove ${name}, or set DATABASE_URL=postgres://…)`)
    }
    let path = './data/textdesk.sqlite'
    if (databaseUrl.startsWith('sqlite:')) {
      path = databaseUrl.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '')
      if (path === '') problems.push('DATABASE_URL must name a file after sqlite:, e.g. sqlite:./data/textdesk.sqlite')
    } else {
      problems.push(`DATABASE_URL must start with sqlite: or postgres:// (got "${redactPassword(databaseUrl)}")`)
    }
    return { kind: 'sqlite', path, synchronous }
  }
  // postgres://user:password@host:port/database, as libpq and node-postgres read it. Options after
  // `?` are refused rather than half-honoured: pg would let `sslmode` there override DATABASE_SSL.
  const postgresUrl = (raw: string): string => {
    const shown = redactPassword(raw)
    let u: URL
    try {
      u = new URL(raw)
    } catch {
      problems.push(`DATABASE_URL is not a valid URL: use postgres://user:password@host:5432/database (got "${shown}"; a password with @, : or / must be percent-encoded)`)
      return raw
    }
    if (u.hostname === '') problems.push(`DATABASE_URL must name the server's host, e.g. postgres://user:password@db.example.com:5432/textdesk (got "${shown}")`)
    if (u.pathname.replace(/^\//, '') === '') problems.push(`DATABASE_URL must name the database after the host, e.g. postgres://user:password@${u.host === '' ? 'host' : u.host}/textdesk (got "${shown}")`)
    if (u.search !== '' || u.hash !== '') problems.push(`DATABASE_URL must not carry options after "?" (got "${shown}"): set TLS with DATABASE_SSL=off|require|verify-full (and DATABASE_SSL_CA_FILE), the pool with DATABASE_POOL_SIZE, the statement timeout with DATABASE_STATEMENT_TIMEOUT_MS`)
    return raw
  }
  // MESSAGEBIRD_ORIGINATORS lists every sender a dispatch step may choose (`from.number`); the
  // first is the default. MESSAGEBIRD_ORIGINATOR, the older single variable, is the one-element list.
  const originatorList = (): string[] => {
    const single = str('MESSAGEBIRD_ORIGINATOR')
    const list = str('MESSAGEBIRD_ORIGINATORS')
    if (single !== null && list !== null) {
      problems.push('Set MESSAGEBIRD_ORIGINATORS or MESSAGEBIRD_ORIGINATOR, not both (MESSAGEBIRD_ORIGINATOR=x is the same as MESSAGEBIRD_ORIGINATORS=x)')
    }
    const name = list !== null ? 'MESSAGEBIRD_ORIGINATORS' : 'MESSAGEBIRD_ORIGINATOR'
    const raw = list ?? single
    if (raw === null) return []
    const items = list !== null ? raw.split(',').map((s) => s.trim()) : [raw]
    const out: string[] = []
    for (const item of items) {
      if (!isValidOriginator(item)) {
        problems.push(`${name} must be ${list !== null ? 'a comma-separated list of senders, each ' : ''}a phone number in international format (digits, optional leading +, up to 15 digits) or up to 11 letters and digits (got "${item}")`)
        continue
      }
      const normalised = item.replace(/^\+/, '')
      if (out.includes(normalised)) problems.push(`${name} names ${item} twice`)
      else out.push(normalised)
    }
    return out
  }
  const port = int('PORT', 3000, 0, 65535)
  const host = str('HOST') ?? '127.0.0.1'

  let publicUrl = str('PUBLIC_URL')
  if (publicUrl !== null) {
    try {
      const u = new URL(publicUrl)
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme')
      if (u.search !== '' || u.hash !== '') throw new Error('query')
      publicUrl = publicUrl.replace(/\/+$/, '')
    } catch {
      problems.push(`PUBLIC_URL must be an http(s) URL without query string, e.g. https://support.example.com (got "${publicUrl}")`)
      publicUrl = null
    }
  }

  const database = databaseConfig()
  const apiKey = str('MESSAGEBIRD_API_KEY')
  const originators = originatorList()
  const originator = originators[0] ?? null
  const channelRaw = str('SMS_CHANNEL')
  const smsChannel = oneOf('SMS_CHANNEL', ['simulator', 'messagebird'] as const, apiKey !== null ? 'messagebird' : 'simulator')
  if (smsChannel === 'messagebird') {
    if (apiKey === null) problems.push('MESSAGEBIRD_API_KEY is required when SMS_CHANNEL=messagebird')
    if (originator === null) problems.push('MESSAGEBIRD_ORIGINATORS (or MESSAGEBIRD_ORIGINATOR) is required when SMS_CHANNEL=messagebird (your virtual mobile number in international format, or a sender name of up to 11 letters and digits)')
  }
  const signingKey = str('MESSAGEBIRD_SIGNING_KEY')
  const allowUnsignedWebhooks = bool('ALLOW_UNSIGNED_WEBHOOKS', false)
  if (nodeEnv === 'production' && smsChannel === 'messagebird' && signingKey === null && !allowUnsignedWebhooks) {
    problems.push('MESSAGEBIRD_SIGNING_KEY is required in production with the messagebird channel, so that nobody can post fake SMS; set ALLOW_UNSIGNED_WEBHOOKS=true to accept unsigned webhooks anyway')
  }

  const allowSimulatorInProduction = bool('ALLOW_SIMULATOR_IN_PRODUCTION', false)
  if (nodeEnv === 'production' && smsChannel === 'simulator' && !allowSimulatorInProduction) {
    problems.push(`SMS_CHANNEL is simulator${channelRaw === null ? ' (chosen because MESSAGEBIRD_API_KEY is not set)' : ''} in production (NODE_ENV=production). The simulator accepts every message and sends nothing: customers would never receive a confirmation or a reply, and nothing would say so. Set MESSAGEBIRD_API_KEY and MESSAGEBIRD_ORIGINATOR to send for real, or set ALLOW_SIMULATOR_IN_PRODUCTION=true for a demonstration or a benchmark`)
  }

  // Set but blank is a mistake (an `.env` line left empty), not a request for the default: a
  // customer would receive an empty text.
  const message = (name: string, def: string): string => {
    const raw = env[name]
    if (raw === undefined) return def
    if (raw.trim() === '') problems.push(`${name} must not be empty: it is texted to customers (remove the variable to use the default)`)
    return raw
  }
  const confirmationTemplate = message('CONFIRMATION_TEMPLATE', DEFAULT_CONFIRMATION)
  if (confirmationTemplate.trim() !== '' && !confirmationTemplate.includes('{ref}')) {
    problems.push('CONFIRMATION_TEMPLATE must contain {ref}, where the ticket ID goes')
  }
  const helpText = message('HELP_TEXT', DEFAULT_HELP)

  const logLevel = oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, nodeEnv === 'test' ? 'silent' : 'info')

  let statusCallbackUrl = str('STATUS_CALLBACK_URL')
  if (statusCallbackUrl !== null) {
    try {
      const u = new URL(statusCallbackUrl)
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme')
    } catch {
      problems.push(`STATUS_CALLBACK_URL must be an http(s) URL (got "${statusCallbackUrl}")`)
      statusCallbackUrl = null
    }
  }
  const metricsToken = str('METRICS_TOKEN')
  if (metricsToken !== null && (metricsToken.length < 16 || /\s/.test(metricsToken))) {
    problems.push('METRICS_TOKEN must be at least 16 characters without spaces (generate one with `openssl rand -hex 32`)')
  }
  const metricsPort = str('METRICS_PORT') === null ? null : int('METRICS_PORT', 0, 1, 65535)
  if (metricsPort !== null && metricsPort === port) {
    problems.push(`METRICS_PORT must differ from PORT (both are ${port})`)
  }

  const defaultCountry = (): CountryCode | null => {
    const raw = str('DEFAULT_COUNTRY')
    if (raw === null) return null
    const code = raw.toUpperCase()
    if (isSupportedCountry(code)) return code
    problems.push(`DEFAULT_COUNTRY must be a two-letter country code with a telephone numbering plan, e.g. NL or GB (got "${raw}")`)
    return null
  }

  const quietHours = (): Config['quietHours'] => {
    const timezone = str('QUIET_HOURS_TIMEZONE') ?? 'UTC'
    if (!IANAZone.isValidZone(timezone)) problems.push(`QUIET_HOURS_TIMEZONE must be an IANA time zone, e.g. Europe/Amsterdam or UTC (got "${timezone}")`)
    const raw = str('QUIET_HOURS')
    if (raw === null) return { window: null, timezone }
    const m = /^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$/.exec(raw)
    const minutes = (h: string, min: string): number | null => Number(h) < 24 && Number(min) < 60 ? Number(h) * 60 + Number(min) : null
    const start = m === null ? null : minutes(m[1], m[2])
    const end = m === null ? null : minutes(m[3], m[4])
    if (start === null || end === null) {
      problems.push(`QUIET_HOURS must be a daily window of two 24-hour times, start-end, e.g. 21:00-08:00 (leave it empty for none; got "${raw}")`)
      return { window: null, timezone }
    }
    if (start === end) {
      problems.push(`QUIET_HOURS must start and end at different times (got "${raw}"; leave it empty for no quiet hours)`)
      return { window: null, timezone }
    }
    return { window: { start, end }, timezone }
  }

  const statusCallbackSecret = str('STATUS_CALLBACK_SECRET')
  if (statusCallbackUrl !== null && statusCallbackSecret === null) {
    problems.push('STATUS_CALLBACK_SECRET is required when STATUS_CALLBACK_URL is set (it signs every callback)')
  }
  if (statusCallbackSecret !== null && statusCallbackSecret.length < 16) {
    problems.push('STATUS_CALLBACK_SECRET must be at least 16 characters (a receiver checks signatures with it; generate one with `openssl rand -hex 32`)')
  }

  const config: Config = {
    nodeEnv,
    host,
    port,
    publicUrl,
    database,
    smsChannel,
    smsChannelAutoSelected: channelRaw === null,
    messagebird: {
      apiKey,
      originator,
      originators,
      signingKey,
      whatsappChannelId: str('MESSAGEBIRD_WHATSAPP_CHANNEL_ID'),
      messengerChannelId: channelId('MESSAGEBIRD_MESSENGER_CHANNEL_ID'),
      timeoutMs: int('MESSAGEBIRD_TIMEOUT_MS', 10_000, 1000, 120_000)
    },
    allowUnsignedWebhooks,
    allowSimulatorInProduction,
    confirmationTemplate,
    helpText,
    autoReply: {
      intervalMinutes: int('AUTO_REPLY_INTERVAL_MINUTES', 60, 0, 10_080),
      maxPerDay: int('AUTO_REPLY_MAX_PER_DAY', 5, 1, 1000)
    },
    logLevel,
    outbox: {
      pollIntervalMs: int('OUTBOX_POLL_MS', 250, 10, 60_000),
      maxAttempts: int('OUTBOX_MAX_ATTEMPTS', 8, 1, 100),
      backoffBaseMs: int('OUTBOX_BACKOFF_BASE_MS', 1000, 1, 3_600_000),
      backoffMaxMs: int('OUTBOX_BACKOFF_MAX_MS', 300_000, 1, 86_400_000),
      ambiguousGraceMs: int('OUTBOX_AMBIGUOUS_GRACE_MS', 600_000, 0, 86_400_000)
    },
    unconfirmedAfterSeconds: int('UNCONFIRMED_AFTER_SECONDS', 600, 1, 604_800),
    failover: {
      defaultExpirySeconds: int('FAILOVER_DEFAULT_EXPIRY_SECONDS', 300, 15, 86_400),
      confirmationWithFailover: bool('CONFIRMATION_WITH_FAILOVER', false)
    },
    simulator: { deliveryDelayMs: int('SIMULATOR_DELIVERY_DELAY_MS', 1500, 0, 600_000) },
    inbox: {
      pageSize: int('INBOX_PAGE_SIZE', 25, 1, 200),
      defaultCountry: defaultCountry()
    },
    teamInbox: {
      autoAssign: oneOf('AUTO_ASSIGN', ['off', 'round-robin'] as const, 'off'),
      autoAssignMaxOpen: int('AUTO_ASSIGN_MAX_OPEN', 20, 1, 10_000),
      reopenWindowHours: int('REOPEN_WINDOW_HOURS', 0, 0, 24 * 365),
      pendingAutoCloseHours: int('PENDING_AUTO_CLOSE_HOURS', 0, 0, 24 * 365),
      closeUndoSeconds: int('CLOSE_UNDO_SECONDS', 30, 0, 3600),
      refReopenDays: int('REF_REOPEN_DAYS', 30, 0, 3650)
    },
    events: {
      replayMax: int('EVENT_REPLAY_MAX', 10_000, 10, 1_000_000),
      replayMinutes: int('EVENT_REPLAY_MINUTES', 10, 1, 24 * 60),
      maxStreams: int('EVENT_STREAMS_MAX', 1000, 1, 100_000),
      maxStreamsPerSession: int('EVENT_STREAMS_PER_SESSION', 10, 1, 1000)
    },
    privacy: { retentionDays: int('RETENTION_DAYS', 0, 0, 36_500) },
    session: {
      ttlHours: int('SESSION_TTL_HOURS', 12, 1, 24 * 30),
      secureCookies: bool('SECURE_COOKIES', publicUrl?.startsWith('https:') ?? false)
    },
    statusCallbackUrl,
    statusCallbackSecret,
    statusCallback: {
      timeoutMs: int('STATUS_CALLBACK_TIMEOUT_MS', 5000, 100, 60_000),
      maxAttempts: int('STATUS_CALLBACK_MAX_ATTEMPTS', 12, 1, 100),
      backoffBaseMs: int('STATUS_CALLBACK_BACKOFF_BASE_MS', 5000, 1, 3_600_000),
      backoffMaxMs: int('STATUS_CALLBACK_BACKOFF_MAX_MS', 3_600_000, 1, 86_400_000)
    },
    csat: { enabled: oneOf('CSAT', ['on', 'off'] as const, 'off') === 'on', windowHours: int('CSAT_WINDOW_HOURS', 24, 1, 24 * 30) },
    login: {
      maxFailures: int('LOGIN_MAX_FAILURES', 10, 2, 1000),
      maxFailuresPerIp: int('LOGIN_MAX_FAILURES_PER_IP', 50, 2, 100_000),
      lockoutMinutes: int('LOGIN_LOCKOUT_MINUTES', 15, 1, 24 * 60)
    },
    passwordHashLogN: passwordHashLogN(nodeEnv),
    passwordHashes: passwordHashes(),
    rateLimit: {
      // MessageBird posts from a few shared addresses, and its retry after a 429 is not documented:
      // the webhook limit is a flood guard, set well above any real burst of customer texts.
      webhooksPerMinute: int('WEBHOOK_RATE_LIMIT_PER_MINUTE', 12_000, 1, 1_000_000),
      apiPerMinute: int('API_RATE_LIMIT_PER_MINUTE', 300, 1, 1_000_000)
    },
    trustProxy: trustProxy(),
    bodyLimitBytes: int('BODY_LIMIT_BYTES', 64 * 1024, 1024, 10 * 1024 * 1024),
    metrics: { token: metricsToken, port: metricsPort, host: str('METRICS_HOST') ?? '127.0.0.1' },
    quietHours: quietHours(),
    media: {
      hosts: mediaHosts(),
      maxBytes: int('MEDIA_MAX_BYTES', 10 * 1024 * 1024, 1024, 100 * 1024 * 1024),
      timeoutMs: int('MEDIA_TIMEOUT_MS', 10_000, 100, 120_000)
    }
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return deepFreeze(config)
}

/** The password for `npm run agent` (AGENT_PASSWORD), so scripts can create agents without a prompt. */
export function agentPasswordFromEnv (env: Env = process.env): string | null {
  const value = env.AGENT_PASSWORD
  return value === undefined || value === '' ? null : value
}

/** A database URL with its password replaced, for error messages. */
function redactPassword (url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*:)[^@/]*@/i, '$1****@')
}

function isValidOriginator (value: string): boolean {
  if (/^\+?\d{1,15}$/.test(value)) return true
  return /^[A-Za-z0-9 ]{1,11}$/.test(value) && /[A-Za-z]/.test(value)
}

function deepFreeze<T> (obj: T): T {
  for (const v of Object.values(obj as object)) {
    if (v !== null && typeof v === 'object') deepFreeze(v)
  }
  return Object.freeze(obj)
}
