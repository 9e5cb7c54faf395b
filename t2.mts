import { summarizeCpuProfile } from './bench/profile.ts';
for (const p of process.argv.slice(2)) {
  const s = summarizeCpuProfile(p, 30)!;
  console.log(p, 'total', Math.round(s.totalMs));
  for (const e of s.byArea.slice(0, 16)) console.log('  area', e.where, Math.round(e.selfMs));
  for (const e of s.topFunctions) console.log('  fn', e.where, Math.round(e.selfMs));
}
