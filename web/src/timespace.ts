// The time–space diagram (时空图): speed as colour over stake × time for
// each carriageway, with events overlaid; live for the last three hours
// (history from the store, then each tick from the stream), or any past
// period from the store; the forecast ahead, when there is one, to the
// right of "now", paler.

import { NO_DATA, eventColour, speedColour } from "./geo";
import { clock, dirName, stake, t } from "./i18n";
import { hhmm } from "./time";
import { type Ev, type ForecastStation, type TsColumn, model, speedInColumn } from "./model";
import { get } from "./api";

const FONT = "11px system-ui, 'Noto Sans CJK SC', 'WenQuanYi Micro Hei', 'Microsoft YaHei', sans-serif";

export class TimeSpaceView {
  readonly el: HTMLElement;
  private canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  private status: HTMLElement;
  private mode: "live" | "period" = "live";
  private period: TsColumn[] = [];
  private periodEvents: Ev[] = [];
  private periodRange: [number, number] = [0, 0];
  private dirty = true;
  private lastDraw = 0;
  forecast: ForecastStation[] = [];
  forecastIssued = 0;
  /** Told the period shown (`undefined` = live, the last 3 hours). */
  onPeriod: (from?: number, to?: number) => void = () => {};
  /** The speed cells drawn so far (redrawn whole only when the window,
   * the size or the mode changes; live columns are added one by one). */
  private base = document.createElement("canvas");
  private baseKey = "";
  private baseUpTo = -Infinity;

  constructor(host: HTMLElement) {
    this.el = host;
    host.innerHTML = `
      <div class="ts-bar">
        <label><input type="radio" name="ts-mode" value="live" checked> <span data-t="live"></span></label>
        <label><input type="radio" name="ts-mode" value="period"> <span data-t="period"></span></label>
        <label><span data-t="from"></span> <input type="text" class="ts-from" placeholder="YYYY-MM-DD HH:MM" pattern="\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}(:\\d{2})?" size="16" spellcheck="false"></label>
        <label><input type="number" class="ts-hours" min="1" max="168" value="3" style="width:4em"> <span data-t="hours"></span></label>
        <button type="button" class="ts-show" data-t="show"></button>
        <span class="ts-status" role="status"></span>
      </div>
      <div class="ts-canvas-host"></div>`;
    this.status = host.querySelector(".ts-status")!;
    this.canvas = document.createElement("canvas");
    this.canvas.className = "ts-canvas";
    this.canvas.setAttribute("role", "img");
    host.querySelector(".ts-canvas-host")!.appendChild(this.canvas);
    this.ctx = this.canvas.getContext("2d", { alpha: false })!;
    new ResizeObserver(() => this.invalidate()).observe(host.querySelector(".ts-canvas-host")!);
    host.querySelectorAll<HTMLInputElement>("input[name=ts-mode]").forEach((r) =>
      r.addEventListener("change", () => {
        this.mode = r.value === "period" ? "period" : "live";
        if (this.mode === "live") this.onPeriod();
        else if (this.periodRange[1] > 0) this.onPeriod(...this.periodRange);
        this.invalidate();
      }),
    );
    host.querySelector(".ts-show")!.addEventListener("click", () => void this.showPeriod());
    this.canvas.addEventListener("mousemove", (e) => this.hover(e));
    model.on((c) => {
      if (c === "timespace" || c === "events") this.invalidate();
    });
    const loop = () => {
      const now = performance.now();
      if (this.dirty && now - this.lastDraw > 500) {
        this.dirty = false;
        this.lastDraw = now;
        this.draw();
      }
      requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
  }

  label(): void {
    this.el.querySelectorAll<HTMLElement>("[data-t]").forEach((n) => (n.textContent = t(n.dataset.t as never)));
    this.canvas.setAttribute("aria-label", t("timespace"));
    this.invalidate();
  }

  invalidate(): void {
    this.dirty = true;
  }

  /** Loads a past period from the store. */
  async showPeriod(): Promise<void> {
    const fromInput = this.el.querySelector<HTMLInputElement>(".ts-from")!.value;
    const hours = Number(this.el.querySelector<HTMLInputElement>(".ts-hours")!.value) || 3;
    const off = (model.road?.tz_offset_s ?? 28800) * 1000;
    let from: number;
    if (fromInput.trim()) {
      // Data time in the one format (`2026-12-08 05:00`), the corridor's zone
      // — not a browser date picker, which writes the browser's locale.
      const m = fromInput.trim().match(/^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})(:\d{2})?$/);
      from = m ? Date.parse(`${m[1]}T${m[2]}${m[3] ?? ":00"}Z`) - off : NaN;
      if (!Number.isFinite(from)) {
        this.status.textContent = `${t("error")}: YYYY-MM-DD HH:MM`;
        return;
      }
    } else {
      const last = model.state?.ts_ms ?? Date.now();
      from = last - hours * 3600_000;
    }
    const to = from + hours * 3600_000;
    this.status.textContent = "…";
    try {
      this.period = await model.loadHistory(from, to);
      this.periodEvents = await get<Ev[]>(`/api/events?since_ms=${from}&limit=2000`);
      this.periodRange = [from, to];
      this.mode = "period";
      this.el.querySelector<HTMLInputElement>("input[value=period]")!.checked = true;
      this.status.textContent = `${clock(from, true)} – ${clock(to, true)}`;
      this.onPeriod(from, to);
    } catch (e) {
      this.status.textContent = `${t("error")}: ${(e as Error).message}`;
    }
    this.invalidate();
  }

  private range(): [number, number, TsColumn[], Ev[]] {
    if (this.mode === "period") return [this.periodRange[0], this.periodRange[1], this.period, this.periodEvents];
    const cols = model.columns;
    const now = model.state?.ts_ms ?? (cols.length ? cols[cols.length - 1].t1 : Date.now());
    const ahead = this.forecast.length ? 3600_000 : 0;
    // The window moves in 10-minute steps, so the picture is redrawn whole
    // only then; in between each new tick adds one column.
    const end = Math.ceil((now + 1) / 600_000) * 600_000;
    return [end - 3 * 3600_000 - 600_000, end + ahead, cols, [...model.events.values()]];
  }

  private layout(): { w: number; h: number; left: number; top: number; panelH: number; gap: number } {
    const host = this.canvas.parentElement!;
    const r = host.getBoundingClientRect();
    const w = Math.max(100, Math.floor(r.width));
    const h = Math.max(80, Math.floor(r.height));
    return { w, h, left: 64, top: 18, panelH: (h - 18 - 22 - 14) / 2, gap: 14 };
  }

  /** The stakes the diagram spans: the centre line and every station. */
  private stakeRange(): [number, number] {
    const road = model.road;
    const stakes = road.detectors.map((d) => d.stake_m);
    return [Math.min(...stakes, road.geometry[0][0]), Math.max(...stakes, road.geometry[road.geometry.length - 1][0])];
  }

  private draw(): void {
    if (!model.road) return;
    const L = this.layout();
    const dpr = window.devicePixelRatio || 1;
    if (this.canvas.width !== Math.floor(L.w * dpr) || this.canvas.height !== Math.floor(L.h * dpr)) {
      this.canvas.width = Math.floor(L.w * dpr);
      this.canvas.height = Math.floor(L.h * dpr);
      this.canvas.style.width = `${L.w}px`;
      this.canvas.style.height = `${L.h}px`;
    }
    const c = this.ctx;
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    c.fillStyle = "#0b1220";
    c.fillRect(0, 0, L.w, L.h);
    const [t0, t1, cols, events] = this.range();
    const road = model.road;
    const [s0, s1] = this.stakeRange();
    const plotW = L.w - L.left - 10;
    const x = (tm: number) => L.left + ((tm - t0) / (t1 - t0)) * plotW;
    c.font = FONT;
    // Speed cells on the base canvas.
    const key = `${this.mode}|${model.columnsEpoch}|${t0}|${t1}|${L.w}|${L.h}|${dpr}|${this.mode === "period" ? this.periodRange.join() : ""}`;
    const b = this.base;
    const bc = b.getContext("2d", { alpha: false })!;
    if (key !== this.baseKey) {
      this.baseKey = key;
      this.baseUpTo = -Infinity;
      b.width = this.canvas.width;
      b.height = this.canvas.height;
      bc.setTransform(dpr, 0, 0, dpr, 0, 0);
      bc.fillStyle = "#0b1220";
      bc.fillRect(0, 0, L.w, L.h);
      road.directions.forEach((_, k) => {
        bc.fillStyle = NO_DATA;
        bc.fillRect(L.left, L.top + k * (L.panelH + L.gap), plotW, L.panelH);
      });
    }
    road.directions.forEach((dir, k) => {
      const top = L.top + k * (L.panelH + L.gap);
      const y = (s: number) => top + (1 - (s - s0) / (s1 - s0)) * L.panelH;
      for (const col of cols) {
        if (col.t1 <= this.baseUpTo) continue;
        const cells = col.cells.get(dir);
        if (!cells || col.t1 < t0 || col.t0 > t1) continue;
        const xa = Math.max(L.left, x(col.t0));
        const xb = Math.min(L.left + plotW, x(col.t1));
        const cw = Math.max(1, xb - xa + 0.5);
        // Adjacent cells of one colour as one rectangle.
        let runColour = "";
        let runLo = 0;
        let runHi = 0;
        const flush = () => {
          if (!runColour) return;
          bc.fillStyle = runColour;
          const ya = y(runHi);
          bc.fillRect(xa, ya, cw, y(runLo) - ya + 0.5);
        };
        for (let i = 0; i < cells.length; i += 3) {
          const colour = speedColour(cells[i + 2]);
          if (colour === runColour && Math.abs(cells[i] - runHi) < 1 + 1e-3 * Math.abs(runHi)) {
            runHi = cells[i + 1];
          } else if (colour === runColour && Math.abs(cells[i + 1] - runLo) < 1 + 1e-3 * Math.abs(runLo)) {
            runLo = cells[i];
          } else {
            flush();
            runColour = colour;
            runLo = cells[i];
            runHi = cells[i + 1];
          }
        }
        flush();
      }
    });
    if (cols.length) this.baseUpTo = Math.max(this.baseUpTo, cols[cols.length - 1].t1);
    c.drawImage(b, 0, 0, L.w, L.h);
    road.directions.forEach((dir, k) => {
      const top = L.top + k * (L.panelH + L.gap);
      const y = (s: number) => top + (1 - (s - s0) / (s1 - s0)) * L.panelH;
      // Forecast ahead (live only), paler.
      const liveEnd = cols.length ? cols[cols.length - 1].t1 : this.forecastIssued;
      if (this.mode === "live" && this.forecast.length && this.forecastIssued) {
        c.globalAlpha = 0.55;
        const st = this.forecast.filter((f) => f.direction === dir).sort((a, b) => a.stake_m - b.stake_m);
        for (let j = 0; j < st.length; j++) {
          const lo = j > 0 ? (st[j - 1].stake_m + st[j].stake_m) / 2 : st[j].stake_m - 500;
          const hi = j < st.length - 1 ? (st[j].stake_m + st[j + 1].stake_m) / 2 : st[j].stake_m + 500;
          st[j].speed_kmh.forEach((v, h) => {
            // Only ahead of what was measured: the forecast is issued when
            // a 5-minute interval is complete, the picture is live per tick.
            const tb = this.forecastIssued + (h + 1) * 300_000;
            const ta = Math.max(this.forecastIssued + h * 300_000, liveEnd);
            if (tb <= ta) return;
            c.fillStyle = speedColour(v);
            c.fillRect(x(ta), y(hi), Math.max(1, x(tb) - x(ta)), y(lo) - y(hi));
          });
        }
        c.globalAlpha = 1;
        c.strokeStyle = "#e2e8f0";
        c.setLineDash([4, 3]);
        c.beginPath();
        c.moveTo(x(liveEnd), top);
        c.lineTo(x(liveEnd), top + L.panelH);
        c.stroke();
        c.setLineDash([]);
      }
      // Events overlaid as outlined boxes.
      for (const e of events) {
        if (e.direction !== dir && e.direction !== "both") continue;
        const ea = Date.parse(e.start);
        const eb = e.end ? Date.parse(e.end) : t1;
        if (!Number.isFinite(ea) || eb < t0 || ea > t1) continue;
        c.strokeStyle = eventColour(e.kind);
        c.lineWidth = 2;
        const lo = Math.min(e.from_m, e.to_m);
        const hi = Math.max(e.from_m, e.to_m);
        const xa = Math.max(L.left, x(ea));
        const xb = Math.min(L.left + plotW, x(eb));
        c.strokeRect(xa, y(hi), Math.max(2, xb - xa), Math.max(2, y(lo) - y(hi)));
      }
      // Axes.
      c.fillStyle = "#e2e8f0";
      c.fillText(`${dirName(dir)} ${dir === "up" ? "↑" : "↓"}`, 4, top + 12);
      c.fillStyle = "#cbd5e1";
      // Stake labels at least 16 px apart.
      const km = (s1 - s0) / 1000;
      const stepKm = [1, 2, 5, 10, 20, 50, 100, 200].find((k) => (L.panelH * k) / Math.max(1, km) >= 16) ?? 500;
      for (let s = Math.ceil(s0 / (stepKm * 1000)) * stepKm * 1000; s <= s1; s += stepKm * 1000) {
        c.fillText(`K${s / 1000}`, 22, y(s) + 4);
      }
    });
    // Time axis.
    c.fillStyle = "#cbd5e1";
    const span = t1 - t0;
    const tick = span > 24 * 3600_000 ? 6 * 3600_000 : span > 6 * 3600_000 ? 3600_000 : 30 * 60_000;
    const off = (road.tz_offset_s ?? 0) * 1000;
    for (let tm = Math.ceil((t0 + off) / tick) * tick - off; tm <= t1; tm += tick) {
      const xx = x(tm);
      c.fillText(hhmm(tm), xx - 14, L.h - 6);
      c.fillRect(xx, L.h - 22, 1, 4);
    }
  }

  private hover(e: MouseEvent): void {
    const L = this.layout();
    const r = this.canvas.getBoundingClientRect();
    const px = e.clientX - r.left;
    const py = e.clientY - r.top;
    const [t0, t1, cols] = this.range();
    const road = model.road;
    if (!road) return;
    const [s0, s1] = this.stakeRange();
    const plotW = L.w - L.left - 10;
    const tm = t0 + ((px - L.left) / plotW) * (t1 - t0);
    const k = py < L.top + L.panelH + L.gap / 2 ? 0 : 1;
    const dir = road.directions[k];
    if (!dir) return;
    const top = L.top + k * (L.panelH + L.gap);
    const s = s0 + (1 - (py - top) / L.panelH) * (s1 - s0);
    let v: number | null = null;
    for (const col of cols) {
      if (tm >= col.t0 && tm < col.t1) v = speedInColumn(col, dir, s) ?? v;
    }
    this.status.textContent = `${dirName(dir)} ${stake(s)} ${clock(tm)} ${t("speed")}: ${v == null ? t("noData") : `${Math.round(v)} km/h`}`;
  }
}
