import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A process the benchmark started: one api, a worker, the bare Koa server. */
export interface BenchProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  logFile: string;
  /** Resolves with the exit code once the process is gone. */
  exited: Promise<number | null>;
}

/** Starts `node --import tsx <entry>` from the repository root, its output going to a log file. */
export function startNode(
  name: string,
  entry: string,
  env: Record<string, string>,
  options: { logDir: string; nodeArgs?: string[] },
): BenchProcess {
  const logFile = path.join(options.logDir, `${name}.log`);
  // Straight to the file: piped through here, every log line would cost the load generator's process CPU.
  const log = openSync(logFile, 'w');
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', entry], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { name, pid: child.pid!, child, logFile, exited };
}

/** SIGTERM (graceful shutdown), then SIGKILL if it is still there after `graceMs`. */
export async function stopProcess(p: BenchProcess, graceMs = 15_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(timer);
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * `count` consecutive free ports below Linux's ephemeral range (32768 and up), so that no outgoing connection of
 * the run can take one of them before the process meant to listen there starts.
 */
export async function freePortRange(count: number): Promise<number> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * (12_000 - count));
    const ports = Array.from({ length: count }, (_, i) => base + i);
    if ((await Promise.all(ports.map(isFree))).every(Boolean)) return base;
  }
}

function isFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Memory and CPU of a live process, from /proc (Linux). */
export interface ProcessUsage {
  /** Peak resident set size over the process's life (VmHWM), MB. */
  peakRssMb: number;
  rssMb: number;
  /** User + system CPU time so far, seconds. */
  cpuS: number;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

export function processUsage(pid: number): ProcessUsage | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    // Fields after the command name, which is in parentheses and may hold spaces.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { peakRssMb: kb('VmHWM') / 1024, rssMb: kb('VmRSS') / 1024, cpuS: ticks / CLOCK_TICKS };
  } catch {
    return undefined;
  }
}

/** The benchmark's own process: its peak RSS and CPU time. */
export function ownUsage(): ProcessUsage {
  const u = process.resourceUsage();
  return {
    peakRssMb: u.maxRSS / 1024,
    rssMb: process.memoryUsage.rss() / 1024 / 1024,
    cpuS: (u.userCPUTime + u.systemCPUTime) / 1e6,
  };
}

/** Busy and total CPU time of the whole machine so far (jiffies), to tell how loaded it was during a run. */
export function machineCpu(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = v[3] + (v[4] ?? 0);
    const total = v.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** The machine's shared services, by the command names of their processes. */
const SERVICE_COMMANDS: Record<string, string[]> = {
  PostgreSQL: ['postgres'],
  RabbitMQ: ['beam.smp', 'erl_child_setup', 'inet_gethost', 'epmd'],
  Redis: ['redis-server'],
};

/** CPU seconds so far of every process of each shared service, by pid (a backend started later counts from 0). */
export function serviceCpu(): Map<string, Map<number, number>> {
  const byService = new Map<string, Map<number, number>>(
    Object.keys(SERVICE_COMMANDS).map((name) => [name, new Map()]),
  );
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return byService;
  }
  for (const pid of pids) {
    let comm: string;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    const service = Object.keys(SERVICE_COMMANDS).find((name) => SERVICE_COMMANDS[name].includes(comm));
    if (!service) continue;
    const usage = processUsage(Number(pid));
    if (usage) byService.get(service)!.set(Number(pid), usage.cpuS);
  }
  return byService;
}

/** CPU seconds each shared service used between two `serviceCpu()` snapshots. */
export function serviceCpuSince(
  before: Map<string, Map<number, number>>,
  after: Map<string, Map<number, number>>,
): { name: string; cpuS: number }[] {
  return [...after].map(([name, pids]) => ({
    name,
    cpuS: [...pids].reduce((sum, [pid, cpu]) => sum + cpu - (before.get(name)?.get(pid) ?? 0), 0),
  }));
}
