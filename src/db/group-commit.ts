import { CompiledQuery, type Kysely, type Transaction } from 'kysely'

interface Job<T, R> {
  work: (trx: Transaction<T>) => Promise<R>
  resolve: (value: R) => void
  reject: (err: unknown) => void
}

const MAX_BATCH = 64
const SAVEPOINT = CompiledQuery.raw('savepoint unit')
const ROLLBACK_TO = CompiledQuery.raw('rollback to unit')
const RELEASE = CompiledQuery.raw('release unit')

/**
 * Group commit: units of work that arrive while the event loop is busy are run in one
 * transaction, each inside its own savepoint, and committed together. Every caller still learns
 * its outcome only after the commit that made it durable (so a webhook is acknowledged only
 * after commit), and one unit's failure rolls back that unit alone. Under load this turns one
 * commit (and its WAL write) per webhook into one per batch.
 */
export class GroupCommitter<T> {
  private queue: Array<Job<T, any>> = []
  private scheduled = false

  constructor (private readonly db: Kysely<T>) {}

  async run<R> (work: (trx: Transaction<T>) => Promise<R>): Promise<R> {
    return await new Promise<R>((resolve, reject) => {
      this.queue.push({ work, resolve, reject })
      if (!this.scheduled) {
        this.scheduled = true
        // After the current I/O phase, so every request parsed in it joins the same batch.
        setImmediate(() => { void this.flush() })
      }
    })
  }

  private async flush (): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH)
      const outcomes: Array<{ ok: true, value: unknown } | { ok: false, err: unknown }> = []
      try {
        await this.db.transaction().execute(async (trx) => {
          for (const job of batch) {
            if (batch.length === 1) {
              outcomes.push({ ok: true, value: await job.work(trx) })
              continue
            }
            await trx.executeQuery(SAVEPOINT)
            try {
              outcomes.push({ ok: true, value: await job.work(trx) })
            } catch (err) {
              await trx.executeQuery(ROLLBACK_TO)
              outcomes.push({ ok: false, err })
            }
            await trx.executeQuery(RELEASE)
          }
        })
      } catch (err) {
        for (const job of batch) job.reject(err)
        continue
      }
      batch.forEach((job, i) => {
        const o = outcomes[i]
        if (o.ok) job.resolve(o.value)
        else job.reject(o.err)
      })
    }
    this.scheduled = false
  }
}
