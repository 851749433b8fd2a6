// The corridor's own geometry (no map tiles): stake ↔ local metres along
// the road book's centre line, in a local equirectangular projection.

import type { Road } from "./model";

const M_PER_DEG = (6_371_008.8 * Math.PI) / 180;

export class Corridor {
  readonly lon0: number;
  readonly lat0: number;
  readonly kx: number;
  /** Centre-line vertices: stake, x, y (metres, y north). */
  readonly pts: { s: number; x: number; y: number }[];

  constructor(road: Road) {
    const g = road.geometry;
    this.lon0 = g[0][1];
    this.lat0 = g[0][2];
    this.kx = M_PER_DEG * Math.cos((this.lat0 * Math.PI) / 180);
    this.pts = g.map(([s, lon, lat]) => ({ s, ...this.project(lon, lat) }));
  }

  project(lon: number, lat: number): { x: number; y: number } {
    return { x: (lon - this.lon0) * this.kx, y: (lat - this.lat0) * M_PER_DEG };
  }

  get startM(): number {
    return this.pts[0].s;
  }

  get endM(): number {
    return this.pts[this.pts.length - 1].s;
  }

  /** Index of the vertex segment holding a stake. */
  private seg(s: number): number {
    const p = this.pts;
    let lo = 0;
    let hi = p.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (p[mid].s <= s) lo = mid;
      else hi = mid - 1;
    }
    return Math.max(0, Math.min(lo, p.length - 2));
  }

  /** Point and unit tangent (direction of increasing stake) at a stake. */
  at(s: number): { x: number; y: number; tx: number; ty: number } {
    const i = this.seg(s);
    const a = this.pts[i];
    const b = this.pts[i + 1];
    const f = b.s > a.s ? Math.max(0, Math.min(1, (s - a.s) / (b.s - a.s))) : 0;
    const dx = b.x - a.x;
    const dy = b.y - a.y;
    const len = Math.hypot(dx, dy) || 1;
    return { x: a.x + dx * f, y: a.y + dy * f, tx: dx / len, ty: dy / len };
  }

  /** The centre line between two stakes as flat [x, y, …] (metres). */
  between(from: number, to: number): Float64Array {
    const lo = Math.min(from, to);
    const hi = Math.max(from, to);
    const out: number[] = [];
    const a = this.at(lo);
    out.push(a.x, a.y);
    for (const p of this.pts) if (p.s > lo && p.s < hi) out.push(p.x, p.y);
    const b = this.at(hi);
    out.push(b.x, b.y);
    return Float64Array.from(out);
  }

  bounds(): { minX: number; minY: number; maxX: number; maxY: number } {
    let minX = Infinity;
    let minY = Infinity;
    let maxX = -Infinity;
    let maxY = -Infinity;
    for (const p of this.pts) {
      minX = Math.min(minX, p.x);
      minY = Math.min(minY, p.y);
      maxX = Math.max(maxX, p.x);
      maxY = Math.max(maxY, p.y);
    }
    return { minX, minY, maxX, maxY };
  }
}

/** Speed colour scale (km/h), shared by the map, the time–space diagram and the legend. */
export const SPEED_STEPS: [number, string][] = [
  [20, "#b91c1c"],
  [40, "#f97316"],
  [60, "#facc15"],
  [80, "#a3e635"],
  [Infinity, "#22c55e"],
];
export const NO_DATA = "#475569";

export function speedColour(v: number | null | undefined): string {
  if (v == null || !Number.isFinite(v)) return NO_DATA;
  for (const [lim, c] of SPEED_STEPS) if (v < lim) return c;
  return SPEED_STEPS[SPEED_STEPS.length - 1][1];
}

export function speedBucket(v: number | null | undefined): number {
  if (v == null || !Number.isFinite(v)) return SPEED_STEPS.length;
  for (let i = 0; i < SPEED_STEPS.length; i++) if (v < SPEED_STEPS[i][0]) return i;
  return SPEED_STEPS.length - 1;
}

export const EVENT_COLOURS: Record<string, string> = {
  incident: "#ef4444",
  congestion: "#f97316",
  fog: "#cbd5e1",
  ice: "#38bdf8",
  detector_fault: "#a78bfa",
  wrong_way: "#f43f5e",
  terminal_alarm: "#fb7185",
};

export function eventColour(kind: string): string {
  if (kind.startsWith("hazmat")) return "#fb923c";
  return EVENT_COLOURS[kind] ?? "#f472b6";
}
