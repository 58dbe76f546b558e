import { EventEmitter } from 'node:events'
import { UserError } from '../errors.js'

export const SIGN_IN_BUSY_MESSAGE = 'Sign-in is busy right now: too many sign-ins are being checked at once. Nothing was checked; try again in a moment.'

/** Refused because the password-hash queue is full; the caller answers 503 with Retry-After. */
export class HashQueueFull extends UserError {
  readonly retryAfterSeconds = 1
  constructor () {
    super(503, SIGN_IN_BUSY_MESSAGE, 'SIGN_IN_BUSY')
  }
}

/**
 * Bounds the password hashes (scrypt) that run at once. Node runs scrypt on libuv's thread pool
 * (4 threads unless UV_THREADPOOL_SIZE says otherwise), which file system, DNS and zlib work share:
 * an unbounded burst of sign-ins would occupy every thread, and everything else in the process
 * would wait behind it. At most `concurrency` hashes run; up to `queue` more wait their turn in
 * arrival order; any more are refused at once with HashQueueFull.
 *
 * Emits `hash` when a hash starts and `queued` when one starts waiting (for tests and metrics).
 */
export class HashGate extends EventEmitter {
  private running = 0
  private readonly waiting: Array<() => void> = []
  /** Hashes started since the gate was made. */
  started = 0

  constructor (private readonly opts: { concurrency: number, queue: number }) {
    super()
  }

  get queued (): number {
    return this.waiting.length
  }

  get active (): number {
    return this.running
  }

  async run<T> (hash: () => Promise<T>): Promise<T> {
    if (this.running < this.opts.concurrency) {
      this.running++
    } else {
      if (this.waiting.length >= this.opts.queue) throw new HashQueueFull()
      // The slot is handed over by the hash that finishes, so `running` never exceeds the bound.
      const turn = new Promise<void>((resolve) => this.waiting.push(resolve))
      this.emit('queued', this.waiting.length)
      await turn
    }
    this.started++
    this.emit('hash', this.started)
    try {
      return await hash()
    } finally {
      const next = this.waiting.shift()
      if (next !== undefined) next()
      else this.running--
    }
  }
}
