import t from 'tap'
import { ConfigError, describeDatabase, loadConfig } from '../src/config.js'

t.test('defaults: simulator channel, SQLite under ./data, port 3000 on loopback', async (t) => {
  const c = loadConfig({})
  t.equal(c.smsChannel, 'simulator')
  t.equal(c.smsChannelAutoSelected, true)
  t.same(c.database, { kind: 'sqlite', path: './data/textdesk.sqlite', synchronous: 'NORMAL' })
  t.equal(c.port, 3000)
  t.equal(c.host, '127.0.0.1')
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.messagebird), 'frozen')
})

t.test('a MessageBird key selects the messagebird channel automatically', async (t) => {
  const c = loadConfig({ MESSAGEBIRD_API_KEY: 'live_x', MESSAGEBIRD_ORIGINATOR: '+3197010260000' })
  t.equal(c.smsChannel, 'messagebird')
  t.equal(c.messagebird.originator, '3197010260000', 'stored without +, as the API takes it')
})

function problems (env: Record<string, string>): string {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err.message
    throw err
  }
  return ''
}

t.test('invalid settings are refused with a message naming the variable and the rule', async (t) => {
  t.match(problems({ PORT: 'eighty' }), /PORT must be a whole number between 0 and 65535 \(got "eighty"\)/)
  t.match(problems({ PORT: '70000' }), /PORT must be between 0 and 65535/)
  t.match(problems({ MESSAGEBIRD_API_KEY: 'k', MESSAGEBIRD_ORIGINATOR: 'ACME Support Desk' }), /MESSAGEBIRD_ORIGINATOR must be .* up to 11 letters and digits/)
  t.match(problems({ SMS_CHANNEL: 'messagebird' }), /MESSAGEBIRD_API_KEY is required when SMS_CHANNEL=messagebird/)
  t.match(problems({ SMS_CHANNEL: 'carrier-pigeon' }), /SMS_CHANNEL must be one of simulator, messagebird/)
  t.match(problems({ PUBLIC_URL: 'ftp://x' }), /PUBLIC_URL must be an http\(s\) URL/)
  t.match(problems({ DATABASE_URL: 'mysql://x' }), /DATABASE_URL must start with sqlite: or postgres:\/\//)
  t.match(problems({ CONFIRMATION_TEMPLATE: 'Thanks!' }), /CONFIRMATION_TEMPLATE must contain \{ref\}/)
  t.match(problems({ LOG_LEVEL: 'loud' }), /LOG_LEVEL must be one of/)
  t.match(problems({ NODE_ENV: 'production', MESSAGEBIRD_API_KEY: 'k', MESSAGEBIRD_ORIGINATOR: '3197010260000' }), /MESSAGEBIRD_SIGNING_KEY is required in production/)
  t.equal(problems({ NODE_ENV: 'production', MESSAGEBIRD_API_KEY: 'k', MESSAGEBIRD_ORIGINATOR: '3197010260000', ALLOW_UNSIGNED_WEBHOOKS: 'true' }), '')
  const several = problems({ PORT: 'x', LOG_LEVEL: 'y' })
  t.match(several, /PORT/)
  t.match(several, /LOG_LEVEL/, 'every problem is reported at once')
})

t.test('an empty or blank HELP_TEXT or CONFIRMATION_TEMPLATE is refused, not texted to customers', async (t) => {
  for (const value of ['', ' ', '\t\n  ']) {
    t.match(problems({ HELP_TEXT: value }), /HELP_TEXT must not be empty: it is texted to customers/, `HELP_TEXT=${JSON.stringify(value)}`)
    const confirmation = problems({ CONFIRMATION_TEMPLATE: value })
    t.match(confirmation, /CONFIRMATION_TEMPLATE must not be empty/, `CONFIRMATION_TEMPLATE=${JSON.stringify(value)}`)
    t.notMatch(confirmation, /must contain \{ref\}/, 'one clear message, not two')
  }
  const both = problems({ HELP_TEXT: '', CONFIRMATION_TEMPLATE: '' })
  t.match(both, /HELP_TEXT/)
  t.match(both, /CONFIRMATION_TEMPLATE/, 'both reported at once')
  t.equal(loadConfig({}).helpText.length > 0, true, 'unset still means the default')
  t.equal(loadConfig({ HELP_TEXT: '  Text us anytime.  ' }).helpText, '  Text us anytime.  ', 'a real text is kept as written')
})

t.test('metrics: a token must be long enough, and a metrics port differs from PORT', async (t) => {
  t.same(loadConfig({}).metrics, { token: null, port: null, host: '127.0.0.1' }, 'off by default')
  t.same(loadConfig({ METRICS_TOKEN: '0123456789abcdef', METRICS_PORT: '9464', METRICS_HOST: '10.0.0.5' }).metrics, { token: '0123456789abcdef', port: 9464, host: '10.0.0.5' })
  t.match(problems({ METRICS_TOKEN: 'short' }), /METRICS_TOKEN must be at least 16 characters/)
  t.match(problems({ METRICS_TOKEN: 'has a space in the middle' }), /METRICS_TOKEN must be at least 16 characters without spaces/)
  t.match(problems({ METRICS_PORT: '3000' }), /METRICS_PORT must differ from PORT \(both are 3000\)/)
  t.match(problems({ METRICS_PORT: 'nine' }), /METRICS_PORT must be a whole number between 1 and 65535/)
})

t.test('DATABASE_URL=postgres:// selects PostgreSQL with a pool size, a statement timeout and TLS settings, each validated', async (t) => {
  const c = loadConfig({ DATABASE_URL: 'postgres://textdesk:s3cret@db.example.com:5432/textdesk', DATABASE_POOL_SIZE: '20', DATABASE_STATEMENT_TIMEOUT_MS: '5000', DATABASE_SSL: 'require' })
  t.same(c.database, { kind: 'postgres', url: 'postgres://textdesk:s3cret@db.example.com:5432/textdesk', poolSize: 20, statementTimeoutMs: 5000, ssl: { mode: 'require', ca: null }, preparedStatements: true })
  t.same(loadConfig({ DATABASE_URL: 'postgresql://u@h/db' }).database, { kind: 'postgres', url: 'postgresql://u@h/db', poolSize: 10, statementTimeoutMs: 30_000, ssl: { mode: 'off', ca: null }, preparedStatements: true }, 'defaults')
  t.equal((loadConfig({ DATABASE_URL: 'postgres://u@h/db', DATABASE_PREPARED_STATEMENTS: 'off' }).database as { preparedStatements: boolean }).preparedStatements, false, 'prepared statements can be turned off')
  t.equal(describeDatabase(c.database), 'postgres://textdesk@db.example.com:5432/textdesk', 'logged without the password')
  const bad = (env: Record<string, string>): string => { try { loadConfig(env); return '' } catch (err) { return (err as ConfigError).problems.join('\n') } }
  t.match(bad({ DATABASE_URL: 'postgres://u:p@h' }), /must name the database after the host/)
  t.match(bad({ DATABASE_URL: 'postgres://u:p@h/db?sslmode=disable' }), /must not carry options after "\?"/)
  t.notMatch(bad({ DATABASE_URL: 'postgres://u:p@h/db?sslmode=disable' }), /:p@/, 'the password is not echoed')
  t.match(bad({ DATABASE_URL: 'postgres://u@h/db', DATABASE_POOL_SIZE: '0' }), /DATABASE_POOL_SIZE/)
  t.match(bad({ DATABASE_URL: 'postgres://u@h/db', DATABASE_SSL: 'maybe' }), /DATABASE_SSL must be one of off, require, verify-full/)
  t.match(bad({ DATABASE_URL: 'postgres://u@h/db', DATABASE_SSL: 'verify-full', DATABASE_SSL_CA_FILE: '/nonexistent/ca.pem' }), /DATABASE_SSL_CA_FILE cannot be read/)
  t.match(bad({ DATABASE_POOL_SIZE: '5' }), /DATABASE_POOL_SIZE applies to PostgreSQL only/)
  t.match(bad({ DATABASE_URL: 'postgres://u@h/db', DATABASE_PREPARED_STATEMENTS: 'yes' }), /DATABASE_PREPARED_STATEMENTS must be one of on, off/)
  t.equal(bad({ DATABASE_URL: 'postgres://u@h/db', SQLITE_SYNCHRONOUS: 'NORMAL' }), '', 'the example .env\'s SQLITE_SYNCHRONOUS does not stand in the way')
})

t.test('MESSAGEBIRD_ORIGINATORS: a list of senders, the first the default; MESSAGEBIRD_ORIGINATOR is the one-element case', async (t) => {
  const list = loadConfig({ MESSAGEBIRD_API_KEY: 'k', MESSAGEBIRD_ORIGINATORS: '+3197010260000, 447700900000,Bakery' })
  t.same(list.messagebird.originators, ['3197010260000', '447700900000', 'Bakery'], 'trimmed, stored without +')
  t.equal(list.messagebird.originator, '3197010260000', 'the first is the default')
  const single = loadConfig({ MESSAGEBIRD_API_KEY: 'k', MESSAGEBIRD_ORIGINATOR: '+3197010260000' })
  t.same(single.messagebird.originators, ['3197010260000'])
  t.same(loadConfig({}).messagebird.originators, [], 'none with the simulator')
  t.match(problems({ MESSAGEBIRD_API_KEY: 'k', MESSAGEBIRD_ORIGINATORS: '3197010260000,ACME Support Desk' }), /MESSAGEBIRD_ORIGINATORS must be a comma-separated list of senders, each a phone number .* \(got "ACME Support Desk"\)/)
  t.match(problems({ MESSAGEBIRD_API_KEY: 'k', MESSAGEBIRD_ORIGINATORS: '3197010260000,,447700900000' }), /\(got ""\)/, 'an empty entry')
  t.match(problems({ MESSAGEBIRD_API_KEY: 'k', MESSAGEBIRD_ORIGINATORS: '3197010260000,+3197010260000' }), /names \+3197010260000 twice/)
  t.match(problems({ MESSAGEBIRD_API_KEY: 'k', MESSAGEBIRD_ORIGINATOR: '3197010260000', MESSAGEBIRD_ORIGINATORS: '3197010260000' }), /Set MESSAGEBIRD_ORIGINATORS or MESSAGEBIRD_ORIGINATOR, not both/)
  t.match(problems({ SMS_CHANNEL: 'messagebird', MESSAGEBIRD_API_KEY: 'k' }), /MESSAGEBIRD_ORIGINATORS \(or MESSAGEBIRD_ORIGINATOR\) is required/)
})

t.test('MEDIA_HOSTS: host names only; the media limits are validated', async (t) => {
  t.same(loadConfig({ MEDIA_HOSTS: ' Media.MessageBird.com , cdn.example.com ' }).media.hosts, ['media.messagebird.com', 'cdn.example.com'])
  t.same(loadConfig({}).media, { hosts: ['media.messagebird.com'], maxBytes: 10 * 1024 * 1024, timeoutMs: 10_000 })
  t.throws(() => loadConfig({ MEDIA_HOSTS: 'https://media.messagebird.com/x' }), /MEDIA_HOSTS must be a comma-separated list of host names/)
  t.throws(() => loadConfig({ MEDIA_MAX_BYTES: '10' }), /MEDIA_MAX_BYTES must be between 1024/)
  t.throws(() => loadConfig({ MEDIA_TIMEOUT_MS: 'soon' }), /MEDIA_TIMEOUT_MS must be a whole number/)
})
