// Key figures at a glance (运行指标) in the map's empty space: travel
// time and delay between consecutive interchanges per direction,
// congestion mileage, open events by severity, devices offline or faulty,
// decisions pending — exactly what `GET /api/kpi` answers (the figures
// are computed in the core, never here), refreshed when the state, the
// events, the devices or the proposals change (at most every 3 s). Below,
// the congestion mileage over the time–space diagram's period
// (`GET /api/kpi/history`).

import { get } from "./api";
import { clock, dirName, t } from "./i18n";
import { model } from "./model";
import { esc } from "./panels";

export interface KpiLink {
  direction: string;
  from: string;
  from_name: string;
  from_m: number;
  to: string;
  to_name: string;
  to_m: number;
  length_m: number;
  free_flow_s: number;
  travel_s: number | null;
  delay_s: number | null;
  speed_kmh: number | null;
  coverage: number;
}

export interface Kpi {
  at_ms: number | null;
  limit_kmh: number;
  congested_below_kmh: number;
  links: KpiLink[];
  congestion: { direction: string; congested_km: number; known_km: number }[];
  events: { critical: number; major: number; minor: number; info: number; total: number };
  devices: { total: number; offline: number; unheard: number; faulty: number };
  pending: { proposals: number };
}

export interface KpiHistory {
  from_ms: number;
  to_ms: number;
  step_ms: number;
  links: { direction: string; from: string; to: string; free_flow_s: number }[];
  directions: string[];
  buckets: { at_ms: number; travel_s: (number | null)[]; congested_km: number[] }[];
}

/** Minutes with one decimal, as the panel shows a time in seconds. */
export function minutes(s: number | null | undefined): string {
  return s == null ? "—" : (s / 60).toFixed(1);
}

export class KpiPanel {
  readonly el: HTMLElement;
  kpi: Kpi | null = null;
  history: KpiHistory | null = null;
  private timer = 0;
  private last = 0;
  private collapsed = false;

  constructor(host: HTMLElement) {
    this.el = host;
    model.on((c) => {
      if (c === "state" || c === "events" || c === "proposals" || c === "devices") this.schedule();
    });
  }

  /** Loads the figures now, and the history of the last 3 hours. */
  async load(): Promise<void> {
    this.last = Date.now();
    try {
      this.kpi = await get<Kpi>("/api/kpi");
    } catch {
      /* unreachable: the connection status says so */
    }
    this.render();
  }

  /** The history of a period (the time–space diagram's), or of the last 3 hours. */
  async loadHistory(from?: number, to?: number): Promise<void> {
    const q = from != null && to != null ? `?from_ms=${Math.round(from)}&to_ms=${Math.round(to)}` : "";
    try {
      this.history = await get<KpiHistory>(`/api/kpi/history${q}`);
    } catch {
      this.history = null;
    }
    this.render();
  }

  private schedule(): void {
    if (this.timer) return;
    const wait = Math.max(0, 3000 - (Date.now() - this.last));
    this.timer = window.setTimeout(() => {
      this.timer = 0;
      void this.load();
    }, wait);
  }

  render(): void {
    const k = this.kpi;
    const head = `<div class="kpi-head"><h3 id="kpi-h">${t("kpi")}</h3><span class="kpi-at">${k?.at_ms != null ? clock(k.at_ms) : "—"}</span>
      <button type="button" class="kpi-toggle" aria-expanded="${!this.collapsed}">${this.collapsed ? t("kpiShow") : t("kpiHide")}</button></div>`;
    if (!k || this.collapsed) {
      this.el.innerHTML = head;
      this.bind();
      return;
    }
    // One row per pair of interchanges (in the up direction's order); the
    // down link of the same pair runs the other way.
    const up = k.links.filter((l) => l.direction === "up");
    const down = k.links.filter((l) => l.direction === "down");
    const pairs: { a: string; b: string; name: string; up?: KpiLink; down?: KpiLink }[] = [];
    for (const l of up) pairs.push({ a: l.from, b: l.to, name: `${l.from_name}–${l.to_name}`, up: l });
    for (const l of down) {
      const p = pairs.find((p) => p.a === l.to && p.b === l.from);
      if (p) p.down = l;
      else pairs.push({ a: l.to, b: l.from, name: `${l.to_name}–${l.from_name}`, down: l });
    }
    const cell = (l?: KpiLink) => {
      if (!l) return `<td>—</td>`;
      const slow = l.delay_s != null && l.delay_s >= 60;
      return `<td class="kpi-link${slow ? " slow" : ""}" data-kpi-link="${esc(`${l.direction}:${l.from}:${l.to}`)}" data-travel="${l.travel_s ?? ""}" data-delay="${l.delay_s ?? ""}"
        title="${esc(`${l.from_name}→${l.to_name} · ${t("freeFlow")} ${minutes(l.free_flow_s)} min${l.speed_kmh != null ? ` · ${l.speed_kmh} km/h` : ""}`)}"><span class="tt">${minutes(l.travel_s)}</span>${l.delay_s ? ` <span class="delay">+${minutes(l.delay_s)}</span>` : ""}</td>`;
    };
    const dirs = model.road?.directions ?? ["up", "down"];
    const cong = (d: string) => k.congestion.find((c) => c.direction === d);
    const sev = k.events;
    const dev = k.devices;
    this.el.innerHTML = `${head}<div class="kpi-body">
      <table class="kpi-links">
        <caption>${t("travelTime")} (${t("minutes")}; ${t("delay")} +)</caption>
        <thead><tr><th scope="col">${t("section")}</th>${dirs.map((d) => `<th scope="col">${dirName(d)}</th>`).join("")}</tr></thead>
        <tbody>${pairs.map((p) => `<tr><th scope="row">${esc(p.name)}</th>${dirs.map((d) => cell(d === "up" ? p.up : p.down)).join("")}</tr>`).join("")}</tbody>
        <tfoot><tr><th scope="row">${t("congestionKm")}</th>${dirs.map((d) => `<td data-kpi="congested:${d}">${cong(d)?.congested_km.toFixed(1) ?? "—"}</td>`).join("")}</tr></tfoot>
      </table>
      <div><dl class="kpi-counts">
        <dt>${t("activeEvents")}</dt><dd>
          <span class="sev sev-critical" data-kpi="events:critical" title="${t("sevCritical")}">${t("sevCritical")} ${sev.critical}</span>
          <span class="sev sev-major" data-kpi="events:major">${t("sevMajor")} ${sev.major}</span>
          <span class="sev sev-minor" data-kpi="events:minor">${t("sevMinor")} ${sev.minor}</span>
          <span class="sev sev-info" data-kpi="events:info">${t("sevInfo")} ${sev.info}</span></dd>
        <dt>${t("devices")}</dt><dd>
          <span data-kpi="devices:offline" class="${dev.offline ? "warn" : ""}">${t("offline")} ${dev.offline}</span>
          <span data-kpi="devices:faulty" class="${dev.faulty ? "warn" : ""}">${t("faulty")} ${dev.faulty}</span>
          <span data-kpi="devices:unheard">${t("unheard")} ${dev.unheard}</span>
          <span class="muted">/ ${dev.total}</span></dd>
        <dt>${t("proposals")}</dt><dd><span data-kpi="pending:proposals" class="${k.pending.proposals ? "warn" : ""}">${k.pending.proposals}</span></dd>
      </dl>
      ${this.sparks()}</div></div>`;
    this.bind();
  }

  /** Congestion mileage per direction over the history period, as small bars. */
  private sparks(): string {
    const h = this.history;
    if (!h || h.buckets.length === 0) return "";
    const max = Math.max(1, ...h.buckets.flatMap((b) => b.congested_km));
    const W = 120;
    const H = 14;
    const rows = h.directions.map((d, di) => {
      const n = h.buckets.length;
      const bw = W / Math.max(1, Math.round((h.to_ms - h.from_ms) / h.step_ms));
      const bars = h.buckets
        .map((b) => {
          const x = ((b.at_ms - h.from_ms) / (h.to_ms - h.from_ms)) * W;
          const v = b.congested_km[di] ?? 0;
          const y = (v / max) * H;
          return v > 0 ? `<rect x="${x.toFixed(1)}" y="${(H - y).toFixed(1)}" width="${Math.max(1, bw).toFixed(1)}" height="${y.toFixed(1)}"></rect>` : "";
        })
        .join("");
      const peak = Math.max(0, ...h.buckets.map((b) => b.congested_km[di] ?? 0));
      return `<div class="kpi-spark"><span>${dirName(d)}</span><svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(`${t("congestionKm")} ${dirName(d)}: ${t("peak")} ${peak.toFixed(1)} km (${n})`)}"><line x1="0" y1="${H - 0.5}" x2="${W}" y2="${H - 0.5}"></line>${bars}</svg><span>${t("peak")} ${peak.toFixed(1)}</span></div>`;
    });
    return `<div class="kpi-history"><div class="muted">${t("congestionKm")} · ${clock(h.from_ms)}–${clock(h.to_ms)}</div>${rows.join("")}</div>`;
  }

  private bind(): void {
    this.el.querySelector(".kpi-toggle")?.addEventListener("click", () => {
      this.collapsed = !this.collapsed;
      this.render();
      this.el.querySelector<HTMLElement>(".kpi-toggle")?.focus();
    });
  }
}
