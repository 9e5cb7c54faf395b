import { readdirSync, readFileSync } from 'node:fs';

/** Whether a process is still there. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A process and every process under it, with their command lines. */
export function processTree(root: number): { pid: number; argv: string[] }[] {
  const all: { pid: number; ppid: number; argv: string[] }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // After the command name (in parentheses): state, ppid, …
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      all.push({
        pid: Number(entry),
        ppid,
        argv: readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0'),
      });
    } catch {
      // It exited while we looked.
    }
  }
  const tree = new Set([root]);
  for (let grown = true; grown;) {
    grown = false;
    for (const p of all)
      if (!tree.has(p.pid) && tree.has(p.ppid)) {
        tree.add(p.pid);
        grown = true;
      }
  }
  return all.filter((p) => tree.has(p.pid)).map(({ pid, argv }) => ({ pid, argv }));
}
