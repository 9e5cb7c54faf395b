import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './processes.ts';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

export interface ProfileEntry {
  where: string;
  selfMs: number;
  share: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** Self time by area: comanda's code, each package, node internals, garbage collection, idle. */
  byArea: ProfileEntry[];
  /** The functions with the most self time. */
  topFunctions: ProfileEntry[];
}

/**
 * Reads the `.cpuprofile` files of `dir` (written by `node --cpu-prof` at exit, one per thread: the main
 * thread and the module loader's) and says where the busiest one, the main thread, spent its time.
 */
export function summarizeCpuProfile(dir: string, top = 15): ProfileSummary | undefined {
  const summaries = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => summarizeFile(path.join(dir, f), top));
  const busy = (s: ProfileSummary) => s.totalMs - (s.byArea.find((a) => a.where === 'idle')?.selfMs ?? 0);
  return summaries.sort((a, b) => busy(b) - busy(a))[0];
}

function summarizeFile(file: string, top: number): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const totalMs = (profile.endTime - profile.startTime) / 1000;
  const sampleMs = profile.samples.length ? totalMs / profile.samples.length : 0;

  const byArea = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const node of profile.nodes) {
    const ms = (node.hitCount ?? 0) * sampleMs;
    if (ms === 0) continue;
    const area = areaOf(node.callFrame);
    byArea.set(area, (byArea.get(area) ?? 0) + ms);
    const name = `${node.callFrame.functionName || '(anonymous)'} ${shortUrl(node.callFrame.url)}${
      node.callFrame.url ? `:${node.callFrame.lineNumber + 1}` : ''
    }`.trim();
    byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
  }
  const entries = (m: Map<string, number>) =>
    [...m]
      .map(([where, selfMs]) => ({ where, selfMs, share: totalMs ? selfMs / totalMs : 0 }))
      .sort((a, b) => b.selfMs - a.selfMs);
  return {
    file,
    totalMs,
    byArea: entries(byArea),
    topFunctions: entries(byFunction)
      .filter((e) => e.where !== '(idle)')
      .slice(0, top),
  };
}

function areaOf(frame: CpuProfileNode['callFrame']): string {
  const { url, functionName } = frame;
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'garbage collection';
  if (functionName === '(program)' || functionName === '(root)') return 'node/V8 (program)';
  if (!url) return 'node/V8 (native)';
  if (url.startsWith('node:') || url.startsWith('wasm:')) return 'node core';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return `package ${pkg[1]}`;
  const rel = shortUrl(url);
  return `comanda ${rel.split('/')[0]}/`;
}

function shortUrl(url: string): string {
  const file = url.replace(/^file:\/\//, '');
  const nm = file.lastIndexOf('node_modules/');
  if (nm >= 0) return file.slice(nm + 'node_modules/'.length);
  return file.startsWith(ROOT) ? file.slice(ROOT.length) : file;
}
