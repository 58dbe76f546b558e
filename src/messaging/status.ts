import type { MessageStatus } from '../db/schema.js'

// Status only moves forward (architecture invariant 4). Reports arrive late, twice and out of
// order; a failure is final, and after `delivered` only `read` may follow.
const RANK: Record<MessageStatus, number> = {
  received: 0,
  queued: 1,
  sending: 2,
  unknown: 3,
  sent: 4,
  buffered: 5,
  delivered: 6,
  read: 7,
  failed: 8,
  expired: 8,
  blocked: 8
}

const FAILURES: ReadonlySet<MessageStatus> = new Set(['failed', 'expired', 'blocked'])

export function isFailure (s: MessageStatus): boolean {
  return FAILURES.has(s)
}

/** Whether a message in `current` may move to `next`. */
export function canAdvance (current: MessageStatus, next: MessageStatus): boolean {
  if (current === next) return false
  if (FAILURES.has(current) || current === 'read') return false
  if (current === 'delivered') return next === 'read'
  return RANK[next] > RANK[current]
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
