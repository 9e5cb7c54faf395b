export interface Series {
  name: string;
  points: { x: number; y: number }[];
  color: string;
  dashed?: boolean;
  /** Draw the points only, unjoined (a measurement of another kind than the line's). */
  markersOnly?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  logY?: boolean;
  /** Horizontal reference lines, e.g. a target. */
  references?: { y: number; label: string }[];
  width?: number;
  height?: number;
}

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif"';

/** A self-contained SVG line chart (no script, no external font), readable on GitHub light and dark. */
export function lineChart(o: ChartOptions): string {
  const width = o.width ?? 760;
  const height = o.height ?? 420;
  const m = { left: 70, right: 180, top: 40, bottom: 55 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const all = o.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const refs = o.references ?? [];
  if (all.length === 0) return emptyChart(o.title, width, height);

  const xMax = niceCeil(Math.max(...all.map((p) => p.x)));
  const ys = [...all.map((p) => p.y), ...refs.map((r) => r.y)];
  const logY = o.logY ?? false;
  const yMinRaw = Math.max(1e-3, Math.min(...ys.filter((y) => y > 0)));
  const yMin = logY ? 10 ** Math.floor(Math.log10(yMinRaw)) : 0;
  const yMax = logY ? 10 ** Math.ceil(Math.log10(Math.max(...ys) * 1.05)) : niceCeil(Math.max(...ys) * 1.1);
  const sx = (x: number) => m.left + (x / xMax) * plotW;
  const sy = (y: number) => {
    const f = logY
      ? (Math.log10(Math.max(y, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))
      : y / yMax;
    return m.top + plotH - f * plotH;
  };

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${m.left}" y="24" font-size="15" font-weight="600" fill="#111">${esc(o.title)}</text>`,
  );
  // Grid and axes.
  const yTicks = logY ? logTicks(yMin, yMax) : linearTicks(yMax);
  for (const t of yTicks) {
    parts.push(
      `<line x1="${m.left}" x2="${m.left + plotW}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e5e7eb"/>`,
      `<text x="${m.left - 8}" y="${sy(t) + 4}" text-anchor="end" fill="#374151">${fmt(t)}</text>`,
    );
  }
  for (const t of linearTicks(xMax)) {
    parts.push(
      `<line x1="${sx(t)}" x2="${sx(t)}" y1="${m.top}" y2="${m.top + plotH}" stroke="#f3f4f6"/>`,
      `<text x="${sx(t)}" y="${m.top + plotH + 18}" text-anchor="middle" fill="#374151">${fmt(t)}</text>`,
    );
  }
  parts.push(
    `<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#9ca3af"/>`,
    `<text x="${m.left + plotW / 2}" y="${height - 12}" text-anchor="middle" fill="#111">${esc(o.xLabel)}</text>`,
    `<text transform="translate(18 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#111">${esc(o.yLabel)}</text>`,
  );
  for (const r of refs) {
    parts.push(
      `<line x1="${m.left}" x2="${m.left + plotW}" y1="${sy(r.y)}" y2="${sy(r.y)}" stroke="#dc2626" stroke-dasharray="2 4"/>`,
      `<text x="${m.left + plotW - 4}" y="${sy(r.y) - 4}" text-anchor="end" fill="#dc2626">${esc(r.label)}</text>`,
    );
  }
  // Series and legend.
  o.series.forEach((s, i) => {
    const pts = s.points
      .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y))
      .sort((a, b) => a.x - b.x);
    if (!s.markersOnly && pts.length > 1) {
      parts.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${pts
          .map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`)
          .join(' ')}"/>`,
      );
    }
    // Dense lines (timelines) read better without a dot per sample.
    for (const p of s.markersOnly || pts.length <= 40 ? pts : []) {
      parts.push(
        s.markersOnly
          ? `<rect x="${sx(p.x) - 4}" y="${sy(p.y) - 4}" width="8" height="8" fill="none" stroke="${s.color}" stroke-width="2"/>`
          : `<circle cx="${sx(p.x)}" cy="${sy(p.y)}" r="3" fill="${s.color}"/>`,
      );
    }
    const ly = m.top + 10 + i * 20;
    const lx = m.left + plotW + 16;
    parts.push(
      s.markersOnly
        ? `<rect x="${lx + 7}" y="${ly - 4}" width="8" height="8" fill="none" stroke="${s.color}" stroke-width="2"/>`
        : `<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${lx + 28}" y="${ly + 4}" fill="#111">${esc(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

function emptyChart(title: string, width: number, height: number): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ${FONT}>` +
    `<rect width="100%" height="100%" fill="#fff"/><text x="20" y="30">${esc(title)}: no data</text></svg>\n`
  );
}

function niceCeil(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const f of [1, 2, 2.5, 5, 10]) if (v <= f * p) return f * p;
  return 10 * p;
}

function linearTicks(max: number): number[] {
  const step = niceCeil(max / 5);
  const ticks: number[] = [];
  for (let t = 0; t <= max + 1e-9; t += step) ticks.push(t);
  return ticks;
}

function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.log10(min); e <= Math.log10(max) + 1e-9; e++) {
    for (const f of [1, 2, 5]) {
      const t = f * 10 ** e;
      if (t >= min && t <= max) ticks.push(t);
    }
  }
  return ticks;
}

function fmt(v: number): string {
  if (v >= 1000) return `${v / 1000}k`;
  if (v >= 1) return String(Math.round(v * 100) / 100);
  return String(Number(v.toPrecision(2)));
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
