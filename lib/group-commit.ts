import { commitShared, shareTransaction, type Db, type Tx } from './db.ts';

export interface GroupCommitOptions {
  /** The most works in one transaction. 1: every work has a transaction of its own. */
  maxBatch: number;
  /**
   * Whether `err`, thrown by a work, refuses that work's request before the work wrote anything (a 4xx of the
   * domain): it then fails that work alone, and the others still commit together.
   */
  isRefusal: (err: unknown) => boolean;
  /** Told the size of each group as it is committed (a work alone is a group of 1), for metrics. */
  observe?: (size: number) => void;
}

interface Member {
  work: (tx: Tx) => Promise<unknown>;
  key: string | undefined;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit: works that arrive while a transaction is on its way run together in the next one, concurrently on
 * its connection (their statements pipelined), and that transaction commits once for all of them. A transaction's
 * cost is mostly its round trips, wake-ups and commit (a WAL flush), not its statements, so under load n works cost
 * about what one did; an idle group adds no wait, and one work alone runs in its own transaction as before.
 *
 * Each work still commits exactly when it succeeds: when every work of a group succeeded or was refused
 * (`isRefusal`), the group commits and each caller gets its own outcome; when anything else failed (a statement's
 * error aborts the shared transaction for all), the group rolls back and every work runs again alone, in a
 * transaction of its own, so a failure is only ever its own work's. Works of one group must not read each other's
 * writes, and works with the same `key` never share a group (the later one waits for the next).
 */
export class GroupCommit {
  private readonly waiting: Member[] = [];
  private running = false;
  /** Groups that could not commit as they were, whose works ran again one by one. */
  splits = 0;

  constructor(
    private readonly db: Db,
    private readonly options: GroupCommitOptions,
  ) {}

  /** Runs `work` in a transaction, maybe shared with other works, and resolves once that transaction committed. */
  run<T>(work: (tx: Tx) => Promise<T>, key?: string): Promise<T> {
    if (this.options.maxBatch <= 1) {
      this.options.observe?.(1);
      return this.db.transaction(work);
    }
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ work, key, resolve: resolve as (value: unknown) => void, reject });
      if (this.running) return;
      this.running = true;
      // After this turn of the event loop: the requests read in one poll of the sockets go in one group.
      setImmediate(() => void this.drain());
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiting.length) await this.runGroup(this.nextGroup());
    } finally {
      this.running = false;
    }
  }

  /** Takes the next group off the queue: in arrival order, skipping works whose key is already in it. */
  private nextGroup(): Member[] {
    const group: Member[] = [];
    const keys = new Set<string>();
    for (let i = 0; i < this.waiting.length && group.length < this.options.maxBatch;) {
      const member = this.waiting[i];
      if (member.key !== undefined && keys.has(member.key)) {
        i++;
        continue;
      }
      if (member.key !== undefined) keys.add(member.key);
      group.push(member);
      this.waiting.splice(i, 1);
    }
    return group;
  }

  private async runGroup(group: Member[]): Promise<void> {
    this.options.observe?.(group.length);
    if (group.length === 1) {
      await this.alone(group[0]);
      return;
    }
    let outcomes: PromiseSettledResult<unknown>[] | undefined;
    let started = false;
    try {
      await this.db.transaction(async (tx) => {
        started = true;
        shareTransaction(tx);
        const settled = await Promise.allSettled(group.map((m) => m.work(tx)));
        const clean = settled.every((s) => s.status === 'fulfilled' || this.options.isRefusal(s.reason));
        if (!clean) throw new GroupSplit();
        // Fails (and the group splits) if any statement of it failed, even one whose work did not wait for it.
        await commitShared(tx);
        outcomes = settled;
      });
    } catch (err) {
      // No connection to be had (the pool is exhausted, the database away): alone, each would wait for one again.
      if (!started) {
        for (const m of group) m.reject(err);
        return;
      }
      outcomes = undefined;
    }
    if (!outcomes) {
      this.splits++;
      await Promise.all(group.map((m) => this.alone(m)));
      return;
    }
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome.status === 'fulfilled') group[i].resolve(outcome.value);
      else group[i].reject(outcome.reason);
    }
  }

  private async alone(member: Member): Promise<void> {
    try {
      member.resolve(await this.db.transaction(member.work));
    } catch (err) {
      member.reject(err);
    }
  }
}

/** Rolls a group's transaction back: its works run again one by one. */
class GroupSplit extends Error {}
