import type { AgentService, SignedInAgent } from './agent-service.js'
import { HashQueueFull } from './hash-gate.js'
import { accountThrottleKey, addressThrottleKey, type LoginThrottle, type ThrottleVerdict } from './login-throttle.js'

export type SignInResult =
  | { kind: 'signed-in', agent: SignedInAgent }
  /** Refused before the password was checked: too many failures, or a wait still running. */
  | { kind: 'throttled', retryAfterSeconds: number, lockedOut: boolean }
  /** Wrong email or password; `next` is what the next attempt faces. */
  | { kind: 'invalid', next: ThrottleVerdict }
  | { kind: 'disabled' }
  /** Not checked: too many passwords are being checked at once. */
  | { kind: 'busy', retryAfterSeconds: number }

/**
 * One sign-in attempt: the attempt is counted against the account and the client address before
 * the password is hashed, and settled after, so parallel guesses cannot run more checks than the
 * limits allow (see LoginThrottle).
 */
export async function attemptSignIn (deps: { agents: AgentService, throttle: LoginThrottle }, input: { email: string, password: string, ip: string }): Promise<SignInResult> {
  const { agents, throttle } = deps
  const accountKey = accountThrottleKey(input.email)
  const reserved = await throttle.reserve([accountKey, addressThrottleKey(input.ip)])
  if (!reserved.allowed) return { kind: 'throttled', retryAfterSeconds: reserved.retryAfterSeconds, lockedOut: reserved.lockedOut }
  const { reservation } = reserved
  let result: Awaited<ReturnType<AgentService['authenticate']>>
  try {
    result = await agents.authenticate(input.email, input.password)
  } catch (err) {
    // Not a guess that was checked: it is given back, whatever went wrong.
    await throttle.refund(reservation)
    if (err instanceof HashQueueFull) return { kind: 'busy', retryAfterSeconds: err.retryAfterSeconds }
    throw err
  }
  if (result.ok) {
    await throttle.succeed(reservation, accountKey)
    return { kind: 'signed-in', agent: result.agent }
  }
  if (result.reason === 'disabled') {
    // The right password: not a failure, and "disabled" is only ever told to someone who knows it.
    await throttle.refund(reservation)
    return { kind: 'disabled' }
  }
  return { kind: 'invalid', next: await throttle.fail(reservation) }
}
