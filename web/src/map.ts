// The live map: the corridor drawn from the road book on a 2D canvas
// (no tiles, no WebGL): each carriageway's segments coloured by speed,
// signs with what they show, zones, entries, tunnels, service areas,
// vehicles (hazardous-goods trucks with their tracks) and active events
// with their extent. Redraws only when something changed or the view
// moves, batching strokes by colour so that 1,000 segments and 5,000
// vehicles stay smooth.

import { Corridor, NO_DATA, SPEED_STEPS, eventColour, speedBucket } from "./geo";
import { type Key, t, stake as fmtStake } from "./i18n";
import { model } from "./model";

export type Feature =
  | { type: "segment"; direction: string; from_m: number; to_m: number; speed: number | null; flow: number | null; density: number | null }
  | { type: "device"; id: string; kind: string }
  | { type: "event"; id: string }
  | { type: "vehicle"; id: string }
  | { type: "station"; id: string };

interface Pick {
  x: number;
  y: number;
  r: number;
  f: Feature;
}

/** The map's layers, each switched on and off from the legend. */
export const LAYERS = ["segments", "detectors", "signs", "entries", "weather", "vehicles", "events"] as const;
export type Layer = (typeof LAYERS)[number];
const LAYER_KEY: Record<Layer, Key> = {
  segments: "layerSegments",
  detectors: "layerDetectors",
  signs: "layerSigns",
  entries: "layerEntries",
  weather: "layerWeather",
  vehicles: "layerVehicles",
  events: "layerEvents",
};

/** A click this close to a marker (screen px) hits it, however small it is drawn. */
export const HIT_PX = 10;

/** Where a sign's value was drawn (screen px): for tests and accessibility. */
export interface SignLabel {
  id: string;
  text: string;
  /** Disc centre and radius. */
  x: number;
  y: number;
  r: number;
  /** The text's box. */
  left: number;
  top: number;
  width: number;
  height: number;
}

const FONT = "12px system-ui, 'Noto Sans CJK SC', 'WenQuanYi Micro Hei', 'Microsoft YaHei', sans-serif";
const FONT_SMALL = "10px system-ui, 'Noto Sans CJK SC', 'WenQuanYi Micro Hei', 'Microsoft YaHei', sans-serif";

/** Frame times for the performance probe (window.__zhilu). */
export const perf = { frames: [] as number[], drawMs: [] as number[], firstLiveDraw: 0, draws: 0 };

export class MapView {
  readonly el: HTMLElement;
  private canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  private geo!: Corridor;
  private cx = 0;
  private cy = 0;
  scale = 0.01; // px per metre
  /** View rotation: the corridor's main axis runs left (first stake) to right. */
  private cos = 1;
  private sin = 0;
  private dpr = 1;
  private w = 0;
  private h = 0;
  private dirty = true;
  private picks: Pick[] = [];
  private dragging: { x: number; y: number; cx: number; cy: number } | null = null;
  private segCache = new Map<string, Float64Array>();
  selected: Feature | null = null;
  hazmatOnly = false;
  /** Layers shown. */
  layers: Record<Layer, boolean> = { segments: true, detectors: true, signs: true, entries: true, weather: true, vehicles: true, events: true };
  /** The values drawn on speed-limit signs in the last frame. */
  signLabels: SignLabel[] = [];
  /** Screen space covered by panels over the map (px from the top and the bottom), kept clear by fit(). */
  insets: () => { top: number; bottom: number } = () => ({ top: 0, bottom: 0 });
  /** The view is the fitted one (not panned or zoomed since): refit when the panel resizes. */
  private fitted = false;
  onSelect: (f: Feature | null) => void = () => {};

  constructor(host: HTMLElement) {
    this.el = host;
    this.canvas = document.createElement("canvas");
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute("role", "application");
    this.canvas.className = "map-canvas";
    host.appendChild(this.canvas);
    const ctx = this.canvas.getContext("2d", { alpha: false });
    if (!ctx) throw new Error("no 2D canvas");
    this.ctx = ctx;
    new ResizeObserver(() => this.resize()).observe(host);
    this.bindInput();
    model.on((c) => {
      if (c === "road") this.setRoad();
      if (c !== "timespace" && c !== "status") this.invalidate();
    });
    const loop = (ts: number) => {
      if (this.dirty && this.geo) {
        this.dirty = false;
        const t0 = performance.now();
        this.draw();
        perf.drawMs.push(performance.now() - t0);
        perf.frames.push(ts);
        if (perf.frames.length > 2000) {
          perf.frames.splice(0, 1000);
          perf.drawMs.splice(0, 1000);
        }
      }
      requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
  }

  label(): void {
    this.canvas.setAttribute("aria-label", `${t("map")} — ${t("mapHelp")}`);
  }

  invalidate(): void {
    this.dirty = true;
  }

  private setRoad(): void {
    this.geo = new Corridor(model.road);
    const a = this.geo.pts[0];
    const b = this.geo.pts[this.geo.pts.length - 1];
    const th = -Math.atan2(b.y - a.y, b.x - a.x);
    this.cos = Math.cos(th);
    this.sin = Math.sin(th);
    this.segCache.clear();
    this.fit();
  }

  fit(): void {
    if (!this.geo) return;
    const b = this.geo.bounds();
    this.cx = (b.minX + b.maxX) / 2;
    this.cy = (b.minY + b.maxY) / 2;
    let minX = Infinity;
    let maxX = -Infinity;
    let minY = Infinity;
    let maxY = -Infinity;
    for (const p of this.geo.pts) {
      const dx = p.x - this.cx;
      const dy = p.y - this.cy;
      const rx = dx * this.cos - dy * this.sin;
      const ry = dx * this.sin + dy * this.cos;
      minX = Math.min(minX, rx);
      maxX = Math.max(maxX, rx);
      minY = Math.min(minY, ry);
      maxY = Math.max(maxY, ry);
    }
    this.cx += ((minX + maxX) / 2) * this.cos + ((minY + maxY) / 2) * this.sin;
    this.cy += -((minX + maxX) / 2) * this.sin + ((minY + maxY) / 2) * this.cos;
    // Room for what is drawn beside the centre line (carriageways, signs,
    // entries, names, kilometre marks: about 60 px each side) and for the
    // panels over the map; the corridor fills the rest.
    const MARGIN_X = 36;
    const MARGIN_Y = 64;
    let { top, bottom } = this.insets();
    if (this.h - top - bottom < 2 * MARGIN_Y + 40) {
      top = 0;
      bottom = 0;
    }
    const sx = (this.w - 2 * MARGIN_X) / Math.max(1, maxX - minX);
    const sy = (this.h - top - bottom - 2 * MARGIN_Y) / Math.max(1, maxY - minY);
    this.scale = Math.max(1e-4, Math.min(sx, sy));
    // Centre the corridor in the free band between the panels.
    this.pan(0, (top - bottom) / 2);
    this.fitted = true;
    this.invalidate();
  }

  /** Refits when the view is still the fitted one (the panels or the window changed). */
  refit(): void {
    if (this.fitted || !this.geo) this.fit();
  }

  zoom(f: number, px = this.w / 2, py = this.h / 2): void {
    this.fitted = false;
    const before = this.unproject(px, py);
    this.scale = Math.max(2e-4, Math.min(2, this.scale * f));
    const after = this.unproject(px, py);
    this.cx += before.x - after.x;
    this.cy += before.y - after.y;
    this.invalidate();
  }

  pan(dxPx: number, dyPx: number): void {
    if (dxPx || dyPx) this.fitted = false;
    const rx = dxPx / this.scale;
    const ry = -dyPx / this.scale;
    this.cx -= rx * this.cos + ry * this.sin;
    this.cy -= -rx * this.sin + ry * this.cos;
    this.invalidate();
  }

  /** Centres on a stake (and zooms in to about 5 km across). */
  focus(stakeM: number): void {
    if (!this.geo) return;
    const p = this.geo.at(stakeM);
    this.cx = p.x;
    this.cy = p.y;
    this.scale = Math.max(this.scale, Math.min(this.w, this.h) / 5000);
    this.fitted = false;
    this.invalidate();
  }

  private resize(): void {
    const r = this.el.getBoundingClientRect();
    this.dpr = window.devicePixelRatio || 1;
    const first = this.w === 0;
    this.w = Math.max(1, Math.floor(r.width));
    this.h = Math.max(1, Math.floor(r.height));
    this.canvas.width = Math.floor(this.w * this.dpr);
    this.canvas.height = Math.floor(this.h * this.dpr);
    this.canvas.style.width = `${this.w}px`;
    this.canvas.style.height = `${this.h}px`;
    if ((first || this.fitted) && this.geo) this.fit();
    this.invalidate();
  }

  private sxy(x: number, y: number): [number, number] {
    const dx = x - this.cx;
    const dy = y - this.cy;
    return [
      (dx * this.cos - dy * this.sin) * this.scale + this.w / 2,
      this.h / 2 - (dx * this.sin + dy * this.cos) * this.scale,
    ];
  }

  private sx(x: number, y: number): number {
    return ((x - this.cx) * this.cos - (y - this.cy) * this.sin) * this.scale + this.w / 2;
  }

  private sy(x: number, y: number): number {
    return this.h / 2 - ((x - this.cx) * this.sin + (y - this.cy) * this.cos) * this.scale;
  }

  private unproject(px: number, py: number): { x: number; y: number } {
    const rx = (px - this.w / 2) / this.scale;
    const ry = (this.h / 2 - py) / this.scale;
    return { x: this.cx + rx * this.cos + ry * this.sin, y: this.cy - rx * this.sin + ry * this.cos };
  }

  /** Screen point at a stake, pushed `side` px to the right of increasing stake. */
  private pt(s: number, side: number): { x: number; y: number; tx: number; ty: number } {
    const p = this.geo.at(s);
    // screen tangent (y down) and its right-hand normal (-ty, tx)
    const tx = p.tx * this.cos - p.ty * this.sin;
    const ty = -(p.tx * this.sin + p.ty * this.cos);
    const [x, y] = this.sxy(p.x, p.y);
    return { x: x - ty * side, y: y + tx * side, tx, ty };
  }

  private sideOf(direction: string): number {
    return direction === "up" ? 1 : direction === "down" ? -1 : 0;
  }

  /** A zone on the centre line is clickable along its whole length: its
   * middle first (where the selection ring goes), then every ~16 px. */
  private zonePicks(from: number, to: number, f: Feature): void {
    const m = this.pt((from + to) / 2, 0);
    this.picks.push({ x: m.x, y: m.y, r: 8, f });
    const n = Math.min(400, Math.floor((Math.abs(to - from) * this.scale) / 16));
    for (let i = 0; i <= n && n > 0; i++) {
      const p = this.pt(from + ((to - from) * i) / n, 0);
      if (p.x < -10 || p.y < -10 || p.x > this.w + 10 || p.y > this.h + 10) continue;
      this.picks.push({ x: p.x, y: p.y, r: 8, f });
    }
  }

  /** Adds an offset polyline of world points to the current path. */
  private polyline(pts: Float64Array, side: number): void {
    const c = this.ctx;
    const n = pts.length / 2;
    let px = 0;
    let py = 0;
    for (let i = 0; i < n; i++) {
      const x = this.sx(pts[i * 2], pts[i * 2 + 1]);
      const y = this.sy(pts[i * 2], pts[i * 2 + 1]);
      // normal from the neighbouring vertex
      const j = i < n - 1 ? i + 1 : i - 1;
      let dx = this.sx(pts[j * 2], pts[j * 2 + 1]) - x;
      let dy = this.sy(pts[j * 2], pts[j * 2 + 1]) - y;
      if (j < i) {
        dx = -dx;
        dy = -dy;
      }
      const len = Math.hypot(dx, dy) || 1;
      const ox = (-dy / len) * side;
      const oy = (dx / len) * side;
      if (i === 0) c.moveTo(x + ox, y + oy);
      else if (Math.abs(x + ox - px) + Math.abs(y + oy - py) > 0.3) c.lineTo(x + ox, y + oy);
      px = x + ox;
      py = y + oy;
    }
  }

  private seg(from: number, to: number): Float64Array {
    const k = `${from}:${to}`;
    let s = this.segCache.get(k);
    if (!s) {
      s = this.geo.between(from, to);
      this.segCache.set(k, s);
    }
    return s;
  }

  private draw(): void {
    perf.draws++;
    const c = this.ctx;
    const road = model.road;
    c.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    c.fillStyle = "#0b1220";
    c.fillRect(0, 0, this.w, this.h);
    this.picks = [];
    c.lineCap = "round";
    c.lineJoin = "round";
    const off = Math.max(5, Math.min(12, this.scale * 30)); // carriageway offset px
    const width = Math.max(3, Math.min(8, this.scale * 25));
    const all = this.geo.between(this.geo.startM, this.geo.endM);

    // Tunnels under the road.
    c.strokeStyle = "#334155";
    c.lineWidth = off * 2 + width + 8;
    c.beginPath();
    for (const tn of road.tunnels) this.polyline(this.seg(tn.from_m, tn.to_m), 0);
    c.stroke();

    // The road body.
    c.strokeStyle = "#1e293b";
    c.lineWidth = off * 2 + width + 2;
    c.beginPath();
    this.polyline(all, 0);
    c.stroke();

    // Zones along the centre line (the weather layer).
    const L = this.layers;
    c.lineWidth = 3;
    c.setLineDash([6, 4]);
    for (const z of L.weather ? road.fog_lights : []) {
      const st = model.devices.get(z.id)?.state;
      const mode = st?.mode ?? "off";
      c.strokeStyle = mode === "off" ? "#64748b" : mode === "warning_flash" ? "#ef4444" : mode === "tail_marking" ? "#fb923c" : "#fde047";
      c.beginPath();
      this.polyline(this.seg(z.from_m, z.to_m), 0);
      c.stroke();
      this.zonePicks(z.from_m, z.to_m, { type: "device", id: z.id, kind: "fog_lights" });
    }
    for (const z of L.weather ? road.deicers : []) {
      const on = model.devices.get(z.id)?.state?.value === "on";
      c.strokeStyle = on ? "#22d3ee" : "#475569";
      c.beginPath();
      this.polyline(this.seg(z.from_m, z.to_m), 0);
      c.stroke();
      this.zonePicks(z.from_m, z.to_m, { type: "device", id: z.id, kind: "deicer" });
    }
    c.setLineDash([]);

    // Segments by speed, one stroke per colour and carriageway.
    c.lineWidth = width;
    const buckets: [number, number, number, string][][] = [[], [], [], [], [], []];
    const st = model.state;
    if (st && L.segments) {
      for (const d of st.directions) {
        for (const g of d.segments) buckets[speedBucket(g[2])].push([g[0], g[1], g[2], d.direction]);
      }
    } else {
      for (const d of road.directions) buckets[SPEED_STEPS.length].push([this.geo.startM, this.geo.endM, NaN, d]);
    }
    buckets.forEach((list, bi) => {
      if (!list.length) return;
      c.strokeStyle = bi < SPEED_STEPS.length ? SPEED_STEPS[bi][1] : NO_DATA;
      c.beginPath();
      for (const [a, b, , dir] of list) this.polyline(this.seg(a, b), off * this.sideOf(dir));
      c.stroke();
    });
    if (st && perf.firstLiveDraw === 0) {
      perf.firstLiveDraw = performance.now();
      performance.mark("zhilu-live-map");
    }

    // Active events: extent as a translucent band, a marker at the head.
    for (const e of L.events ? model.events.values() : []) {
      const side = this.sideOf(e.direction) * off;
      c.strokeStyle = eventColour(e.kind) + "88";
      c.lineWidth = width + 10;
      c.beginPath();
      const lo = Math.min(e.from_m, e.to_m);
      const hi = Math.max(e.from_m, e.to_m);
      if (hi - lo > 1) this.polyline(this.seg(lo, hi), side);
      c.stroke();
    }

    const zoomed = this.scale > 0.02;
    // Stations (small ticks) when zoomed in.
    if (zoomed && L.detectors) {
      c.fillStyle = "#e2e8f0";
      c.beginPath();
      for (const d of road.detectors) {
        const p = this.pt(d.stake_m, this.sideOf(d.direction) * (off + width / 2 + 3));
        c.rect(p.x - 1.5, p.y - 1.5, 3, 3);
        this.picks.push({ x: p.x, y: p.y, r: 3, f: { type: "station", id: d.id } });
      }
      c.fill();
    }

    // Weather stations: a cyan ring with a dot on the centre line.
    if (L.weather) {
      c.strokeStyle = "#22d3ee";
      c.fillStyle = "#0b1220";
      c.lineWidth = 2;
      for (const w of road.weather) {
        const p = this.pt(w.stake_m, 0);
        c.beginPath();
        c.arc(p.x, p.y, 5, 0, Math.PI * 2);
        c.fill();
        c.stroke();
        c.fillStyle = "#22d3ee";
        c.fillRect(p.x - 1.5, p.y - 1.5, 3, 3);
        c.fillStyle = "#0b1220";
        this.picks.push({ x: p.x, y: p.y, r: 6, f: { type: "device", id: w.id, kind: "weather" } });
      }
    }

    // Vehicles: the many as one path, hazmat trucks with their tracks.
    const hazmat: [string, number, number][] = [];
    // fillRect per vehicle: Skia's rectangle fast path, much cheaper to
    // rasterise than one path of thousands of sub-paths.
    c.fillStyle = "#cbd5e1";
    // Far out (more than 200 m a pixel) the dots of one carriageway overlap:
    // they are binned every 2 px along the road and each bin drawn once,
    // darker with more vehicles (hazmat trucks stay individual).
    const binned = this.scale < 0.005;
    const bins = binned ? new Map<number, number>() : null;
    const binM = 2 / this.scale;
    for (const v of L.vehicles ? model.vehicles.values() : []) {
      if (binned && v[1] !== "hazmat" && v[6]) {
        if (!this.hazmatOnly) {
          const k = Math.round(v[5] / binM) * 2 + (v[6] === "up" ? 1 : 0);
          bins!.set(k, (bins!.get(k) ?? 0) + 1);
        }
        continue;
      }
      const side = this.sideOf(v[6] ?? "") * off;
      let p: { x: number; y: number };
      if (v[6]) p = this.pt(v[5], side);
      else {
        const q = this.geo.project(v[3], v[4]);
        const [x, y] = this.sxy(q.x, q.y);
        p = { x, y };
      }
      if (p.x < -10 || p.y < -10 || p.x > this.w + 10 || p.y > this.h + 10) continue;
      if (v[1] === "hazmat") {
        hazmat.push([v[0], p.x, p.y]);
        continue;
      }
      if (this.hazmatOnly) continue;
      c.fillRect(p.x - 1.5, p.y - 1.5, 3, 3);
      if (zoomed) this.picks.push({ x: p.x, y: p.y, r: 4, f: { type: "vehicle", id: v[0] } });
    }
    if (bins) {
      for (const [k, n] of bins) {
        const p = this.pt((k >> 1) * binM, (k & 1 ? 1 : -1) * off);
        c.globalAlpha = Math.min(1, 0.35 + 0.15 * n);
        c.fillRect(p.x - 1.5, p.y - 1.5, 3, 3);
      }
      c.globalAlpha = 1;
    }
    // Hazmat tracks as one stroke, the markers as one fill and one outline.
    c.strokeStyle = "#fdba74";
    c.lineWidth = 1.5;
    c.beginPath();
    for (const [id] of hazmat) {
      const tr = model.tracks.get(id);
      if (!tr || tr.length < 2) continue;
      tr.forEach(([, lon, lat], i) => {
        const q = this.geo.project(lon, lat);
        const [x, y] = this.sxy(q.x, q.y);
        if (i === 0) c.moveTo(x, y);
        else c.lineTo(x, y);
      });
    }
    c.stroke();
    c.beginPath();
    // A diamond, the shape of the hazard placard (event heads are triangles).
    for (const [id, x, y] of hazmat) {
      c.moveTo(x, y - 7);
      c.lineTo(x + 7, y);
      c.lineTo(x, y + 7);
      c.lineTo(x - 7, y);
      c.closePath();
      this.picks.push({ x, y, r: 7, f: { type: "vehicle", id } });
    }
    c.fillStyle = "#f97316";
    c.fill();
    c.strokeStyle = "#0b1220";
    c.lineWidth = 1.5;
    c.stroke();

    // Interchanges: an entry square per carriageway.
    c.font = FONT_SMALL;
    for (const ic of road.interchanges) {
      for (const dir of L.entries ? ic.directions : []) {
        const p = this.pt(ic.stake_m, this.sideOf(dir) * (off + 16));
        const es = model.entryState(ic.id, dir);
        c.fillStyle = es.value === "closed" ? "#dc2626" : es.value === "metered" ? "#f59e0b" : "#16a34a";
        c.fillRect(p.x - 5, p.y - 5, 10, 10);
        c.strokeStyle = es.confirmed ? "#f8fafc" : "#f8fafc88";
        c.lineWidth = 1;
        c.strokeRect(p.x - 5, p.y - 5, 10, 10);
        this.picks.push({ x: p.x, y: p.y, r: 8, f: { type: "device", id: ic.id, kind: "interchange" } });
      }
      const q = this.pt(ic.stake_m, off + 30);
      c.fillStyle = "#e2e8f0";
      c.fillText(ic.name, q.x + 4, q.y + 4);
    }

    // Service areas and tunnels (labels).
    for (const sa of road.service_areas) {
      const p = this.pt(sa.stake_m, -(off + 30));
      c.fillStyle = "#2563eb";
      c.fillRect(p.x - 7, p.y - 7, 14, 14);
      c.fillStyle = "#ffffff";
      c.font = FONT_SMALL;
      c.fillText("P", p.x - 3, p.y + 4);
      c.fillStyle = "#bfdbfe";
      c.fillText(sa.name, p.x - 10 - c.measureText(sa.name).width, p.y + 4);
      this.picks.push({ x: p.x, y: p.y, r: 9, f: { type: "device", id: sa.id, kind: "service_area" } });
    }
    for (const tn of road.tunnels) {
      const p = this.pt((tn.from_m + tn.to_m) / 2, -(off + 22));
      c.fillStyle = "#94a3b8";
      c.font = FONT_SMALL;
      c.fillText(tn.hazmat_forbidden ? `${tn.id} ${t("noHazmat")}` : tn.id, p.x - 40, p.y);
      this.picks.push({ x: p.x, y: p.y, r: 10, f: { type: "device", id: tn.id, kind: "tunnel" } });
    }

    // VMS: a box with the text when zoomed in.
    for (const s of L.signs ? road.vms : []) {
      const p = this.pt(s.stake_m, this.sideOf(s.direction) * (off + 22));
      const text: string = model.devices.get(s.id)?.state?.text ?? "";
      // The text only where the signs are far enough apart for their boxes
      // (about 20 m a pixel: 2 km between signs is 100 px).
      if (this.scale > 0.05 && text) {
        c.font = FONT;
        const tw = Math.min(200, c.measureText(text).width);
        c.fillStyle = "#111827";
        c.fillRect(p.x - 2, p.y - 9, tw + 8, 18);
        c.strokeStyle = "#f59e0b";
        c.strokeRect(p.x - 2, p.y - 9, tw + 8, 18);
        c.fillStyle = "#fbbf24";
        c.fillText(text, p.x + 2, p.y + 4, 200);
      } else {
        c.fillStyle = text ? "#f59e0b" : "#334155";
        c.fillRect(p.x - 6, p.y - 4, 12, 8);
      }
      this.picks.push({ x: p.x, y: p.y, r: 8, f: { type: "device", id: s.id, kind: "vms" } });
    }

    // VSL signs: a ring with the limit they show, the disc always wide
    // enough for its number ("100" in full, at any zoom).
    // On a large panel (a video wall) the numbers grow with it, up to twice.
    this.signLabels = [];
    const ui = Math.max(1, Math.min(2, this.w / 1400, this.h / 700));
    const fontPx = Math.round((zoomed ? 11 : 10) * ui);
    c.font = `bold ${fontPx}px system-ui, sans-serif`;
    for (const s of L.signs ? road.vsl : []) {
      const state = model.devices.get(s.id)?.state;
      const v = state && state.action === "speed_limit" ? state.value : null;
      const txt = v != null ? String(v) : "";
      const tw = txt ? c.measureText(txt).width : 0;
      const r = Math.max((zoomed ? 10 : 6) * ui, Math.ceil(tw / 2) + 4);
      const p = this.pt(s.stake_m, this.sideOf(s.direction) * (off + 6 + r));
      c.beginPath();
      c.arc(p.x, p.y, r, 0, Math.PI * 2);
      c.fillStyle = "#ffffff";
      c.fill();
      c.lineWidth = zoomed ? 3 : 2;
      c.strokeStyle = v != null ? "#dc2626" : "#64748b";
      c.stroke();
      if (txt) {
        c.fillStyle = "#0f172a";
        c.textBaseline = "middle";
        c.fillText(txt, p.x - tw / 2, p.y + 0.5);
        c.textBaseline = "alphabetic";
        const h = fontPx;
        this.signLabels.push({ id: s.id, text: txt, x: p.x, y: p.y, r, left: p.x - tw / 2, top: p.y + 0.5 - h / 2, width: tw, height: h });
      }
      this.picks.push({ x: p.x, y: p.y, r: r + 2, f: { type: "device", id: s.id, kind: "vsl" } });
    }

    // Event markers on top.
    for (const e of L.events ? model.events.values() : []) {
      const side = this.sideOf(e.direction) * (off + 34);
      const head = e.direction === "down" ? Math.min(e.from_m, e.to_m) : Math.max(e.from_m, e.to_m);
      const p = this.pt(e.direction === "both" ? (e.from_m + e.to_m) / 2 : head, side);
      c.beginPath();
      c.moveTo(p.x, p.y - 10);
      c.lineTo(p.x + 9, p.y + 7);
      c.lineTo(p.x - 9, p.y + 7);
      c.closePath();
      c.fillStyle = eventColour(e.kind);
      c.fill();
      c.strokeStyle = "#0b1220";
      c.lineWidth = 1.5;
      c.stroke();
      c.fillStyle = "#0b1220";
      c.font = "bold 11px sans-serif";
      c.fillText("!", p.x - 2, p.y + 5);
      this.picks.push({ x: p.x, y: p.y, r: 11, f: { type: "event", id: e.id } });
    }

    // Kilometre marks.
    c.font = FONT_SMALL;
    c.fillStyle = "#94a3b8";
    const stepKm = this.scale > 0.05 ? 1 : this.scale > 0.012 ? 5 : 10;
    for (let s = Math.ceil(this.geo.startM / (stepKm * 1000)) * stepKm * 1000; s <= this.geo.endM; s += stepKm * 1000) {
      const p = this.pt(s, off + 46);
      if (p.x < 0 || p.y < 0 || p.x > this.w || p.y > this.h) continue;
      c.fillText(`K${s / 1000}`, p.x - 8, p.y + 3);
    }

    // North arrow (the view is turned so that the corridor runs across).
    const [ox, oy] = this.sxy(this.cx, this.cy);
    const [nx, ny] = this.sxy(this.cx, this.cy + 1 / this.scale);
    const ax = this.w - 30;
    const ay = this.h - 40;
    const ux = (nx - ox) * 18;
    const uy = (ny - oy) * 18;
    c.strokeStyle = "#e2e8f0";
    c.lineWidth = 2;
    c.beginPath();
    c.moveTo(ax - ux, ay - uy);
    c.lineTo(ax + ux, ay + uy);
    c.stroke();
    c.beginPath();
    c.arc(ax + ux, ay + uy, 3, 0, Math.PI * 2);
    c.fillStyle = "#e2e8f0";
    c.fill();
    c.font = FONT;
    c.fillText("N", ax + ux * 1.6 - 4, ay + uy * 1.6 + 4);

    // Selection ring.
    if (this.selected) {
      const pk = this.picks.find((p) => sameFeature(p.f, this.selected));
      if (pk) {
        c.beginPath();
        c.arc(pk.x, pk.y, pk.r + 5, 0, Math.PI * 2);
        c.strokeStyle = "#38bdf8";
        c.lineWidth = 2;
        c.stroke();
      }
    }
  }

  /** What is under a screen point: the marker whose edge is nearest,
   * within its radius or [`HIT_PX`] of its centre (a 3-px dot is hit from
   * 10 px), else the carriageway segment nearest to the point. */
  pick(px: number, py: number): Feature | null {
    let best: Pick | null = null;
    let bd = Infinity;
    for (const p of this.picks) {
      const d = Math.hypot(p.x - px, p.y - py);
      const edge = Math.max(0, d - p.r);
      if (d <= Math.max(p.r, HIT_PX) && edge < bd) {
        best = p;
        bd = edge;
      }
    }
    if (best) return best.f;
    // Nearest point of the centre line on screen.
    const pts = this.geo.pts;
    let bestS = NaN;
    let bestSide = 0;
    let bestD = 25;
    for (let i = 0; i + 1 < pts.length; i++) {
      const [ax, ay] = this.sxy(pts[i].x, pts[i].y);
      const [bx, by] = this.sxy(pts[i + 1].x, pts[i + 1].y);
      const dx = bx - ax;
      const dy = by - ay;
      const l2 = dx * dx + dy * dy || 1;
      const f = Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / l2));
      const qx = ax + dx * f;
      const qy = ay + dy * f;
      const d = Math.hypot(px - qx, py - qy);
      if (d < bestD) {
        bestD = d;
        bestS = pts[i].s + (pts[i + 1].s - pts[i].s) * f;
        // right of increasing stake (screen y down): cross > 0
        bestSide = dx * (py - ay) - dy * (px - ax) > 0 ? 1 : -1;
      }
    }
    if (!Number.isFinite(bestS)) return null;
    const dir = bestSide > 0 ? "up" : "down";
    const d = model.state?.directions.find((x) => x.direction === dir);
    const g = d?.segments.find((g) => bestS >= Math.min(g[0], g[1]) && bestS <= Math.max(g[0], g[1]));
    if (!g) return null;
    return { type: "segment", direction: dir, from_m: g[0], to_m: g[1], speed: g[2], flow: g[3], density: g[4] };
  }

  /** The centre line's bounding box on screen (px) and the panel's size. */
  corridorBox(): { left: number; right: number; top: number; bottom: number; w: number; h: number } {
    let left = Infinity;
    let right = -Infinity;
    let top = Infinity;
    let bottom = -Infinity;
    for (const p of this.geo?.pts ?? []) {
      const [x, y] = this.sxy(p.x, p.y);
      left = Math.min(left, x);
      right = Math.max(right, x);
      top = Math.min(top, y);
      bottom = Math.max(bottom, y);
    }
    return { left, right, top, bottom, w: this.w, h: this.h };
  }

  /** Screen position of a marker drawn in the last frame (for tests and the keyboard). */
  markerAt(f: Feature): { x: number; y: number; r: number } | null {
    const p = this.picks.find((p) => sameFeature(p.f, f));
    return p ? { x: p.x, y: p.y, r: p.r } : null;
  }

  /** The legend: the speed scale, one symbol per object kind, and a
   * switch per layer (a layer switched off is not drawn and not clickable). */
  renderLegend(el: HTMLElement): void {
    const bounds = [0, ...SPEED_STEPS.slice(0, -1).map(([v]) => v)];
    const speed =
      `<span>${t("legendSpeed")}</span>` +
      SPEED_STEPS.map(([, col], i) => `<i style="background:${col}"></i><span>${i === SPEED_STEPS.length - 1 ? `≥${bounds[i]}` : `${bounds[i]}–${SPEED_STEPS[i][0]}`}</span>`).join("") +
      `<i style="background:${NO_DATA}"></i><span>${t("noData")}</span>`;
    const svg = (body: string) => `<svg width="16" height="16" viewBox="-8 -8 16 16" aria-hidden="true">${body}</svg>`;
    const sym: [Layer, Key, string][] = [
      ["signs", "symVsl", svg(`<circle r="6.5" fill="#fff" stroke="#dc2626" stroke-width="2"/>`)],
      ["signs", "symVms", svg(`<rect x="-6" y="-4" width="12" height="8" fill="#f59e0b"/>`)],
      ["entries", "symEntry", svg(`<rect x="-7" y="-3" width="4" height="6" fill="#16a34a"/><rect x="-2" y="-3" width="4" height="6" fill="#f59e0b"/><rect x="3" y="-3" width="4" height="6" fill="#dc2626"/>`)],
      ["weather", "symWeather", svg(`<circle r="5" fill="#0b1220" stroke="#22d3ee" stroke-width="2"/><rect x="-1.5" y="-1.5" width="3" height="3" fill="#22d3ee"/>`)],
      ["detectors", "symStation", svg(`<rect x="-1.5" y="-1.5" width="3" height="3" fill="#e2e8f0"/>`)],
      ["vehicles", "symVehicle", svg(`<rect x="-1.5" y="-1.5" width="3" height="3" fill="#cbd5e1"/>`)],
      ["vehicles", "symHazmat", svg(`<path d="M0-7L7 0 0 7-7 0Z" fill="#f97316" stroke="#0b1220" stroke-width="1.5"/>`)],
      ["weather", "symFog", svg(`<path d="M-7 0H7" stroke="#fde047" stroke-width="3" stroke-dasharray="4 2"/>`)],
      ["weather", "symDeicer", svg(`<path d="M-7 0H7" stroke="#22d3ee" stroke-width="3" stroke-dasharray="4 2"/>`)],
      ["segments", "symTunnel", svg(`<rect x="-8" y="-5" width="16" height="10" fill="#334155"/><path d="M-8 0H8" stroke="#22c55e" stroke-width="2"/>`)],
      ["segments", "symService", svg(`<rect x="-6" y="-6" width="12" height="12" fill="#2563eb"/><text x="-3" y="4" font-size="9" fill="#fff">P</text>`)],
      ["events", "symEvent", svg(`<path d="M0-7L6.5 5.5H-6.5Z" fill="#ef4444" stroke="#0b1220" stroke-width="1.5"/><text y="4.5" x="-1.6" font-size="8" font-weight="bold" fill="#0b1220">!</text>`)],
    ];
    el.innerHTML = `<div class="legend-speed">${speed}</div>
      <div class="legend-symbols">${sym.map(([, k, icon]) => `<span class="sym" data-sym="${k}">${icon}${t(k)}</span>`).join("")}</div>
      <fieldset class="layers"><legend>${t("layers")}</legend>${LAYERS.map(
        (l) => `<label><input type="checkbox" data-layer="${l}"${this.layers[l] ? " checked" : ""}> ${t(LAYER_KEY[l])}</label>`,
      ).join("")}</fieldset>`;
    el.querySelectorAll<HTMLInputElement>("input[data-layer]").forEach((cb) =>
      cb.addEventListener("change", () => {
        this.layers[cb.dataset.layer as Layer] = cb.checked;
        if (this.selected && !cb.checked) this.select(null);
        this.invalidate();
      }),
    );
  }

  select(f: Feature | null): void {
    this.selected = f;
    this.invalidate();
    this.onSelect(f);
  }

  private bindInput(): void {
    const cv = this.canvas;
    let moved = false;
    cv.addEventListener("pointerdown", (e) => {
      cv.setPointerCapture(e.pointerId);
      this.dragging = { x: e.clientX, y: e.clientY, cx: this.cx, cy: this.cy };
      moved = false;
    });
    cv.addEventListener("pointermove", (e) => {
      if (!this.dragging) return;
      const dx = e.clientX - this.dragging.x;
      const dy = e.clientY - this.dragging.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) moved = true;
      this.cx = this.dragging.cx;
      this.cy = this.dragging.cy;
      this.pan(dx, dy);
    });
    cv.addEventListener("pointerup", (e) => {
      const wasDrag = moved;
      this.dragging = null;
      if (!wasDrag) {
        const r = cv.getBoundingClientRect();
        this.select(this.pick(e.clientX - r.left, e.clientY - r.top));
      }
    });
    cv.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const r = cv.getBoundingClientRect();
        this.zoom(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
      },
      { passive: false },
    );
    cv.addEventListener("keydown", (e) => {
      const step = 60;
      switch (e.key) {
        case "ArrowLeft":
          this.pan(step, 0);
          break;
        case "ArrowRight":
          this.pan(-step, 0);
          break;
        case "ArrowUp":
          this.pan(0, step);
          break;
        case "ArrowDown":
          this.pan(0, -step);
          break;
        case "+":
        case "=":
          this.zoom(1.3);
          break;
        case "-":
        case "_":
          this.zoom(1 / 1.3);
          break;
        case "Enter":
        case " ": {
          // The marker nearest to the centre of the view.
          let best: Pick | null = null;
          let bd = Infinity;
          for (const p of this.picks) {
            const d = Math.hypot(p.x - this.w / 2, p.y - this.h / 2);
            if (d < bd) {
              bd = d;
              best = p;
            }
          }
          this.select(best ? best.f : null);
          break;
        }
        default:
          return;
      }
      e.preventDefault();
    });
  }
}

export function sameFeature(a: Feature | null, b: Feature | null): boolean {
  if (!a || !b || a.type !== b.type) return false;
  if (a.type === "segment" && b.type === "segment") return a.direction === b.direction && a.from_m === b.from_m;
  return (a as { id: string }).id === (b as { id: string }).id;
}

export function describeSegment(f: Extract<Feature, { type: "segment" }>): string {
  return `${fmtStake(f.from_m)} – ${fmtStake(f.to_m)}`;
}
