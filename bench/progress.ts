import type { Progress } from './load.ts';

const WIDTH = 24;
const tty = process.stderr.isTTY;
let lastPlain = 0;

/** Draws one progress line on stderr: redrawn in place on a terminal, every 5 s otherwise (CI logs). */
export function showProgress(label: string, p: Progress): void {
  const done = Math.min(1, p.elapsedS / p.durationS);
  const filled = Math.round(done * WIDTH);
  const line =
    `${label.padEnd(22)} [${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ` +
    `${p.elapsedS.toFixed(1).padStart(5)}/${p.durationS}s  sent ${p.sent}  ok ${p.ok}  err ${p.errors}  in flight ${p.inFlight}`;
  if (tty) {
    process.stderr.write(`\r\x1b[2K${line}`);
  } else if (performance.now() - lastPlain > 5000 || done >= 1) {
    lastPlain = performance.now();
    process.stderr.write(`${line}\n`);
  }
}

/** Ends a progress line so the next output starts on a fresh line. */
export function endProgress(): void {
  if (tty) process.stderr.write('\n');
}

/** A status line of the benchmark itself (starting processes, draining, writing results). */
export function say(message: string): void {
  process.stderr.write(`${message}\n`);
}
