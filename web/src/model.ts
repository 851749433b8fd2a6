// What the console knows about the corridor: loaded once from the API,
// then kept current by the live stream. Views subscribe and redraw.

import { get } from "./api";
import type { ReasonCode } from "./i18n";

export type LonLat = [number, number];

export interface Sign {
  id: string;
  direction: string;
  stake_m: number;
  lonlat: LonLat;
}
export interface Zone {
  id: string;
  from_m: number;
  to_m: number;
  lonlat: [LonLat, LonLat];
}
export interface Road {
  id: string;
  name: string;
  tz_offset_s: number;
  lanes: number;
  speed_limit_kmh: number;
  directions: string[];
  geometry: [number, number, number][];
  detectors: { id: string; direction: string; stake_m: number; lanes: number; lonlat: LonLat }[];
  weather: { id: string; stake_m: number; lonlat: LonLat }[];
  vsl: Sign[];
  vms: Sign[];
  fog_lights: Zone[];
  deicers: Zone[];
  interchanges: { id: string; name: string; stake_m: number; directions: string[]; lonlat: LonLat }[];
  tunnels: { id: string; from_m: number; to_m: number; hazmat_forbidden: boolean; lonlat: [LonLat, LonLat] }[];
  service_areas: { id: string; name: string; stake_m: number; chargers: number; lonlat: LonLat }[];
}

export interface CorridorState {
  ts_ms: number;
  time: string;
  directions: { direction: string; segments: [number, number, number, number, number][] }[];
}

export interface Device {
  device: string;
  state: any;
  online: boolean;
  confirmed_ms: number | null;
  last_seen_ms: number | null;
  pending: any;
}

export interface Ev {
  id: string;
  kind: string;
  direction: string;
  from_m: number;
  to_m: number;
  start: string;
  detected_at: string;
  end: string | null;
  severity?: number;
  /** Severity class (`critical` … `info`, flow.ts). */
  level?: string;
  /** Where it stands with the operators (flow.ts). */
  workflow?: { status: string; assigned_to?: string | null; [k: string]: unknown };
  evidence?: { detectors?: string[]; rule?: string; [k: string]: unknown };
  visibility_m?: number;
  surface_temp_c?: number;
  vehicle?: string;
  detector?: string;
  [k: string]: unknown;
}

export interface Proposal {
  id: string;
  status: string;
  device: string;
  kind: string;
  command: any;
  event: string | null;
  reason: string | null;
  /** The reason as a code with parameters (rendered by reasonText). */
  reason_code?: ReasonCode | null;
  /** Data time of the tick that proposed it. */
  at_ms?: number;
  created_ms: number;
  expires_ms: number;
  decided_by: string | null;
  decided_ms: number | null;
  decision_reason: string | null;
  applied: any;
}

export interface Action {
  id?: number;
  mode?: string;
  /** false for a proposal's record (mode `confirm`): nothing was sent. */
  applied?: boolean;
  proposal?: string | null;
  wall_ms?: number;
  command: any;
}

/** vehicle, class, ts_ms, lon, lat, stake_m, direction, speed_kmh, heading_deg */
export type VehicleRow = [string, string, number, number, number, number, string | null, number | null, number | null];

/** One column of the time–space picture: speeds over stake ranges. */
export interface TsColumn {
  t0: number;
  t1: number;
  /** per direction: flat [from_m, to_m, speed, …] */
  cells: Map<string, Float32Array>;
}

export interface ForecastStation {
  detector: string;
  direction: string;
  stake_m: number;
  last_speed_kmh: number | null;
  speed_kmh: (number | null)[];
  lower_kmh: (number | null)[];
  upper_kmh: (number | null)[];
}

/** The speed a column shows at a stake on one carriageway (the first cell
 * holding it), or null. */
export function speedInColumn(col: TsColumn, direction: string, stakeM: number): number | null {
  const cells = col.cells.get(direction);
  if (!cells) return null;
  for (let i = 0; i < cells.length; i += 3) {
    if (stakeM >= cells[i] && stakeM <= cells[i + 1]) return cells[i + 2];
  }
  return null;
}

export type Change =
  | "road"
  | "state"
  | "devices"
  | "events"
  | "proposals"
  | "actions"
  | "vehicles"
  | "timespace"
  | "status";

const LIVE_WINDOW_MS = 3 * 3600_000;

export class Model {
  road!: Road;
  state: CorridorState | null = null;
  devices = new Map<string, Device>();
  deviceKind = new Map<string, string>();
  events = new Map<string, Ev>();
  proposals = new Map<string, Proposal>();
  actions: Action[] = [];
  vehicles = new Map<string, VehicleRow>();
  tracks = new Map<string, [number, number, number][]>();
  columns: TsColumn[] = [];
  /** Bumped when the columns are replaced wholesale (not just appended). */
  columnsEpoch = 0;
  connected = false;
  private listeners = new Set<(c: Change) => void>();

  on(f: (c: Change) => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  emit(c: Change): void {
    for (const f of this.listeners) f(c);
  }

  async loadRoad(): Promise<void> {
    this.road = await get<Road>("/api/road");
    const r = this.road;
    const kinds: [string, { id: string }[]][] = [
      ["detector", r.detectors],
      ["weather", r.weather],
      ["vsl", r.vsl],
      ["vms", r.vms],
      ["fog_lights", r.fog_lights],
      ["deicer", r.deicers],
      ["interchange", r.interchanges],
      ["tunnel", r.tunnels],
      ["service_area", r.service_areas],
    ];
    for (const [k, list] of kinds) for (const d of list) this.deviceKind.set(d.id, k);
    this.emit("road");
  }

  /** Everything but the road, from the API (at start and after a
   * reconnect). `hasState`: whether a tick closed yet (`/api/state`
   * answers 404 before: not asked then). */
  async reload(hasState = true): Promise<void> {
    const [state, devices, events, proposals, actions, vehicles] = await Promise.all([
      hasState ? get<CorridorState>("/api/state").catch(() => null) : Promise.resolve(this.state),
      get<Device[]>("/api/devices"),
      get<Ev[]>("/api/events?active=true&limit=2000"),
      get<Proposal[]>("/api/proposals?status=pending"),
      get<Action[]>("/api/actions?limit=500"),
      get<{ rows: VehicleRow[]; tracks?: Record<string, [number, number, number][]> }>(
        "/api/vehicles?tracks=true",
      ),
    ]);
    this.state = state;
    this.devices.clear();
    for (const d of devices) this.devices.set(d.device, d);
    this.events.clear();
    for (const e of events) this.events.set(e.id, e);
    this.proposals.clear();
    for (const p of proposals) this.proposals.set(p.id, p);
    this.actions = actions;
    this.vehicles.clear();
    this.tracks.clear();
    for (const v of vehicles.rows) this.vehicles.set(v[0], v);
    for (const [id, tr] of Object.entries(vehicles.tracks ?? {})) this.tracks.set(id, tr);
    for (const c of ["state", "devices", "events", "proposals", "actions", "vehicles"] as Change[]) this.emit(c);
  }

  /** The last hours of the time–space picture, from stored history. */
  async loadHistory(fromMs?: number, toMs?: number, stepS?: number): Promise<TsColumn[]> {
    const q = new URLSearchParams();
    if (fromMs != null) q.set("from_ms", String(fromMs));
    if (toMs != null) q.set("to_ms", String(toMs));
    if (stepS != null) q.set("step_s", String(stepS));
    const ts = await get<{
      step_s: number;
      times: number[];
      directions: { direction: string; stakes: number[]; speed_kmh: (number | null)[][] }[];
    }>(`/api/timespace?${q}`);
    const cols: TsColumn[] = ts.times.map((t) => ({ t0: t, t1: t + ts.step_s * 1000, cells: new Map() }));
    for (const d of ts.directions) {
      // A station stands for the road halfway to its neighbours.
      const s = d.stakes;
      const n = s.length;
      const gap = (i: number, j: number) => (n > 1 ? (s[j] - s[i]) / 2 : 500);
      const lo = (i: number) => (i > 0 ? (s[i - 1] + s[i]) / 2 : s[0] - gap(0, 1));
      const hi = (i: number) => (i < n - 1 ? (s[i] + s[i + 1]) / 2 : s[n - 1] + gap(n - 2, n - 1));
      d.speed_kmh.forEach((row, ti) => {
        const out: number[] = [];
        row.forEach((v, i) => {
          if (v == null) return;
          const a = lo(i);
          const b = hi(i);
          out.push(Math.min(a, b), Math.max(a, b), v);
        });
        cols[ti].cells.set(d.direction, Float32Array.from(out));
      });
    }
    return cols;
  }

  async loadLiveHistory(): Promise<void> {
    try {
      const hist = await this.loadHistory();
      const end = hist.length ? hist[hist.length - 1].t1 : -Infinity;
      // Keep the live columns that arrived while the history loaded.
      this.columns = hist.concat(this.columns.filter((c) => c.t0 >= end));
    } catch {
      /* keep what the stream gave */
    }
    this.columnsEpoch++;
    this.emit("timespace");
  }

  private addStateColumn(s: CorridorState): void {
    const last = this.columns[this.columns.length - 1];
    const t1 = s.ts_ms;
    const t0 = last && last.t1 <= t1 && t1 - last.t1 < 600_000 ? Math.max(last.t1, t1 - 60_000) : t1 - 20_000;
    if (last && last.t0 <= t1 && t1 < last.t1) return; // already covered by history
    const col: TsColumn = { t0, t1, cells: new Map() };
    for (const d of s.directions) {
      const out = new Float32Array(d.segments.length * 3);
      d.segments.forEach((g, i) => {
        out[i * 3] = Math.min(g[0], g[1]);
        out[i * 3 + 1] = Math.max(g[0], g[1]);
        out[i * 3 + 2] = g[2];
      });
      col.cells.set(d.direction, out);
    }
    this.columns.push(col);
    const cutoff = t1 - LIVE_WINDOW_MS;
    let drop = 0;
    while (drop < this.columns.length && this.columns[drop].t1 < cutoff) drop++;
    if (drop) this.columns.splice(0, drop);
  }

  /** One stream message. */
  apply(kind: string, data: any): void {
    switch (kind) {
      case "state":
        this.state = data as CorridorState;
        this.addStateColumn(this.state);
        this.emit("state");
        this.emit("timespace");
        break;
      case "device":
        this.devices.set(data.device, data as Device);
        this.emit("devices");
        break;
      case "event": {
        const e = data.event as Ev;
        if (!e || !e.id) break;
        // The brain's updates do not carry the operators' workflow: keep it.
        if (!e.workflow) e.workflow = this.events.get(e.id)?.workflow;
        if (data.change === "ended" || e.end) this.events.delete(e.id);
        else this.events.set(e.id, e);
        this.emit("events");
        break;
      }
      case "proposal": {
        const p = data as Proposal;
        if (p.status === "pending") this.proposals.set(p.id, p);
        else this.proposals.delete(p.id);
        this.emit("proposals");
        break;
      }
      case "action":
        // The record carries its data time (`at`); no browser clock here.
        this.actions.unshift({ command: data });
        if (this.actions.length > 1000) this.actions.length = 1000;
        this.emit("actions");
        break;
      case "vehicles": {
        for (const id of data.gone ?? []) {
          this.vehicles.delete(id);
          this.tracks.delete(id);
        }
        for (const r of data.rows as VehicleRow[]) {
          this.vehicles.set(r[0], r);
          let tr = this.tracks.get(r[0]);
          if (!tr) this.tracks.set(r[0], (tr = []));
          const last = tr[tr.length - 1];
          if (!last || last[0] < r[2]) {
            tr.push([r[2], r[3], r[4]]);
            if (tr.length > 40) tr.shift();
          }
        }
        this.emit("vehicles");
        break;
      }
    }
  }

  /** The latest command for a device (and, for entries, a direction). */
  lastCommand(device: string, direction?: string): any {
    for (const a of this.actions) {
      // A proposal's record was never sent: it is not a command.
      if (a.mode === "confirm" || a.applied === false) continue;
      const c = a.command;
      if (c && c.device === device && (direction == null || c.direction == null || c.direction === direction)) return c;
    }
    return null;
  }

  /** An entry's state for one direction: what the device confirmed when
   * its last confirmation was for that direction, else the last command. */
  entryState(id: string, direction: string): { value: string; confirmed: boolean } {
    const d = this.devices.get(id);
    const s = d?.state;
    if (s && s.action === "entry" && s.direction === direction) return { value: s.value, confirmed: true };
    const c = this.lastCommand(id, direction);
    if (c && c.action === "entry") return { value: c.value, confirmed: false };
    return { value: "open", confirmed: !!d?.online };
  }

  /** A device or place as people call it: its road-book name where it
   * has one (an interchange's 固安, a service area's), else its id. */
  deviceName(id: string | null | undefined): string {
    if (!id) return "—";
    const r = this.road;
    if (!r) return id;
    return r.interchanges.find((x) => x.id === id)?.name ?? r.service_areas.find((x) => x.id === id)?.name ?? id;
  }

  speedAt(direction: string, stake: number): number | null {
    const d = this.state?.directions.find((x) => x.direction === direction);
    if (!d) return null;
    for (const g of d.segments) {
      if (stake >= Math.min(g[0], g[1]) && stake <= Math.max(g[0], g[1])) return g[2];
    }
    return null;
  }
}

export const model = new Model();
