import type { MessageStatus } from '../db/schema.js'

// Status only moves forward (architecture invariant 4). Reports arrive late, twice and out of
// order; the worker, the opt-out and the reports race for the same row. Every status write is an
// `UPDATE … WHERE id = ? AND status IN (<the statuses below>)` (message-repository.ts), and whoever
// writes acts (listeners, outbox rows, provider calls) only when that UPDATE changed a row.

const BEFORE_SENT = ['queued', 'sending', 'unknown'] as const
const ACCEPTED = [...BEFORE_SENT, 'sent', 'buffered'] as const

/**
 * For each status, the statuses a message may be in to move to it: the one table every guarded
 * UPDATE is built from. `failed`, `expired`, `blocked` and `read` appear in no list, so they are
 * final; `delivered` appears only in `read`'s.
 *
 * The one move back is `sending` → `queued`: the worker's own retry after a transient failure,
 * where the provider told us it did not take the message (refused connection, 429, 5xx). The
 * message is exactly as unsent as before its claim, the worker still holds the outbox row's
 * lease, and no report maps to `queued` (see fromProviderStatus), so nothing else can take it.
 * Every other status is left only forwards.
 */
export const PREDECESSORS: { readonly [S in MessageStatus]: readonly MessageStatus[] } = {
  // Inbound messages are stored as `received` and never change.
  received: [],
  queued: ['sending'],
  // The worker's claim. Consent is checked in the same transaction (outbox-worker.ts).
  sending: ['queued'],
  // Only a send that may have reached the provider (a timeout, a crash mid-send) is unknown.
  unknown: ['sending'],
  sent: BEFORE_SENT,
  buffered: [...BEFORE_SENT, 'sent'],
  delivered: ACCEPTED,
  read: [...ACCEPTED, 'delivered'],
  failed: ACCEPTED,
  expired: ACCEPTED,
  // An opt-out stops what has not been handed to the provider yet, and nothing else.
  blocked: ['queued']
}

const FAILURES: ReadonlySet<MessageStatus> = new Set(['failed', 'expired', 'blocked'])

export function isFailure (s: MessageStatus): boolean {
  return FAILURES.has(s)
}

/** Whether a message in `current` may move to `next`, by the table above. */
export function canAdvance (current: MessageStatus, next: MessageStatus): boolean {
  return PREDECESSORS[next].includes(current)
}

/** Whether a message in `status` satisfies a failover condition. */
export function meetsCondition (status: MessageStatus, condition: 'delivered' | 'read'): boolean {
  return condition === 'delivered' ? status === 'delivered' || status === 'read' : status === 'read'
}

/** MessageBird SMS DLR statuses and Conversations API statuses, onto our model. */
export function fromProviderStatus (raw: string): MessageStatus | null {
  switch (raw.toLowerCase()) {
    case 'scheduled': case 'accepted': case 'pending': case 'transmitted': return 'sent'
    case 'sent': return 'sent'
    case 'buffered': return 'buffered'
    case 'delivered': return 'delivered'
    case 'read': return 'read'
    case 'expired': return 'expired'
    case 'delivery_failed': case 'failed': case 'rejected': case 'deleted': case 'unsupported': return 'failed'
    default: return null
  }
}

const LABELS: Record<MessageStatus, string> = {
  received: 'Received',
  queued: 'Queued',
  sending: 'Sending',
  unknown: 'Outcome unknown',
  sent: 'Sent',
  buffered: 'Buffered by carrier',
  delivered: 'Delivered',
  read: 'Read',
  failed: 'Failed',
  expired: 'Expired',
  blocked: 'Not sent'
}

export function statusLabel (s: MessageStatus): string {
  return LABELS[s]
}
