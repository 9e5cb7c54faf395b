import { readFileSync, readdirSync } from 'node:fs';
const dir = process.argv[2];
const f = readdirSync(dir).find((x) => x.endsWith('.cpuprofile'))!;
const prof = JSON.parse(readFileSync(`${dir}/${f}`, 'utf8'));
const byId = new Map<number, any>(prof.nodes.map((n: any) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const dt = (prof.endTime - prof.startTime) / 1000 / prof.samples.length;
const incl = new Map<string, number>();
const counts = new Map<number, number>();
for (const s of prof.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
for (const [id, c] of counts) {
  const seen = new Set<string>();
  let cur: number | undefined = id;
  while (cur !== undefined) {
    const n = byId.get(cur);
    const url: string = n.callFrame.url;
    if (url.includes('/work/main/') && !url.includes('node_modules')) {
      const key = `${n.callFrame.functionName || '(anon)'} ${url.replace(/.*\/work\/main\//, '')}`;
      if (!seen.has(key)) { seen.add(key); incl.set(key, (incl.get(key) ?? 0) + c * dt); }
    }
    cur = parent.get(cur);
  }
}
for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(Math.round(v), k);
