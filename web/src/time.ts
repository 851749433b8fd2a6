// One clock and one format (一个时钟): every time the console shows is data
// time — the time of the readings, in the corridor's zone — written
// `2026-12-08 07:25:40`. No browser clock, no locale formats.
//
// The server stamps a few things with its own wall clock (a proposal's
// deadline, a device's last contact, the audit). Those are shown in data
// time too: `/api/health` tells when the last tick closed in both clocks,
// and the data clock's rate (1 live, 10× or 60× in the demo) follows from
// two such pairs.

let tzOffsetS = 8 * 3600;

/** The corridor's offset from UTC (s), from the road book. */
export function setTz(s: number): void {
  tzOffsetS = s;
}

function iso(ms: number): string {
  return new Date(ms + tzOffsetS * 1000).toISOString();
}

/** Data time in the one format: `2026-12-08 07:25:40` (or "—"). */
export function dataTime(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms)) return "—";
  const s = iso(ms);
  return `${s.slice(0, 10)} ${s.slice(11, 19)}`;
}

/** `07:25`: for axis ticks only, where the date is the axis's. */
export function hhmm(ms: number): string {
  return iso(ms).slice(11, 16);
}

/** The one format's pattern (what tests and parsers may rely on). */
export const TIME_PATTERN = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

/** Pairs (server wall ms, data ms) of the last tick, oldest first. */
const pairs: [number, number][] = [];
const RATE_WINDOW_MS = 10 * 60_000;

/** A tick's data time and the server's wall time when it closed. */
export function noteTick(dataMs: number | null | undefined, wallMs: number | null | undefined): void {
  if (dataMs == null || wallMs == null || !dataMs || !wallMs) return;
  const last = pairs[pairs.length - 1];
  if (last && last[0] === wallMs) return;
  if (last && (wallMs < last[0] || dataMs < last[1])) pairs.length = 0; // a restart
  pairs.push([wallMs, dataMs]);
  while (pairs.length > 2 && wallMs - pairs[1][0] >= RATE_WINDOW_MS) pairs.shift();
}

/** The data time at a server wall-clock instant, or null before the
 * first tick. */
export function dataOfWall(wallMs: number | null | undefined): number | null {
  if (wallMs == null || !Number.isFinite(wallMs) || !pairs.length) return null;
  const [w1, d1] = pairs[pairs.length - 1];
  const [w0, d0] = pairs[0];
  const rate = w1 - w0 >= 2000 ? (d1 - d0) / (w1 - w0) : 1;
  return d1 + (wallMs - w1) * rate;
}

/** A server wall-clock stamp shown in data time, in the one format. */
export function wallAsData(wallMs: number | null | undefined): string {
  return dataTime(dataOfWall(wallMs));
}
