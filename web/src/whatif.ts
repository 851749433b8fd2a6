// The what-if on the proposals tab (docs/TWIN.md): before approving, the
// operator sees side by side what "do nothing", the devices as they are
// and the pending proposals would do over the next hour, with the
// ensemble's range and a small time–space diagram of each.

import { ApiError, post } from "./api";
import { speedColour } from "./geo";
import { clock, dirName, t } from "./i18n";
import { model } from "./model";

interface Pct {
  p10: number;
  p50: number;
  p90: number;
}

export interface WhatIfPlan {
  name: string;
  source: string;
  total_travel_time_veh_h: number;
  delay_veh_h: number;
  max_queue_m: number;
  clear_at: string | null;
  clear_after_min: number | null;
  fog_entering_veh: number;
  fog_too_fast_share: number;
  entries_closed: string[];
  turned_away_veh: number;
  band: {
    total_travel_time_veh_h: Pct;
    delay_veh_h: Pct;
    max_queue_m: Pct;
    fog_too_fast_share: Pct;
    members_not_cleared: number;
  };
  timespace: { direction: string; step_min: number; stakes_m: number[]; speed_kmh: (number | null)[][] }[];
}

export interface WhatIfAnswer {
  from_ms: number;
  horizon_min: number;
  members: number;
  plans: WhatIfPlan[];
  computed_ms: number;
}

/** The device state a proposed command asks for, keyed by device (and
 * carriageway for an entry), in the shape `POST /api/whatif` takes; `null`
 * for kinds the twin does not model. */
export function plannedState(device: string, c: any): [string, unknown] | null {
  if (!c) return null;
  if (c.action === "speed_limit") return [device, c.value == null ? { blank: true } : { limit_kmh: Number(c.value) }];
  if (c.action === "entry") {
    return [c.direction ? `${device}:${c.direction}` : device, c.direction ? { state: c.value, direction: c.direction } : { state: c.value }];
  }
  return null;
}

const esc = (s: unknown): string => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function planName(p: WhatIfPlan): string {
  switch (p.source) {
    case "do_nothing":
      return t("planDoNothing");
    case "current":
      return t("planCurrent");
    case "pending":
      return t("planPending");
    default:
      return p.name;
  }
}

const fmt = (x: number, d = 0): string => x.toLocaleString(undefined, { maximumFractionDigits: d, minimumFractionDigits: d });
const range = (b: Pct, d = 0, k = 1): string => `${fmt(b.p10 * k, d)}–${fmt(b.p90 * k, d)}`;

export class WhatIf {
  private answer: WhatIfAnswer | null = null;
  private error = "";
  private running = false;
  private ranFor = "";
  private ranAt = 0;
  private host: HTMLElement | null = null;
  private queued: string | null = null;
  private extra: { name: string; devices: Record<string, unknown> }[] = [];

  /** Draws the section into `host` (from the last answer); runs the twin
   * again when the pending proposals changed or the answer is a minute old. */
  render(host: HTMLElement, pendingKey: string): void {
    this.host = host;
    this.draw();
    const stale = performance.now() - this.ranAt > 60_000;
    if (pendingKey && !this.running && (pendingKey !== this.ranFor || stale)) {
      void this.run(pendingKey);
    }
  }

  /** Plans added to every run until cleared (the proposal being edited). */
  setExtra(extra: { name: string; devices: Record<string, unknown> }[]): void {
    this.extra = extra;
  }

  /** Runs the twin, with the added plans of `setExtra`. */
  async run(key = this.ranFor): Promise<void> {
    const extra = this.extra;
    if (this.running) {
      // Asked for while running: run once more afterwards (an edit's
      // what-if must not be lost to an automatic refresh).
      this.queued = key;
      return;
    }
    this.running = true;
    this.ranFor = key;
    this.ranAt = performance.now();
    this.draw();
    try {
      this.answer = await post<WhatIfAnswer>("/api/whatif", { horizon_min: 60, plans: extra });
      this.error = "";
    } catch (e) {
      this.error = e instanceof ApiError ? e.message : String(e);
    } finally {
      this.running = false;
      this.draw();
      const q = this.queued;
      this.queued = null;
      if (q != null) void this.run(q);
    }
  }

  private draw(): void {
    const host = this.host;
    if (!host || !host.isConnected) return;
    const a = this.answer;
    let html = `<h3 class="whatif-title">${t("whatif")}</h3>
      <button type="button" class="whatif-run" ${this.running ? "disabled" : ""}>${this.running ? t("whatifRunning") : t("runWhatif")}</button>`;
    if (this.error) html += `<p class="bad">${t("error")}: ${esc(this.error)}</p>`;
    if (a) {
      const cols = a.plans;
      const row = (label: string, cell: (p: WhatIfPlan) => string) =>
        `<tr><th scope="row">${label}</th>${cols.map((p) => `<td>${cell(p)}</td>`).join("")}</tr>`;
      html += `<table class="whatif-table"><caption class="sub">${t("whatifFrom")} ${esc(clock(a.from_ms))} · ${a.horizon_min} min · ${t("computedIn")} ${a.computed_ms} ms</caption>
        <thead><tr><th scope="col"></th>${cols.map((p) => `<th scope="col">${esc(planName(p))}</th>`).join("")}</tr></thead><tbody>
        ${row(`${t("ttt")} (veh·h)`, (p) => `${fmt(p.total_travel_time_veh_h)}<br><span class="sub">${range(p.band.total_travel_time_veh_h)}</span>`)}
        ${row(`${t("delayVh")} (veh·h)`, (p) => `${fmt(p.delay_veh_h)}<br><span class="sub">${range(p.band.delay_veh_h)}</span>`)}
        ${row(`${t("maxQueue")} (m)`, (p) => `${fmt(p.max_queue_m)}<br><span class="sub">${range(p.band.max_queue_m)}</span>`)}
        ${row(t("clearAt"), (p) => (p.clear_at ? esc(clock(Date.parse(p.clear_at))) : `<span class="bad">${t("notCleared")}</span>`))}
        ${row(`${t("fogTooFast")} (%)`, (p) => (p.fog_entering_veh > 0 ? `${fmt(p.fog_too_fast_share * 100)}<br><span class="sub">${range(p.band.fog_too_fast_share, 0, 100)}</span>` : "—"))}
        ${row(t("turnedAway"), (p) => `${fmt(p.turned_away_veh)}${p.entries_closed.length ? `<br><span class="sub">${esc(p.entries_closed.map(entryName).join(", "))}</span>` : ""}`)}
        ${row(t("timespace"), (p) => p.timespace.map((g, i) => `<canvas class="whatif-ts" width="96" height="48" data-plan="${cols.indexOf(p)}" data-grid="${i}" role="img" aria-label="${esc(`${t("timespace")} ${planName(p)} ${dirName(g.direction)}`)}"></canvas>`).join(""))}
        </tbody></table>
        <p class="note">${t("whatifNote")}</p>`;
    }
    host.innerHTML = html;
    host.querySelector<HTMLButtonElement>(".whatif-run")?.addEventListener("click", () => void this.run());
    if (a) {
      host.querySelectorAll<HTMLCanvasElement>("canvas.whatif-ts").forEach((c) => {
        const g = a.plans[Number(c.dataset.plan)]?.timespace[Number(c.dataset.grid)];
        if (g) drawGrid(c, g.speed_kmh);
      });
    }
  }
}

/** `T_GA:up` → 固安 (上行): an entry by its road-book name and carriageway. */
function entryName(s: string): string {
  const i = s.lastIndexOf(":");
  return i > 0 ? `${model.deviceName(s.slice(0, i))} (${dirName(s.slice(i + 1))})` : model.deviceName(s);
}

/** Speeds as coloured cells: distance along the direction of travel to the
 * right, time downward (now at the top). */
function drawGrid(c: HTMLCanvasElement, rows: (number | null)[][]): void {
  const ctx = c.getContext("2d");
  if (!ctx || !rows.length) return;
  const cols = rows[0].length;
  const w = c.width / Math.max(1, cols);
  const h = c.height / rows.length;
  rows.forEach((r, i) =>
    r.forEach((v, j) => {
      ctx.fillStyle = speedColour(v);
      ctx.fillRect(j * w, i * h, Math.ceil(w), Math.ceil(h));
    }),
  );
}
