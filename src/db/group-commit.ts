import { nativeConnection, postgresNative, ROOT_DB_IN_UNIT, type Db, type NativeConnection, type PostgresNative, type UnitExecutor, type UnitScope } from './database.js'
import { executeDirectly } from './prepared.js'

interface Job<R> {
  work: (unit: UnitExecutor) => Promise<R>
  resolve: (value: R) => void
  reject: (err: unknown) => void
}

const MAX_BATCH = 64

/**
 * Runs units of work, each committed before its caller resumes: the webhook acknowledges, the
 * worker sends, only after the commit that made its work durable. A failing unit rolls back its
 * own work alone and rejects with its error. A unit must use the executor it is given.
 */
export interface UnitRunner {
  run: <R>(work: (unit: UnitExecutor) => Promise<R>) => Promise<R>
}

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
export class GroupCommitter implements UnitRunner {
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

/**
 * PostgreSQL's units: one transaction per call, on a pooled connection. The server already shares
 * one WAL flush between transactions that commit at the same moment (group commit is built into
 * its WAL writer), and concurrent units run on separate connections instead of queueing behind one,
 * so batching here would only add latency. The guarantees are those of GroupCommitter: the caller
 * resumes after its own commit, and a failure rolls back that unit alone.
 */
export class TransactionPerUnit implements UnitRunner {
  constructor (private readonly db: Db, private readonly pg: PostgresNative) {}

  async run<R> (work: (unit: UnitExecutor) => Promise<R>): Promise<R> {
    const units = this.pg.units
    if (units?.getStore()?.running === true) throw new Error(ROOT_DB_IN_UNIT)
    return await this.db.transaction().execute(async (trx) => {
      const unit = trx as unknown as UnitExecutor
      if (units === null) return await work(unit)
      const scope: UnitScope = { running: true }
      try {
        return await units.run(scope, async () => await work(unit))
      } finally {
        scope.running = false
      }
    })
  }
}

const shared = new WeakMap<Db, UnitRunner>()

/**
 * The one unit runner of a database. Inbound webhooks, outbox sends and delivery reports all
 * commit through it: on SQLite they share commits under load (GroupCommitter), on PostgreSQL each
 * is a transaction of its own (TransactionPerUnit).
 */
export function groupCommitter (db: Db): UnitRunner {
  let committer = shared.get(db)
  if (committer === undefined) {
    const native = nativeConnection(db)
    const pg = native === undefined ? postgresNative(db) : undefined
    if (native !== undefined) committer = new GroupCommitter(db, native)
    else if (pg !== undefined) committer = new TransactionPerUnit(db, pg)
    else throw new Error('group commit needs a database made by createDatabase()')
    shared.set(db, committer)
  }
  return committer
}
