import type { Db } from '../lib/db.ts';
import { finishAttempts, type FinishedAttempt } from '../webhooks/dispatch.ts';

const MAX_BATCH = 200;

/**
 * Group commit for attempt records: attempts that finish while a write is under way are written together by the
 * next one. Alone, an attempt is written at once; under load, one transaction records many.
 */
export class AttemptRecorder {
  private queue: {
    attempt: FinishedAttempt;
    done: (recorded: boolean) => void;
    fail: (err: unknown) => void;
  }[] = [];
  private writing: Promise<void> | undefined;

  constructor(private readonly db: Db) {}

  /** Resolves once the attempt is committed: true if recorded, false if the lease was lost meanwhile. */
  record(attempt: FinishedAttempt): Promise<boolean> {
    return new Promise((done, fail) => {
      this.queue.push({ attempt, done, fail });
      this.writing ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        const recorded = await finishAttempts(
          this.db,
          batch.map((b) => b.attempt),
        );
        batch.forEach((b, i) => b.done(recorded[i]));
      } catch (err) {
        batch.forEach((b) => b.fail(err));
      }
    }
    this.writing = undefined;
  }
}
