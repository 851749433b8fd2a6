#!/usr/bin/env python3
"""Closed-loop co-simulation of zhilu with Eclipse SUMO (issue 18, first slice).

SUMO plays the road (the corridor, demand and incidents of sumo_suite.py,
imported, not copied) and the real centre decides: a `zhilu serve` child on
loopback with its own SQLite file, every command kind on `auto`, receives
the loop data of every interval through HTTP ingest (the live path), the
weather stations' rows every minute and a camera's stopped-vehicle event;
the device states it has confirmed (`GET /api/devices`) act back on SUMO.
The same scenario runs twice from the same seed, "control" (the commands act)
and "none" (zhilu runs and decides, nothing acts), and the two are compared.

  cosim.py run   --kind incident|fog --seed S --out DIR [--control on|off|both] ...
  cosim.py batch --out DIR [--seeds 1-5] [--kinds incident,fog] ...   # table for docs/BENCHMARKS.md

Models (stated; docs/TWIN.md and scenarios/README.md "Co-simulation"):

- Speed limits: a sign governs the mainline downstream to the next sign or
  3 km (the twin's rule); its limit becomes the max speed of those edges.
  Compliance: each driver keeps their own speed factor against the posted
  limit (cars normc(0.92, 0.08, 0.7, 1.15)), so about 84 % of cars drive at
  or below it and the rest up to 15 % above it; trucks keep to it.
- Fog: a bank over a stretch [a, b] with visibility V(t). Drivers without a
  sign close only 30 % of the gap between their free speed and the
  stopping-sight-distance speed v_s(V) (v*2.5 s + v^2/(2*3.4 m/s^2) = V),
  the twin's `fog_self_slowing` default (drivers slow too little in fog:
  Hawkins 1988, M25; Broughton et al. 2007; not re-verified here). A posted
  limit caps it (the lower of the two, times the driver's speed factor).
- Entries: closed -> vehicles departing onto the ramp are turned away (each
  counted with a 0.25-h detour in the travel time, as the twin does);
  metered -> one vehicle per 6 s released at a stop line 60 m into the ramp
  (600 veh/h), so it accelerates along the ramp before merging.
- Messages and fog lights: no effect (stated; none is modelled).

Measures (SUMO's own): conflicts with time-to-collision < 1.5 s from the SSM
device, per vehicle-km in a zone (fog: 3 km upstream of the bank to its end
while visibility < 200 m; incident: 5 km upstream of the site to the site,
from the block to 15 min after it clears); the share of vehicles entering
the bank faster than v_s(V) (instant loops at its upstream edge); total
travel time (tripinfo, with depart delays and unfinished trips). In the
"none" run the twin is asked (`POST /api/whatif`, do nothing) at chosen
times and compared with what SUMO then did (travel time on the corridor,
longest queue: 300-m bins slower than 40 km/h and denser than 27 veh/km/lane).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import secrets
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inject  # noqa: E402  (weather stations)
import sumo_suite as ss  # noqa: E402  (corridor, demand, incidents)

REPO = Path(__file__).resolve().parent.parent
TTC_S = 1.5
SIGHT_REACTION_S = 2.5
SIGHT_DECEL = 3.4
FOG_SELF_SLOWING = 0.3
FOG_LAW_M = 200.0  # Art. 81 fog starts below 200 m
VSL_REACH_M = 3000.0
DETOUR_H = 0.25
METER_HEADWAY_S = 6.0
METER_POS_M = 60.0  # the meter's stop line, from the ramp's start (m)
QUEUE_KMH = 40.0
CRIT_DENSITY = 27.0  # veh/km/lane (the twin's critical density)
BIN_M = 300.0
SWEEP_S = 10  # seconds between sweeps of the vehicles (vehicle-km, queue bins)
DESIGN_KMH = 120.0


def sight_speed_kmh(vis_m: float) -> float:
    """Stopping-sight-distance speed: v*t_r + v^2/(2a) = visibility."""
    a, t = SIGHT_DECEL, SIGHT_REACTION_S
    v = -a * t + math.sqrt((a * t) ** 2 + 2 * a * vis_m)
    return v * 3.6


def fog_self_kmh(vis_m: float) -> float:
    """The speed cap drivers choose by themselves in fog (no sign)."""
    vs = sight_speed_kmh(vis_m)
    return DESIGN_KMH if vs >= DESIGN_KMH else DESIGN_KMH - FOG_SELF_SLOWING * (DESIGN_KMH - vs)


# ---------------------------------------------------------------------------
# zhilu: a `zhilu serve` child and its HTTP API
# ---------------------------------------------------------------------------


class Zhilu:
    def __init__(self, binary: str, road: Path, d: Path):
        self.d = d
        db = f"sqlite://{d / 'zhilu.db'}"
        cfg = d / "zhilu.toml"
        cfg.write_text(
            '[server]\nmode = "development"\n'
            "[storage]\nmin_free_mb = 0\nsync = \"normal\"\n"
            '[time]\nclock = "simulated"\n'
            '[decisions.modes]\nspeed_limit = "auto"\nmessage = "auto"\nfog_lights = "auto"\n'
            'deicing = "auto"\nentry = "auto"\ntunnel_plan = "auto"\n'
            '[devices]\nadapter = "sim"\nsim_confirm_ms = 50\n'
            "[forecast]\nenabled = false\n"
        )
        pw = "loop-" + secrets.token_hex(12)
        add = subprocess.run([binary, "user", "add", "cosim", "--role", "operator", "--database", db],
                             input=pw + "\n", text=True, capture_output=True)
        if add.returncode != 0:
            raise SystemExit(f"cosim: zhilu user add failed: {add.stderr.strip()}")
        self.log = open(d / "zhilu.log", "w")
        self.proc = subprocess.Popen(
            ["nice", "-n", "5", binary, "serve", "--road", str(road), "--config", str(cfg), "--database", db,
             "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env={**os.environ, "RUST_LOG": "warn"})
        line = self.proc.stdout.readline()
        url = next((w for w in line.split() if w.startswith("http://")), None)
        if not url:
            self.stop()
            raise SystemExit(f"cosim: zhilu serve printed no address: {line!r} (see {d / 'zhilu.log'})")
        self.url = url.rstrip("/")
        threading.Thread(target=self._drain, daemon=True).start()
        self.token = self.call("POST", "/api/login", {"username": "cosim", "password": pw})["token"]

    def _drain(self):
        for line in self.proc.stdout:
            self.log.write(line)

    def call(self, method, path, body=None, ctype="application/json", tries=20):
        data = None
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        for k in range(tries):
            req = urllib.request.Request(self.url + path, data=data, method=method)
            if body is not None:
                req.add_header("Content-Type", ctype)
            if getattr(self, "token", None):
                req.add_header("Authorization", f"Bearer {self.token}")
            try:
                with urllib.request.urlopen(req, timeout=120) as r:
                    raw = r.read()
                    return json.loads(raw) if raw else None
            except urllib.error.HTTPError as e:
                if e.code in (429, 503) and k + 1 < tries:
                    time.sleep(float(e.headers.get("Retry-After") or 0.5))
                    continue
                raise SystemExit(f"cosim: {method} {path}: {e.code} {e.read()[:300]!r}")
        raise SystemExit(f"cosim: {method} {path}: still busy after {tries} tries")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


# ---------------------------------------------------------------------------
# The scenario (deterministic from kind and seed; the same for both runs)
# ---------------------------------------------------------------------------


def build(a, d: Path):
    d.mkdir(parents=True, exist_ok=True)
    sd = d / "sumo"
    sd.mkdir(exist_ok=True)
    suite_kind = "incident" if a.kind == "incident" else "quiet"
    sa = ss.parse(["--kind", suite_kind, "--out", str(d), "--seed", str(a.seed), "--demand", a.demand,
                   "--length", str(a.length), "--hours", str(a.hours), "--warmup-min", str(a.warmup_min),
                   "--incidents", "1", "--lanes-blocked", a.lanes_blocked,
                   "--min-incident-min", str(a.incident_min[0]), "--max-incident-min", str(a.incident_min[1]),
                   "--interval", str(a.interval)])
    rng = random.Random(a.seed)
    warm = sa.warmup_min * 60
    sim_end = warm + int(round(sa.hours * 3600))
    sim_end -= sim_end % sa.interval
    lay0 = ss.Layout(sa.length, sa.spacing)
    geo = ss.Geo(sa.length)
    (d / "ROAD.toml").write_text(ss.road_toml(lay0, geo, sa))
    ws = inject.weather_stations(d)  # adds the weather stations, fog lights and de-icers
    road = tomllib.loads((d / "ROAD.toml").read_text())
    signs = sorted((v["id"], float(v["stake_m"])) for v in road["vsl"])
    signs.sort(key=lambda s: s[1])
    breaks = {round(s) for _, s in signs if lay0.is_narrow(s, 5)}
    fog = None
    if a.kind == "fog":
        frng = random.Random(f"cosim-fog/{a.seed}")
        cands = [(w, s) for w, s in ws if lay0.is_narrow(s - a.fog_half_m, 30) and lay0.is_narrow(s + a.fog_half_m, 30)
                 and s - a.fog_half_m > 3000]
        wid, ws_stake = frng.choice(cands)
        lo, hi = round(ws_stake - a.fog_half_m), round(ws_stake + a.fog_half_m)
        breaks = {b for b in breaks if not lo - 50 <= b <= hi + 50} | {lo, hi}
        vmin = frng.uniform(*a.fog_vis)
        t0 = warm + frng.randint(5, 15) * 60
        grow, hold, thin = 10, frng.randint(20, 30), 15
        clear = 8000.0
        vis = {}
        for m in range(0, sim_end // 60 + 1):
            t = m * 60
            if t < t0:
                v = clear
            elif t < t0 + grow * 60:
                v = inject.loglerp(clear, vmin, (t - t0) / (grow * 60))
            elif t < t0 + (grow + hold) * 60:
                v = vmin * math.exp(frng.gauss(0, 0.08))
            elif t < t0 + (grow + hold + thin) * 60:
                v = inject.loglerp(vmin, clear, (t - t0 - (grow + hold) * 60) / (thin * 60))
            else:
                v = clear
            vis[m] = v
        fog = {"station": wid, "station_m": ws_stake, "from_m": lo, "to_m": hi, "min_vis_m": round(vmin),
               "start_s": t0, "vis": vis}
    lay = ss.Layout(sa.length, sa.spacing, sorted(breaks))
    net = ss.write_network(lay, sd)
    starts = ss.lane_starts(net)
    loops = ss.write_detectors(lay, starts, sa.interval, sd)
    incidents = ss.plan_incidents(lay, sa, rng, warm, sim_end, random.Random(f"{a.seed}/issue15")) \
        if a.kind == "incident" else []
    ss.write_demand(lay, sa, rng, sd, sim_end, [])
    extra = []
    if fog:
        for i in range(ss.LANES):
            lid, _, _ = ss.main_lane(lay, fog["from_m"] + 5, i)
            x0, length, _ = starts[lid]
            extra.append(f'  <instantInductionLoop id="fog_{i}" lane="{lid}" pos="{fog["from_m"] + 5 - x0:.2f}" '
                         f'file="fogedge.xml"/>')
    (sd / "cosim.add.xml").write_text("<additional>\n" + "\n".join(extra) + "\n</additional>\n")
    return dict(sa=sa, lay=lay, geo=geo, net=net, starts=starts, loops=loops, incidents=incidents, fog=fog,
                ws=ws, signs=signs, warm=warm, sim_end=sim_end, road=road)


# ---------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------


def zones(sc) -> list:
    """(name, from_m, to_m, t0, t1): where and when conflicts and vehicle-km are counted."""
    out = []
    if sc["fog"]:
        f = sc["fog"]
        foggy = [m * 60 for m, v in f["vis"].items() if v < FOG_LAW_M]
        if foggy:
            out.append(("fog", f["from_m"] - 3000, f["to_m"], min(foggy), max(foggy) + 60))
    for inc in sc["incidents"]:
        out.append(("incident", inc["stake"] - 5000, inc["stake"], inc["target_start"], inc["until"] + 900))
    return out


def run_one(a, control: bool, d: Path) -> dict:
    import traci.constants as tc
    if a.backend == "libsumo":
        import libsumo as traci
    else:
        import traci
    wall0 = time.time()
    sc = build(a, d)
    zh = Zhilu(a.zhilu, d / "ROAD.toml", d)
    try:
        return loop(a, control, d, sc, zh, traci, tc, wall0)
    finally:
        zh.stop()


def loop(a, control, d, sc, zh, traci, tc, wall0) -> dict:
    sa, lay, starts, sd = sc["sa"], sc["lay"], sc["starts"], d / "sumo"
    clock = ss.Clock(sa.date, sa.start)
    cmd = [ss.venv_bin("sumo"), "-n", str(sc["net"]), "-r", str(sd / "demand.rou.xml"),
           "-a", f"{sd / 'det.add.xml'},{sd / 'cosim.add.xml'}",
           "--begin", "0", "--end", str(sc["sim_end"]), "--step-length", "1", "--seed", str(a.seed),
           "--time-to-teleport", "-1", "--no-step-log", "true", "--no-warnings", "true",
           "--default.speeddev", "0.1", "--collision.action", "warn", "--max-depart-delay", "900",
           "--tripinfo-output", str(sd / "tripinfo.xml"), "--tripinfo-output.write-unfinished", "true",
           "--device.ssm.probability", "1", "--device.ssm.measures", "TTC",
           "--device.ssm.thresholds", str(TTC_S), "--device.ssm.range", "50",
           "--device.ssm.file", str(sd / "ssm.xml"), "--device.ssm.trajectories", "false"]
    if a.backend == "libsumo":
        traci.start(cmd)
    else:
        traci.start(cmd, label=f"cosim{os.getpid()}{int(control)}")
    mainline = [e for e in lay.edges]
    sign_reach = []  # (id, from, to)
    for i, (sid, s) in enumerate(sc["signs"]):
        nxt = sc["signs"][i + 1][1] if i + 1 < len(sc["signs"]) else 1e12
        sign_reach.append((sid, s, min(nxt, s + VSL_REACH_M)))
    fog = sc["fog"]
    fog_edges = {e[0] for e in mainline if fog and e[1] >= fog["from_m"] - 1 and e[2] <= fog["to_m"] + 1}
    edge_speed = {e[0]: DESIGN_KMH for e in mainline}
    limits = {}  # sign id -> km/h
    entries = {}  # interchange id -> open / metered / closed
    meter_next = {}
    turned_away = 0
    zn = zones(sc)
    vkm = {z[0]: 0.0 for z in zn}
    cum_veh_s, cum_series = 0.0, {}
    queue_series = {}
    whatif = []
    whatif_at = []
    if not control and a.whatif:
        base = sc["incidents"][0]["target_start"] if sc["incidents"] else (fog["start_s"] if fog else sc["warm"])
        iv = sc["sa"].interval  # asked right after a tick: at a multiple of the interval
        whatif_at = [t for t in (-(-(base + m * 60) // iv) * iv for m in a.whatif_min) if t + 900 <= sc["sim_end"]]
    devices_log = []
    cam_due = []
    inc_state = [{"armed": {}, "stopped": {}, "done": False} for _ in sc["incidents"]]
    wall_parts = {"sumo": 0.0, "zhilu": 0.0, "twin": 0.0}
    t = 0
    while t < sc["sim_end"]:
        w0 = time.perf_counter()
        traci.simulationStep()
        t = int(round(traci.simulation.getTime()))
        wall_parts["sumo"] += time.perf_counter() - w0
        # --- entries: turned away / metered
        for vid in traci.simulation.getDepartedIDList():
            r0 = traci.vehicle.getRoadID(vid)
            st = entries.get(r0[:-3], "open") if r0.endswith("_on") else "open"
            if st == "closed":
                traci.vehicle.remove(vid)
                turned_away += 1
                continue
            traci.vehicle.subscribe(vid, [tc.VAR_POSITION, tc.VAR_SPEED])
            if st == "metered":
                # the meter stands near the ramp's start: a released vehicle has the ramp to accelerate
                rel = max(t + 5.0, meter_next.get(r0, 0.0))
                meter_next[r0] = rel + METER_HEADWAY_S
                try:
                    traci.vehicle.setStop(vid, r0, pos=METER_POS_M, laneIndex=0, duration=0.0, until=rel)
                except traci.TraCIException:
                    pass
        # --- incidents: stopped vehicles block lanes (own small driver, sumo_suite's plan)
        for inc, stt in zip(sc["incidents"], inc_state):
            if t >= inc["target_start"] and len(stt["armed"]) < len(inc["idx"]) and t - inc["target_start"] < 600:
                for k in inc["idx"]:
                    if k in stt["armed"]:
                        continue
                    lid, _, eid = ss.main_lane(lay, inc["stake"], k)
                    target = inc["stake"] - starts[lid][0]
                    best = None
                    for vid in traci.lane.getLastStepVehicleIDs(lid):
                        lp = traci.vehicle.getLanePosition(vid)
                        if vid.startswith("c_") and target - 600 <= lp <= target - 200 and (best is None or lp > best[1]):
                            best = (vid, lp)
                    if best:
                        try:
                            traci.vehicle.setLaneChangeMode(best[0], 0)
                            traci.vehicle.setStop(best[0], eid, pos=target, laneIndex=k, duration=0.0,
                                                  until=float(inc["until"]))
                            stt["armed"][k] = best[0]
                        except traci.TraCIException:
                            traci.vehicle.setLaneChangeMode(best[0], 1621)
            for k, vid in stt["armed"].items():
                if k not in stt["stopped"]:
                    try:
                        if traci.vehicle.isStopped(vid):
                            stt["stopped"][k] = t
                            if len(stt["stopped"]) == 1:
                                cam_due.append((t + 90, inc, sorted(ss.LANES - x for x in inc["idx"])[0]))
                    except traci.TraCIException:
                        pass
        # --- travel time on the corridor (running + waiting to enter), per second
        cum_veh_s += traci.vehicle.getIDCount() + len(traci.simulation.getPendingVehicles())
        if t % 60 == 0:
            cum_series[t] = cum_veh_s
        # --- vehicle-km in the zones, queue bins
        if t % SWEEP_S == 0:
            bins = {}
            for vid, r in traci.vehicle.getAllSubscriptionResults().items():
                x, y = r[tc.VAR_POSITION]
                if y < -16:  # on a ramp
                    continue
                v = r[tc.VAR_SPEED]
                for name, x0, x1, t0, t1 in zn:
                    if x0 <= x < x1 and t0 <= t < t1:
                        vkm[name] += v * SWEEP_S / 1000.0
                if t % 60 == 0:
                    b = bins.setdefault(int(x // BIN_M), [0, 0.0])
                    b[0] += 1
                    b[1] += v
            if t % 60 == 0:
                run_len, best_len = 0, 0
                for i in range(int(sa.length // BIN_M) + 1):
                    n, vs = bins.get(i, (0, 0.0))
                    q = n > 0 and vs / n * 3.6 < QUEUE_KMH and n / (BIN_M / 1000 * ss.LANES) > CRIT_DENSITY
                    run_len = run_len + 1 if q else 0
                    best_len = max(best_len, run_len)
                queue_series[t] = best_len * BIN_M
        # --- fog: the drivers' own speed choice and the signs' limits on each edge
        if t % 10 == 0 or t == 1:
            vis = fog["vis"].get(t // 60, 8000.0) if fog else None
            for eid, a0, b0, _ in mainline:
                mid = (a0 + b0) / 2
                v = DESIGN_KMH
                if control:
                    for sid, s0, s1 in sign_reach:
                        if s0 <= mid < s1 and sid in limits:
                            v = min(v, limits[sid])
                if eid in fog_edges:
                    v = min(v, fog_self_kmh(vis))
                if abs(v - edge_speed[eid]) > 0.01:
                    traci.edge.setMaxSpeed(eid, v / 3.6)
                    edge_speed[eid] = v
        # --- zhilu: every interval the loop data (and weather every minute), then the devices
        if t % sa.interval == 0:
            w0 = time.perf_counter()
            rows = ["time,detector,lane,interval_s,volume,speed_kmh,occupancy_pct"]
            for did, (station, lane) in sc["loops"].items():
                n = traci.inductionloop.getLastIntervalVehicleNumber(did)
                sp = traci.inductionloop.getLastIntervalMeanSpeed(did)
                occ = traci.inductionloop.getLastIntervalOccupancy(did)
                spd = f"{sp * 3.6:.1f}" if n > 0 and sp >= 0 else ""
                rows.append(f"{clock.iso(t)},{station},{lane},{sa.interval},{n},{spd},{min(occ, 100.0):.1f}")
            if t % 60 == 0:
                wrows = ["time,station,visibility_m,surface_temp_c,air_temp_c,humidity_pct,surface_state"]
                for wid, s in sc["ws"]:
                    v = fog["vis"].get(t // 60, 8000.0) if fog and wid == fog["station"] else 8000.0
                    foggy = v < 1000
                    wrows.append(f"{clock.iso(t)},{wid},{v:.0f},9.0,8.0,{98 if foggy else 75},{'moist' if foggy else 'dry'}")
                zh.call("POST", "/api/ingest/weather", "\n".join(wrows) + "\n", "text/csv")
            for due in [c for c in cam_due if c[0] <= t]:
                cam_due.remove(due)
                _, inc, lane = due
                body = ("time,camera,kind,direction,stake_m,lane,confidence\n"
                        f"{clock.iso(t)},CU{int(inc['stake']) // 1000:03d},stopped_vehicle,up,{inc['stake']},{lane},0.8\n")
                zh.call("POST", "/api/ingest/camera-events", body, "text/csv")
            zh.call("POST", "/api/ingest/observations", "\n".join(rows) + "\n", "text/csv")
            devs = zh.call("GET", "/api/devices")
            now_lim, now_ent = {}, {}
            for dv in devs:
                sh = dv.get("shows") or {}
                if not isinstance(sh, dict):
                    continue
                if "limit_kmh" in sh and sh["limit_kmh"]:
                    now_lim[dv["device"]] = float(sh["limit_kmh"])
                st = sh.get("state") or sh.get("entry")
                if dv["device"].startswith("T_") and isinstance(st, str):
                    now_ent[dv["device"]] = st
            if now_lim != limits or now_ent != entries:
                devices_log.append({"t": t, "limits": now_lim, "entries": now_ent})
            limits = now_lim
            if control:
                entries = now_ent
            wall_parts["zhilu"] += time.perf_counter() - w0
            if t in whatif_at:
                w0 = time.perf_counter()
                whatif.append(ask_twin(zh, t, sc["sim_end"]))
                wall_parts["twin"] += time.perf_counter() - w0
    traci.close()
    wall = time.time() - wall0
    res = measure(sc, sd, zn, vkm, turned_away, control)
    res.update({"control": control, "kind": a.kind, "seed": a.seed, "wall_s": round(wall, 1),
                "wall_parts_s": {k: round(v, 1) for k, v in wall_parts.items()},
                "devices_changes": len(devices_log), "devices_log": devices_log[:200],
                "incidents": [{"stake_m": i["stake"], "lanes": len(i["idx"]), "start_s": i["target_start"],
                               "until_s": i["until"]} for i in sc["incidents"]],
                "fog": {k: v for k, v in (fog or {}).items() if k != "vis"} or None})
    if whatif:
        res["twin"] = twin_vs_sumo(whatif, cum_series, queue_series)
    (d / "result.json").write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n")
    for f in ("ssm.xml", "tripinfo.xml", "loops.xml", "fogedge.xml"):
        if not a.keep and (sd / f).exists():
            (sd / f).unlink()
    return res


def ask_twin(zh: Zhilu, t: int, sim_end: int) -> dict:
    out = {"t": t, "horizons": {}}
    for h in (h for h in (15, 30, 60) if t + h * 60 <= sim_end):
        r = zh.call("POST", "/api/whatif", {"horizon_min": h})
        plans = {p["name"]: {"ttt": p["total_travel_time_veh_h"], "max_queue_m": p["max_queue_m"]} for p in r["plans"]}
        out["horizons"][h] = plans
    return out


def twin_vs_sumo(whatif, cum_series, queue_series) -> list:
    rows = []
    for w in whatif:
        t = w["t"]
        for h, plans in w["horizons"].items():
            dn = plans.get("do nothing") or next(iter(plans.values()))
            t1 = t + int(h) * 60
            t0m, t1m = t - t % 60, t1 - t1 % 60
            if t1m not in cum_series or t0m not in cum_series:
                continue
            ttt = (cum_series[t1m] - cum_series[t0m]) / 3600.0
            q = max((v for k, v in queue_series.items() if t0m < k <= t1m), default=0.0)
            rows.append({"t": t, "horizon_min": int(h), "twin_ttt_veh_h": round(dn["ttt"], 1),
                         "sumo_ttt_veh_h": round(ttt, 1), "ttt_err_pct": round(100 * (dn["ttt"] - ttt) / ttt, 1),
                         "twin_queue_m": dn["max_queue_m"], "sumo_queue_m": q,
                         "queue_ok": abs(dn["max_queue_m"] - q) <= max(500.0, 0.15 * q),
                         "ttt_ok": abs(dn["ttt"] - ttt) <= 0.10 * ttt,
                         "plans": {k: round(v["ttt"], 1) for k, v in plans.items()}})
    return rows


def measure(sc, sd: Path, zn, vkm, turned_away, control) -> dict:
    warm = sc["warm"]
    # travel time
    ttt_s, trips = 0.0, 0
    for _, el in ET.iterparse(sd / "tripinfo.xml"):
        if el.tag == "tripinfo":
            if float(el.get("depart", -1)) >= warm or float(el.get("depart", -1)) < 0:
                ttt_s += float(el.get("duration")) + float(el.get("departDelay", 0))
                trips += 1
            el.clear()
    ttt_h = ttt_s / 3600.0 + turned_away * DETOUR_H
    # conflicts
    conf = {z[0]: 0 for z in zn}
    allc = 0
    by_km = {}  # zone -> km of stake -> conflicts
    seen = set()
    for _, el in ET.iterparse(sd / "ssm.xml"):
        if el.tag == "conflict":
            # both vehicles carry the device: each conflict is written by both (ego and foe)
            key = (min(el.get("ego"), el.get("foe")), max(el.get("ego"), el.get("foe")), el.get("begin"))
            if key in seen:
                el.clear()
                continue
            seen.add(key)
            m = el.find("minTTC")
            if m is not None and m.get("value") not in (None, "NA") and float(m.get("value")) < TTC_S:
                x, y = map(float, m.get("position").split(","))
                tt = float(m.get("time"))
                if y > -16:
                    allc += 1
                    for name, x0, x1, t0, t1 in zn:
                        if x0 <= x < x1 and t0 <= tt < t1:
                            conf[name] += 1
                            km = by_km.setdefault(name, {})
                            km[int(x // 1000)] = km.get(int(x // 1000), 0) + 1
            el.clear()
    res = {"ttt_veh_h": round(ttt_h, 1), "trips": trips, "turned_away": turned_away, "conflicts_mainline": allc,
           "zones": {}}
    for name, x0, x1, t0, t1 in zn:
        res["zones"][name] = {"from_m": x0, "to_m": x1, "t0": t0, "t1": t1, "conflicts": conf[name],
                              "veh_km": round(vkm[name], 1),
                              "conflicts_by_km": dict(sorted(by_km.get(name, {}).items())),
                              "per_1000_veh_km": round(1000 * conf[name] / vkm[name], 3) if vkm[name] else None}
    fog = sc["fog"]
    if fog:
        n, fast, speeds = 0, 0, []
        p = sd / "fogedge.xml"
        if p.exists():
            for _, el in ET.iterparse(p):
                if el.tag == "instantOut" and el.get("state") == "enter":
                    tt = float(el.get("time"))
                    v = fog["vis"].get(int(tt) // 60, 8000.0)
                    if v < FOG_LAW_M:
                        sp = float(el.get("speed")) * 3.6
                        n += 1
                        speeds.append(sp)
                        fast += sp > sight_speed_kmh(v)
                el.clear()
        res["fog_entering"] = n
        res["fog_too_fast"] = fast
        res["fog_too_fast_share"] = round(fast / n, 3) if n else None
        res["fog_entry_mean_kmh"] = round(sum(speeds) / n, 1) if n else None
    return res


# ---------------------------------------------------------------------------
# Control against none
# ---------------------------------------------------------------------------


def compare(on: dict, off: dict) -> dict:
    out = {"kind": on["kind"], "seed": on["seed"], "ttt_on": on["ttt_veh_h"], "ttt_off": off["ttt_veh_h"],
           "ttt_change_pct": round(100 * (on["ttt_veh_h"] - off["ttt_veh_h"]) / off["ttt_veh_h"], 1),
           "turned_away": on["turned_away"], "zones": {}}
    for name, z in on["zones"].items():
        zo = off["zones"].get(name)
        a, b = z["per_1000_veh_km"], zo and zo["per_1000_veh_km"]
        out["zones"][name] = {"conflicts_on": z["conflicts"], "conflicts_off": zo and zo["conflicts"],
                              "rate_on": a, "rate_off": b,
                              "rate_change_pct": round(100 * (a - b) / b, 1) if a is not None and b else None}
    if "fog_too_fast_share" in on:
        out["fog_too_fast_on"] = on["fog_too_fast_share"]
        out["fog_too_fast_off"] = off["fog_too_fast_share"]
    if off.get("twin"):
        out["twin"] = off["twin"]
    return out


def cmd_run(a):
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    modes = {"on": [True], "off": [False], "both": [True, False]}[a.control]
    if len(modes) == 2 and not a.serial:
        # the two runs in parallel (one core each): this script again, once per mode
        procs = []
        for m in ("on", "off"):
            argv = [sys.executable, __file__, "run", *a.raw, "--control", m]
            procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL))
        codes = [p.wait() for p in procs]
        if any(codes):
            raise SystemExit(f"cosim: a run failed ({codes}); see {out}/*/zhilu.log")
        res = {m: json.loads((out / m / "result.json").read_text()) for m in ("on", "off")}
    else:
        res = {}
        for c in modes:
            m = "on" if c else "off"
            res[m] = run_one(a, c, out / m)
    if "on" in res and "off" in res:
        cmp = compare(res["on"], res["off"])
        (out / "compare.json").write_text(json.dumps(cmp, indent=1, ensure_ascii=False) + "\n")
        print(json.dumps(cmp, ensure_ascii=False))
        return cmp
    print(json.dumps({k: {x: v[x] for x in ("ttt_veh_h", "zones", "wall_s")} for k, v in res.items()}))


def cmd_batch(a):
    from concurrent.futures import ThreadPoolExecutor

    out = Path(a.out)
    lo, hi = map(int, a.seeds.split("-"))
    todo = [(kind, seed) for kind in a.kinds.split(",") for seed in range(lo, hi + 1)]

    def one(job):
        kind, seed = job
        d = out / f"{kind}-{seed}"
        if a.table_only and not (d / "compare.json").exists():
            return None
        if not (d / "compare.json").exists():
            argv = ["--kind", kind, "--seed", str(seed), "--out", str(d), "--zhilu", a.zhilu,
                    "--hours", str(a.hours), "--length", str(a.length), "--demand", a.demand,
                    "--whatif-min", *map(str, a.whatif_min)]
            r = subprocess.run([sys.executable, __file__, "run", *argv, "--control", "both"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                print(f"cosim batch: {kind} {seed} failed: {r.stderr[-500:]}", file=sys.stderr)
                return None
            print(f"cosim batch: {kind} {seed} done", file=sys.stderr)
        return json.loads((d / "compare.json").read_text())

    with ThreadPoolExecutor(a.jobs) as ex:
        rows = [r for r in ex.map(one, todo) if r]
    table = batch_table(rows)
    (out / "TABLE.md").write_text(table)
    print(table)


def batch_table(rows) -> str:
    L = ["| scenario | seed | zone | conflicts none → zhilu | per 1000 veh·km none → zhilu | change | "
         "fog too fast none → zhilu | TTT none → zhilu (veh·h) | TTT change | turned away |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for name, z in r["zones"].items():
            ff = (f"{r['fog_too_fast_off']:.0%} → {r['fog_too_fast_on']:.0%}"
                  if r.get("fog_too_fast_on") is not None else "—")
            L.append(f"| {r['kind']} | {r['seed']} | {name} | {z['conflicts_off']} → {z['conflicts_on']} | "
                     f"{z['rate_off']} → {z['rate_on']} | {z['rate_change_pct']} % | {ff} | "
                     f"{r['ttt_off']:,} → {r['ttt_on']:,} | {r['ttt_change_pct']:+} % | {r['turned_away']} |")
    tw = [x for r in rows for x in r.get("twin", [])]
    if tw:
        L += ["", "| scenario | seed | at (s) | horizon | TTT twin | TTT SUMO | error | queue twin | queue SUMO | within bars |",
              "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            for x in r.get("twin", []):
                L.append(f"| {r['kind']} | {r['seed']} | {x['t']} | {x['horizon_min']} min | {x['twin_ttt_veh_h']} | "
                         f"{x['sumo_ttt_veh_h']} | {x['ttt_err_pct']:+} % | {x['twin_queue_m']:.0f} m | "
                         f"{x['sumo_queue_m']:.0f} m | TTT {'yes' if x['ttt_ok'] else 'no'}, queue "
                         f"{'yes' if x['queue_ok'] else 'no'} |")
    return "\n".join(L) + "\n"


def default_zhilu() -> str:
    for p in (REPO / "target/release/zhilu", REPO / "target/debug/zhilu"):
        if p.exists():
            return str(p)
    return "zhilu"


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="one scenario, control and/or none")
    b = sub.add_parser("batch", help="many scenarios, a table")
    for q in (r, b):
        q.add_argument("--out", required=True)
        q.add_argument("--zhilu", default=default_zhilu(), help="the zhilu binary")
        q.add_argument("--hours", type=float, default=1.25)
        q.add_argument("--length", type=int, default=12000)
        q.add_argument("--demand", choices=sorted(ss.LEVELS), default="heavy")
    r.add_argument("--kind", choices=["incident", "fog"], required=True)
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--control", choices=["on", "off", "both"], default="both")
    r.add_argument("--serial", action="store_true", help="both runs one after the other (default: in parallel)")
    r.add_argument("--warmup-min", type=int, default=15)
    r.add_argument("--interval", type=int, choices=[20, 30, 60], default=30)
    r.add_argument("--lanes-blocked", choices=["1", "2", "mixed"], default="2")
    r.add_argument("--incident-min", type=int, nargs=2, default=[20, 30])
    r.add_argument("--fog-half-m", type=float, default=800.0, help="the bank spans the station ± this")
    r.add_argument("--fog-vis", type=float, nargs=2, default=[30.0, 120.0], help="lowest visibility range (m)")
    r.add_argument("--whatif-min", type=int, nargs="*", default=[10], dest="whatif_min",
                   help="minutes after the incident / fog start at which the twin is asked (run 'none')")
    r.add_argument("--no-whatif", dest="whatif", action="store_false")
    r.add_argument("--keep", action="store_true", help="keep SUMO's big outputs (ssm, tripinfo)")
    r.add_argument("--backend", choices=["libsumo", "traci"], default=ss.default_backend())
    b.add_argument("--seeds", default="1-5")
    b.add_argument("--kinds", default="incident,fog")
    b.add_argument("--table-only", action="store_true", help="only the table of the scenarios already run")
    b.add_argument("--jobs", type=int, default=1, help="scenarios at once (each runs control and none in parallel)")
    b.add_argument("--whatif-min", type=int, nargs="*", default=[5], dest="whatif_min")
    a = p.parse_args(argv)
    if a.cmd == "run":
        raw = list(argv if argv is not None else sys.argv[1:])
        raw = raw[1:]
        # drop --control X (the parallel children get their own)
        if "--control" in raw:
            i = raw.index("--control")
            del raw[i:i + 2]
        a.raw = raw
    return a


def main(argv=None):
    a = parse(argv)
    if a.cmd == "run":
        cmd_run(a)
    else:
        cmd_batch(a)


if __name__ == "__main__":
    main()
