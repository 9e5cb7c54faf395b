import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from './logger.ts';

/** One kind of child process: its entry point, how many of it, and extra environment. */
export interface RoleSpec {
  role: string;
  /** The module it runs, relative to the working directory (the same one `npm run start:<role>` runs). */
  entry: string;
  count?: number;
  env?: (index: number) => Record<string, string>;
  /** Node options of this role's processes, after the supervisor's own (which they inherit). */
  nodeArgs?: string[];
}

export interface SupervisorOptions {
  /** Started in this order and stopped in reverse order of `stopOrder` (default: the order given). */
  roles: RoleSpec[];
  /** The order in which roles are stopped: the one taking requests first, the ones delivering last. */
  stopOrder?: string[];
  logger: Logger;
  env: NodeJS.ProcessEnv;
  /**
   * Each line a child writes on stdout, with the child's role; absent, children write to this process's stdout
   * directly (no hop through here, and each line already names its role: COMANDA_ROLE).
   */
  onLine?: (line: string, child: { role: string; index: number }) => void;
  /** A child said it is up (`url`: where it serves, if it does). */
  onReady?: (child: { role: string; index: number; url?: string | undefined }) => void;
  /** First restart delay after a crash; doubled on each crash in a row, up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A child that ran this long before it crashed restarts after `backoffMs` again. */
  healthyAfterMs?: number;
}

interface Slot {
  role: RoleSpec;
  index: number;
  child?: ChildProcess | undefined;
  /** Resolves when the current child said it is up (or exited). */
  ready?: Promise<void> | undefined;
  startedAt: number;
  crashes: number;
  timer?: NodeJS.Timeout | undefined;
}

/**
 * Runs each role in a process of its own (so the pipeline uses every core) and keeps them running: a child that
 * dies is reported and restarted with a growing delay. `stop()` stops the roles one after another with SIGTERM,
 * each finishing its work within its own grace period; a Ctrl-C reaches only this process, which stops them so.
 * Children get an IPC channel: if this process dies without stopping them, they see the channel close and shut
 * down by themselves.
 */
export class Supervisor {
  private readonly slots: Slot[] = [];
  private stopping = false;

  constructor(private readonly options: SupervisorOptions) {
    for (const role of options.roles) {
      for (let index = 0; index < (role.count ?? 1); index++) {
        this.slots.push({ role, index, startedAt: 0, crashes: 0 });
      }
    }
  }

  start(): void {
    for (const slot of this.slots) this.launch(slot);
  }

  /** The running children, by role: for tests and for operators' logs. */
  get children(): { role: string; index: number; pid: number | undefined }[] {
    return this.slots.map((s) => ({ role: s.role.role, index: s.index, pid: s.child?.pid }));
  }

  private launch(slot: Slot): void {
    const { role, index } = slot;
    const { onLine, onReady } = this.options;
    const child = spawn(process.execPath, [...process.execArgv, ...(role.nodeArgs ?? []), role.entry], {
      env: { ...this.options.env, COMANDA_ROLE: `${role.role}.${index}`, ...role.env?.(index) },
      stdio: ['ignore', onLine ? 'pipe' : 'inherit', 'inherit', 'ipc'],
      // A process group of its own: Ctrl-C in a terminal signals the whole foreground group, and a child that got
      // it too would begin stopping at once, out of order, then take the SIGTERM of the ordered stop for a second
      // signal and exit with its work cut short. Should this process die, the IPC channel still ends the child.
      detached: true,
    });
    slot.child = child;
    slot.startedAt = Date.now();
    slot.ready = new Promise<void>((resolve) => {
      child.on('message', (m: { type?: string; url?: string }) => {
        if (m?.type !== 'ready') return;
        onReady?.({ role: role.role, index, url: m.url });
        resolve();
      });
      child.once('exit', () => resolve());
    });
    this.options.logger.info({ role: role.role, index, pid: child.pid }, 'child started');
    if (onLine)
      createInterface({ input: child.stdout! }).on('line', (line) =>
        onLine(line, { role: role.role, index }),
      );
    child.once('exit', (code, signal) => {
      if (slot.child === child) slot.child = undefined;
      if (this.stopping) return;
      const { backoffMs = 500, maxBackoffMs = 30_000, healthyAfterMs = 30_000 } = this.options;
      slot.crashes = Date.now() - slot.startedAt > healthyAfterMs ? 1 : slot.crashes + 1;
      const delay = Math.min(maxBackoffMs, backoffMs * 2 ** (slot.crashes - 1));
      this.options.logger.error(
        { role: role.role, index, pid: child.pid, code, signal, restart_in_ms: delay, crashes: slot.crashes },
        'child exited unexpectedly; restarting',
      );
      slot.timer = setTimeout(() => {
        slot.timer = undefined;
        if (!this.stopping) this.launch(slot);
      }, delay);
    });
  }

  /** Stops every role in stop order; resolves with true when each child exited 0. */
  async stop(): Promise<boolean> {
    this.stopping = true;
    for (const slot of this.slots) if (slot.timer) clearTimeout(slot.timer);
    const order = this.options.stopOrder ?? this.options.roles.map((r) => r.role);
    let clean = true;
    for (const role of order) {
      const exits = this.slots
        .filter((s) => s.role.role === role && s.child)
        .map(async (s) => {
          const child = s.child!;
          const exited = new Promise<number | null>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
            else child.once('exit', (code) => resolve(code));
          });
          // A child still starting has no SIGTERM handler yet: let it come up, then stop it properly.
          await s.ready;
          child.kill('SIGTERM');
          return exited;
        });
      const codes = await Promise.all(exits);
      if (codes.some((c) => c !== 0)) clean = false;
      this.options.logger.info({ role, codes }, 'role stopped');
    }
    return clean;
  }

  /** Ends every child at once (a second Ctrl-C). */
  kill(): void {
    this.stopping = true;
    for (const slot of this.slots) {
      if (slot.timer) clearTimeout(slot.timer);
      slot.child?.kill('SIGKILL');
    }
  }
}
