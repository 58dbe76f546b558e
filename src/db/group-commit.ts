import { nativeConnection, ROOT_DB_IN_UNIT, type Db, type NativeConnection, type UnitExecutor, type UnitScope } from './database.js'
import { executeDirectly } from './prepared.js'

interface Job<R> {
  work: (unit: UnitExecutor) => Promise<R>
  resolve: (value: R) => void
  reject: (err: unknown) => void
}

const MAX_BATCH = 64

/**
 * Group commit: units of work that arrive while the event loop is busy are run in one
 * transaction, each inside its own savepoint, and committed together. Every caller still learns
 * its outcome only after the commit that made it durable (so a webhook is acknowledged only
 * after commit), and one unit's failure rolls back that unit alone. Under load this turns one
 * commit (and its WAL write) per webhook into one per batch.
 *
 * The batch holds Kysely's connection for its whole run, so no other query can slip in between;
 * transaction statements and prepared queries go to better-sqlite3 directly (see prepared.ts),
 * and any other Kysely query the work runs executes on that same connection, inside the batch.
 * A unit must therefore use the executor it is given (a UnitExecutor) and never the root
 * database, which would wait for the connection its own batch holds. Outside production each
 * unit runs in an AsyncLocalStorage scope, and such a query throws ROOT_DB_IN_UNIT instead.
 */
export class GroupCommitter {
  private queue: Array<Job<any>> = []
  private scheduled = false

  constructor (private readonly db: Db, private readonly native: NativeConnection) {}

  async run<R> (work: (unit: UnitExecutor) => Promise<R>): Promise<R> {
    // Waiting for another unit from inside one is the same deadlock: this batch never ends.
    if (this.native.units?.getStore()?.running === true) throw new Error(ROOT_DB_IN_UNIT)
    return await new Promise<R>((resolve, reject) => {
      this.queue.push({ work, resolve, reject })
      if (!this.scheduled) {
        this.scheduled = true
        // After the current I/O phase, so every request parsed in it joins the same batch.
        setImmediate(() => { void this.flush() })
      }
    })
  }

  private exec (sql: string): void {
    this.native.prepare(sql).run()
  }

  private async flush (): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH)
      const outcomes: Array<{ ok: true, value: unknown } | { ok: false, err: unknown }> = []
      try {
        await this.db.connection().execute(async (conn) => {
          const unit = conn as UnitExecutor
          executeDirectly(unit, this.native)
          this.exec('begin immediate')
          try {
            for (const job of batch) {
              this.exec('savepoint unit')
              const callbacksBefore = this.native.afterCommit.length
              const scope: UnitScope = { running: true }
              try {
                const units = this.native.units
                const value = units === null ? await job.work(unit) : await units.run(scope, async () => await job.work(unit))
                outcomes.push({ ok: true, value })
              } catch (err) {
                this.exec('rollback to unit')
                this.native.rolledBack(callbacksBefore)
                outcomes.push({ ok: false, err })
              } finally {
                // Work the unit deferred (a timer, setImmediate) keeps its scope but runs after it.
                scope.running = false
              }
              this.exec('release unit')
            }
            this.exec('commit')
          } catch (err) {
            this.native.rolledBack()
            if (this.native.inTransaction()) this.exec('rollback')
            throw err
          }
          this.native.committed()
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

const shared = new WeakMap<Db, GroupCommitter>()

/**
 * The one group committer of a database. Inbound webhooks, outbox sends and delivery reports all
 * commit through it, so under load they share commits rather than each paying for its own.
 */
export function groupCommitter (db: Db): GroupCommitter {
  let committer = shared.get(db)
  if (committer === undefined) {
    const native = nativeConnection(db)
    if (native === undefined) throw new Error('group commit needs a database made by createDatabase()')
    committer = new GroupCommitter(db, native)
    shared.set(db, committer)
  }
  return committer
}
