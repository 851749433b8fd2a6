#!/usr/bin/env python3
"""SUMO scenario generator for zhilu (replay contract v1 inputs + ground truth).

One carriageway ("up", increasing stake) of a 3-lane freeway with on-ramps
(parallel acceleration lanes) and off-ramps (parallel deceleration lanes),
induction loops on every mainline lane every --spacing metres aggregated over
--interval seconds, a time-varying demand profile, and one of four scenario
kinds:

  incident    lanes blocked by stopped vehicles (TraCI setStop) for 10-30 min
  bottleneck  heavy on-ramp demand at the middle interchange: recurrent merge
              congestion, no incident (false-alarm material)
  quiet       a normal day, no incident
  hazmat      hazardous-goods trucks with injected violations (speeding,
              stopping on the carriageway, entering a hazmat-forbidden tunnel)
              and legitimate look-alikes (short stops, a service-area stop,
              short speeding)

Writes into --out: ROAD.toml, OBS.csv, POS.csv, CAM.csv, TRUTH.jsonl,
SCENARIO.json (parameters, seeds, versions, run statistics) and, unless
--no-keep-sumo, the SUMO files in sumo/.

Coordinates: SUMO x = stake (m) along the mainline; the mainline edge line is
y = 0 and lanes lie to its right (y < 0). A SUMO point (x, y) maps to stake
= x and lateral offset (right of the road's centre line) = MEDIAN_M - y, and
then to lon/lat with the same piecewise-linear, local-equirectangular
geometry that ROAD.toml's `geometry` describes (as zhilu interpolates it).
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path

TZ = timezone(timedelta(hours=8))
M_PER_DEG = 6_371_008.8 * math.pi / 180.0  # same sphere as zhilu-road
LANES = 3
LANE_W = 3.75
MEDIAN_M = 3.0  # centre line to the left edge of the innermost lane (m)
MAIN_SPEED = 120 / 3.6
RAMP_SPEED = 60 / 3.6
HAZMAT_SPEED = 76 / 3.6  # compliant hazmat trucks: below the 80 km/h limit
HAZMAT_FAST = 98 / 3.6
HAZMAT_LIMIT_KMH = 80.0
SPEEDING_S = 60
SPEED_DIP_S = 5  # a dip below the limit this short (s) does not end a speeding run
STOP_KMH = 5.0
STOPPED_S = 300
STOP_RADIUS_M = 100.0
SERVICE_AREA_M = 500.0

LEVELS = {"light": 0.35, "medium": 0.6, "heavy": 0.8}


def venv_bin(name: str) -> str:
    here = Path(sys.executable).parent
    cand = here / name
    if cand.exists():
        return str(cand)
    found = shutil.which(name)
    if not found:
        sys.exit(f"sumo_suite: `{name}` not found (install eclipse-sumo in scenarios/.venv)")
    return found


# ---------------------------------------------------------------------------
# Layout of the corridor
# ---------------------------------------------------------------------------


class Layout:
    """Stakes of everything on the corridor, scaled from a 16-km template."""

    ACC = 300  # acceleration lane length (m)
    DEC = 200  # deceleration lane length (m)

    def __init__(self, length: int, spacing: int, extra_breaks=()):
        if not 8000 <= length <= 30000:
            raise SystemExit("--length must be 8000..30000 m")
        f = length / 16000.0

        def r(v: float) -> int:
            return int(round(v * f / 10.0)) * 10

        self.L = length
        self.spacing = spacing
        # (id, name, stake): the merge point of each on-ramp
        self.onramps = [("T_A", "东岗", r(3000)), ("T_B", "北辛庄", r(7000)), ("T_C", "南河", r(12000))]
        # (id, stake): the diverge point of each off-ramp
        self.offramps = [("X_1", r(5500)), ("X_2", r(10500))]
        self.service_area = ("SA1", "永定服务区", r(9000))
        self.tunnel = ("TN1", r(13000), r(14200))
        self.stations = list(range(spacing, length, spacing))
        # mainline breakpoints
        pts = {0, length}
        self.wide = []  # (from, to) 4-lane stretches
        for _, _, s in self.onramps:
            pts |= {s, s + self.ACC}
            self.wide.append((s, s + self.ACC))
        for _, s in self.offramps:
            pts |= {s - self.DEC, s}
            self.wide.append((s - self.DEC, s))
        pts |= set(extra_breaks)  # inside 3-lane edges only (rubbernecking zones)
        self.breaks = sorted(pts)
        self.edges = []  # (edge id, from stake, to stake, lanes)
        for i in range(len(self.breaks) - 1):
            a, b = self.breaks[i], self.breaks[i + 1]
            lanes = 4 if (a, b) in self.wide else 3
            self.edges.append((f"m{i}", a, b, lanes))
        self.edge_at = {e[0]: e for e in self.edges}

    def edge_of(self, stake: float):
        for e in self.edges:
            if e[1] <= stake < e[2]:
                return e
        return self.edges[-1]

    def node(self, stake: int) -> str:
        return f"n{self.breaks.index(stake)}"

    def is_narrow(self, stake: float, margin: float = 0) -> bool:
        e = self.edge_of(stake)
        return e[3] == 3 and e[1] + margin <= stake <= e[2] - margin

    def station_id(self, stake: int) -> str:
        return f"D{stake // 100:04d}U"


# ---------------------------------------------------------------------------
# Geometry: stake/offset <-> lon/lat, identical to ROAD.toml's polyline
# ---------------------------------------------------------------------------


class Geo:
    def __init__(self, length: int, lon0=116.30, lat0=39.86, bearing0=200.0, step=2000):
        self.pts = [(0.0, lon0, lat0)]
        s, lon, lat = 0.0, lon0, lat0
        i = 0
        while s < length:
            seg = min(step, length - s)
            b = math.radians(bearing0 + 4.0 * math.sin(0.6 * i))  # gentle curve
            kx = M_PER_DEG * math.cos(math.radians(lat))
            lon += seg * math.sin(b) / kx
            lat += seg * math.cos(b) / M_PER_DEG
            s += seg
            i += 1
            self.pts.append((s, lon, lat))
        self.stakes = [p[0] for p in self.pts]

    def seg(self, stake: float):
        i = bisect.bisect_right(self.stakes, stake) - 1
        i = max(0, min(i, len(self.pts) - 2))
        return self.pts[i], self.pts[i + 1]

    def bearing(self, stake: float) -> float:
        (sa, lona, lata), (sb, lonb, latb) = self.seg(stake)
        kx = M_PER_DEG * math.cos(math.radians(lata))
        return math.degrees(math.atan2((lonb - lona) * kx, (latb - lata) * M_PER_DEG)) % 360.0

    def lonlat(self, stake: float, offset_right: float = 0.0):
        (sa, lona, lata), (sb, lonb, latb) = self.seg(stake)
        f = (stake - sa) / (sb - sa)
        lon = lona + f * (lonb - lona)
        lat = lata + f * (latb - lata)
        kx = M_PER_DEG * math.cos(math.radians(lata))
        de, dn = (lonb - lona) * kx, (latb - lata) * M_PER_DEG
        n = math.hypot(de, dn)
        de, dn = de / n, dn / n
        # right normal of (de, dn) is (dn, -de)
        lon += offset_right * dn / kx
        lat += offset_right * -de / M_PER_DEG
        return lon, lat

    def sumo_to_lonlat(self, x: float, y: float):
        return self.lonlat(max(0.0, x), MEDIAN_M - y)

    def toml(self) -> str:
        return "[" + ", ".join(f"[{s:.0f}, {lon:.6f}, {lat:.6f}]" for s, lon, lat in self.pts) + "]"


# ---------------------------------------------------------------------------
# SUMO network, detectors, demand
# ---------------------------------------------------------------------------


def write_network(lay: Layout, d: Path) -> Path:
    nod = ['<nodes>']
    for i, s in enumerate(lay.breaks):
        nod.append(f'  <node id="n{i}" x="{s}" y="0" type="priority"/>')
    for rid, _, s in lay.onramps:
        nod.append(f'  <node id="{rid}_src" x="{s - 500}" y="-110" type="priority"/>')
    for rid, s in lay.offramps:
        nod.append(f'  <node id="{rid}_dst" x="{s + 500}" y="-110" type="priority"/>')
    nod.append('</nodes>')
    edg = ['<edges>']
    for eid, a, b, lanes in lay.edges:
        edg.append(
            f'  <edge id="{eid}" from="{lay.node(a)}" to="{lay.node(b)}" numLanes="{lanes}" '
            f'speed="{MAIN_SPEED:.2f}" priority="3" width="{LANE_W}" spreadType="right"/>'
        )
    for rid, _, s in lay.onramps:
        edg.append(
            f'  <edge id="{rid}_on" from="{rid}_src" to="{lay.node(s)}" numLanes="1" '
            f'speed="{RAMP_SPEED:.2f}" priority="1" width="{LANE_W}"/>'
        )
    for rid, s in lay.offramps:
        edg.append(
            f'  <edge id="{rid}_off" from="{lay.node(s)}" to="{rid}_dst" numLanes="1" '
            f'speed="{RAMP_SPEED:.2f}" priority="1" width="{LANE_W}"/>'
        )
    edg.append('</edges>')
    con = ['<connections>']
    on_at = {s: rid for rid, _, s in lay.onramps}
    off_at = {s: rid for rid, s in lay.offramps}
    for (ea, _, _, la), (eb, sb, _, lb) in zip(lay.edges, lay.edges[1:]):
        if la == 3 and lb == 4 and sb in on_at:  # on-ramp merge
            for i in range(3):
                con.append(f'  <connection from="{ea}" to="{eb}" fromLane="{i}" toLane="{i + 1}"/>')
            con.append(f'  <connection from="{on_at[sb]}_on" to="{eb}" fromLane="0" toLane="0"/>')
        elif la == 3 and lb == 4:  # start of a deceleration lane
            for i in range(3):
                con.append(f'  <connection from="{ea}" to="{eb}" fromLane="{i}" toLane="{i + 1}"/>')
            con.append(f'  <connection from="{ea}" to="{eb}" fromLane="0" toLane="0"/>')
        elif la == 4 and lb == 3:  # end of acc lane (lane drop) or diverge
            for i in range(3):
                con.append(f'  <connection from="{ea}" to="{eb}" fromLane="{i + 1}" toLane="{i}"/>')
            if sb in off_at:
                con.append(f'  <connection from="{ea}" to="{off_at[sb]}_off" fromLane="0" toLane="0"/>')
        else:
            for i in range(min(la, lb)):
                con.append(f'  <connection from="{ea}" to="{eb}" fromLane="{i}" toLane="{i}"/>')
    con.append('</connections>')
    (d / "net.nod.xml").write_text("\n".join(nod) + "\n")
    (d / "net.edg.xml").write_text("\n".join(edg) + "\n")
    (d / "net.con.xml").write_text("\n".join(con) + "\n")
    net = d / "net.net.xml"
    subprocess.run(
        [venv_bin("netconvert"), "-n", str(d / "net.nod.xml"), "-e", str(d / "net.edg.xml"),
         "-x", str(d / "net.con.xml"), "-o", str(net), "--offset.disable-normalization", "true",
         "--no-turnarounds", "true", "--no-warnings", "true", "--junctions.limit-turn-speed", "-1"],
        check=True, stdout=subprocess.DEVNULL,
    )
    return net


def lane_starts(net: Path):
    """x of the first point of every lane (mainline lanes are straight along x)."""
    out = {}
    for e in ET.parse(net).getroot().iter("edge"):
        if e.get("function") == "internal":
            continue
        for ln in e.iter("lane"):
            shape = [tuple(map(float, p.split(","))) for p in ln.get("shape").split()]
            out[ln.get("id")] = (shape[0][0], float(ln.get("length")), shape[0][1])
    return out


def main_lane(lay: Layout, stake: float, idx_main: int):
    """(lane id, SUMO lane index) of mainline lane idx_main (0 = rightmost through lane)."""
    eid, a, b, lanes = lay.edge_of(stake)
    k = idx_main + (lanes - 3)
    return f"{eid}_{k}", k, eid


def write_detectors(lay: Layout, starts, interval: int, d: Path) -> dict:
    lines = ["<additional>"]
    loops = {}
    for s in lay.stations:
        for i in range(LANES):
            lid, _, _ = main_lane(lay, s, i)
            x0, length, _ = starts[lid]
            pos = min(max(s - x0, 1.0), length - 1.0)
            did = f"{lay.station_id(s)}_{LANES - i}"
            loops[did] = (lay.station_id(s), LANES - i)
            lines.append(
                f'  <inductionLoop id="{did}" lane="{lid}" pos="{pos:.2f}" period="{interval}" file="loops.xml"/>'
            )
    lines.append("</additional>")
    (d / "det.add.xml").write_text("\n".join(lines) + "\n")
    return loops


def profile(frac: float, kind: str) -> float:
    pts = [(0.0, 0.55), (0.15, 0.7), (0.35, 1.0), (0.6, 1.0), (0.8, 0.8), (1.0, 0.7)]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if frac <= x1:
            return y0 + (y1 - y0) * (frac - x0) / (x1 - x0)
    return pts[-1][1]


def route_edges(lay: Layout, origin: str, dest: str):
    a = 0 if origin == "src" else next(s for rid, _, s in lay.onramps if rid == origin)
    b = lay.L if dest == "end" else next(s for rid, s in lay.offramps if rid == dest)
    edges = [] if origin == "src" else [f"{origin}_on"]
    edges += [e for e, ea, eb, _ in lay.edges if ea >= a and eb <= b]
    if dest != "end":
        edges.append(f"{dest}_off")
    return edges


def write_demand(lay: Layout, args, rng: random.Random, d: Path, sim_end: int, hazmat_plan):
    level = LEVELS[args.demand]
    q_main = level * 5400.0
    ramp_q = {"T_A": level * 700, "T_B": level * 800, "T_C": level * 500}
    if args.kind == "bottleneck":
        q_main = args.bottleneck_main * 5400.0
        ramp_q = {"T_A": 500, "T_B": args.bottleneck_ramp, "T_C": 400}
    x1, x2 = lay.offramps[0][0], lay.offramps[1][0]
    # OD split: share of each origin's demand per destination
    od = {
        "src": {x1: 0.12, x2: 0.88 * 0.15, "end": 0.88 * 0.85},
        "T_A": {x1: 0.10, x2: 0.9 * 0.15, "end": 0.9 * 0.85},
        "T_B": {x2: 0.15, "end": 0.85},
        "T_C": {"end": 1.0},
    }
    truck_share = args.truck_share
    routes, flows = [], []
    for o, dests in od.items():
        for dst in dests:
            routes.append(f'  <route id="r_{o}_{dst}" edges="{" ".join(route_edges(lay, o, dst))}"/>')
    bin_s = 300
    for b0 in range(0, sim_end, bin_s):
        frac = (b0 + bin_s / 2) / sim_end
        p = profile(frac, args.kind)
        for o, dests in od.items():
            q = (q_main if o == "src" else ramp_q[o]) * p
            for dst, share in dests.items():
                qc = q * share * (1 - truck_share)
                qt = q * share * truck_share
                if o == "src":
                    for lane, w in ((0, 0.30), (1, 0.35), (2, 0.35)):
                        pr = qc * w / 3600.0
                        if pr > 0:
                            flows.append((b0, f'  <flow id="c_{o}_{dst}_{lane}_{b0}" type="car" route="r_{o}_{dst}" begin="{b0}" end="{b0 + bin_s}" probability="{min(pr, 1):.5f}" departLane="{lane}" departSpeed="max"/>'))
                else:
                    pr = qc / 3600.0
                    if pr > 0:
                        flows.append((b0, f'  <flow id="c_{o}_{dst}_{b0}" type="car_ramp" route="r_{o}_{dst}" begin="{b0}" end="{b0 + bin_s}" probability="{min(pr, 1):.5f}" departLane="best" departSpeed="max"/>'))
                pr = qt / 3600.0
                if pr > 0:
                    flows.append((b0, f'  <flow id="tk_{o}_{dst}_{b0}" type="{"truck" if o == "src" else "truck_ramp"}" route="r_{o}_{dst}" begin="{b0}" end="{b0 + bin_s}" probability="{pr:.5f}" departLane="best" departSpeed="max"/>'))
    for hz in hazmat_plan:
        flows.append((hz["depart"], f'  <vehicle id="{hz["sumo_id"]}" type="hazmat" route="r_{hz["origin"]}_{hz["dest"]}" depart="{hz["depart"]}" departLane="best" departSpeed="max"/>'))
    flows.sort(key=lambda x: x[0])
    vtypes = [
        '  <vType id="car" vClass="passenger" length="4.8" minGap="2.5" accel="2.6" decel="4.5" sigma="0.5" tau="1.0" speedFactor="normc(0.92,0.08,0.7,1.15)"/>',
        '  <vType id="truck" vClass="truck" length="12" minGap="3" accel="1.1" decel="4.0" sigma="0.5" tau="1.2" maxSpeed="25" speedFactor="normc(0.95,0.04,0.85,1.0)" lcKeepRight="2"/>',
        # ramp drivers force their way in (as they do at a busy merge) instead of queueing on the ramp
        f'  <vType id="car_ramp" vClass="passenger" length="4.8" minGap="2.5" accel="2.6" decel="4.5" sigma="0.5" tau="1.0" speedFactor="normc(0.92,0.08,0.7,1.15)" lcAssertive="{args.ramp_assertive}" lcImpatience="1.0"/>',
        f'  <vType id="truck_ramp" vClass="truck" length="12" minGap="3" accel="1.1" decel="4.0" sigma="0.5" tau="1.2" maxSpeed="25" speedFactor="normc(0.95,0.04,0.85,1.0)" lcKeepRight="2" lcAssertive="{args.ramp_assertive}" lcImpatience="1.0"/>',
        f'  <vType id="hazmat" vClass="truck" length="12" minGap="3" accel="1.1" decel="4.0" sigma="0.3" tau="1.2" maxSpeed="{HAZMAT_SPEED:.3f}" speedFactor="1.0" speedDev="0" lcKeepRight="2"/>',
    ]
    text = "<routes>\n" + "\n".join(vtypes + routes + [f for _, f in flows]) + "\n</routes>\n"
    (d / "demand.rou.xml").write_text(text)
    return q_main, ramp_q


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


class Clock:
    def __init__(self, date: str, start: str):
        self.t0 = datetime.fromisoformat(f"{date}T{start}:00").replace(tzinfo=TZ)

    def iso(self, sim_s: float) -> str:
        return (self.t0 + timedelta(seconds=round(sim_s))).isoformat()


def near_loop_site(lay: Layout, rng2: random.Random):
    """A stake just downstream of a loop on a 3-lane stretch: 1-4 m (the stopped vehicle itself stands on the
    loop) or 15-40 m past it (the vehicles trapped behind it stand on the loop). Either way the blocked lane
    reads 100 % occupancy and no vehicles while the other lanes move."""
    cands = []
    over = rng2.random() < 0.5
    for st in lay.stations:
        pos = st + (rng2.uniform(1, 4) if over else rng2.uniform(15, 40))
        e = lay.edge_of(pos)
        if e[3] == 3 and pos - e[1] >= 250 and e[2] - pos >= 30 and 1300 <= pos <= lay.L - 1300:
            cands.append((st, pos))
    return rng2.choice(cands) if cands else (None, None)


def plan_incidents(lay: Layout, args, rng: random.Random, warm: int, sim_end: int, rng2=None):
    out = []
    n = args.incidents
    lo, hi = warm + 600, sim_end - 600
    slot = (hi - lo) / n
    for k in range(n):
        s0, s1 = lo + k * slot, lo + (k + 1) * slot
        dur = rng.randint(args.min_incident_min * 60, args.max_incident_min * 60)
        latest = s1 - dur - 600
        if latest < s0:
            dur = max(600, int(s1 - s0 - 600))
            latest = s0
        start = int(rng.uniform(s0, latest))
        if args.lanes_blocked == "mixed":
            nl = rng.choice([1, 2])
        else:
            nl = int(args.lanes_blocked)
        idx = [rng.randrange(3)] if nl == 1 else rng.choice([[0, 1], [1, 2]])
        near = None
        if args.block_near_loop > 0 and rng2.random() < args.block_near_loop:
            near, pos = near_loop_site(lay, rng2)
        for _ in range(0 if near else 1000):
            pos = rng.uniform(1300, lay.L - 1300)
            e = lay.edge_of(pos)
            if e[3] != 3 or pos - e[1] < 700 or e[2] - pos < 30:
                continue
            if any(abs(pos - s) < 40 for s in lay.stations):
                continue
            break
        out.append({"target_start": start, "until": start + dur, "stake": round(pos), "idx": idx,
                    "camera": rng.random() < args.camera_share, "vehicles": {}, "stopped_at": {},
                    "state": "pending"})
        if near:
            out[-1]["near_loop"] = lay.station_id(near)
        if args.rubberneck > 0 and rng2.random() < args.rubberneck:
            e = lay.edge_of(pos)
            a = max(e[1] + 20, round(pos) - round(rng2.uniform(250, 500)))
            b = min(e[2] - 20, round(pos) + round(rng2.uniform(100, 300)))
            for st in lay.stations:  # keep a loop off the zone's edges
                a = a - 10 if abs(a - st) < 5 else a
                b = b + 10 if abs(b - st) < 5 else b
            out[-1]["rubber"] = {"from_m": a, "to_m": b if b - pos >= 15 else e[2],
                                 "kmh": round(rng2.uniform(35, 60)), "split": [a] + ([b] if b - pos >= 15 else [])}
    return out


def plan_hazmat(lay: Layout, args, rng: random.Random, warm: int, sim_end: int):
    """Hazmat vehicles (compliant and tunnel violators) and the runtime injections."""
    vehicles, injections = [], []
    x2 = lay.offramps[1][0]
    n = 0

    def add(depart, origin, dest, role):
        nonlocal n
        n += 1
        vehicles.append({"sumo_id": f"hz{n:04d}", "depart": int(depart), "origin": origin, "dest": dest, "role": role})

    # compliant traffic: about args.hazmat_per_h per hour, all leaving before the tunnel
    t = 60.0
    while True:
        t += rng.expovariate(args.hazmat_per_h / 3600.0)
        if t > sim_end - 900:
            break
        o = rng.choices(["src", "T_A", "T_B"], [0.6, 0.25, 0.15])[0]
        dest = rng.choice([lay.offramps[0][0], x2]) if o in ("src", "T_A") else x2
        if o in ("src", "T_A") and rng.random() < 0.7:
            dest = x2
        add(t, o, dest, "normal")
    # tunnel violators: continue to the end, through the forbidden tunnel
    for _ in range(args.hazmat_tunnel):
        add(rng.uniform(warm, sim_end - 1500), rng.choice(["src", "T_A"]), "end", "tunnel")
    # runtime injections on vehicles that are on the mainline at that time
    kinds = (["speeding"] * args.hazmat_speeding + ["stop"] * args.hazmat_stops
             + ["short_speeding", "short_stop", "sa_stop"] * args.hazmat_decoys
             + ["near_sa"] * args.hazmat_near_sa + ["sa_stop"] * args.hazmat_sa_stops)
    span = (sim_end - 1500 - (warm + 300)) / max(1, len(kinds))
    rng.shuffle(kinds)
    for i, k in enumerate(kinds):
        at = int(warm + 300 + i * span + rng.uniform(0, span * 0.5))
        if k == "speeding":
            dur = rng.randint(240, 420)
        elif k == "short_speeding":
            dur = rng.randint(30, 45)
        elif k == "stop":
            dur = rng.randint(420, 720)
        elif k == "short_stop":
            dur = rng.randint(120, 220)
        elif k == "near_sa":
            dur = rng.randint(540, 720)
        else:
            dur = rng.randint(600, 900)
        injections.append({"kind": k, "at": at, "dur": dur, "state": "pending"})
    vehicles.sort(key=lambda v: v["depart"])
    return vehicles, injections


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


def run(args) -> dict:
    import traci.constants as tc  # noqa: E402  (only needed here)

    if args.backend == "libsumo":
        import libsumo as traci  # in-process: no socket round trips
    else:
        import traci

    wall0 = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sd = out / "sumo"
    sd.mkdir(exist_ok=True)
    rng = random.Random(args.seed)
    rng2 = random.Random(f"{args.seed}/issue15")  # draws of the issue-15 options only (old days stay byte-identical)
    lay = Layout(args.length, args.spacing)
    geo = Geo(args.length)
    clock = Clock(args.date, args.start)
    warm = args.warmup_min * 60
    sim_end = warm + int(round(args.hours * 3600))
    sim_end -= sim_end % args.interval

    incidents = plan_incidents(lay, args, rng, warm, sim_end, rng2) if args.kind == "incident" else []
    splits = sorted({x for inc in incidents if "rubber" in inc for x in inc["rubber"]["split"]})
    if splits:
        lay = Layout(args.length, args.spacing, splits)
    net = write_network(lay, sd)
    starts = lane_starts(net)
    loops = write_detectors(lay, starts, args.interval, sd)
    hz_vehicles, hz_inj = plan_hazmat(lay, args, rng, warm, sim_end) if args.kind == "hazmat" else ([], [])
    q_main, ramp_q = write_demand(lay, args, rng, sd, sim_end, hz_vehicles)

    cmd = [
        venv_bin("sumo"), "-n", str(net), "-r", str(sd / "demand.rou.xml"), "-a", str(sd / "det.add.xml"),
        "--begin", "0", "--end", str(sim_end), "--step-length", "1", "--seed", str(args.seed),
        "--time-to-teleport", "-1", "--no-step-log", "true", "--no-warnings", "true",
        "--statistic-output", str(sd / "stats.xml"), "--default.speeddev", "0.1",
        "--collision.action", "warn", "--max-depart-delay", "900",
    ]
    if args.backend == "libsumo":
        traci.start(cmd)
    else:
        traci.start(cmd, label=f"z{os.getpid()}")
    sim = traci
    mainline = {e[0] for e in lay.edges}
    pos_rows = []  # (t, vehicle, class, lat, lon, speed, heading)
    plate = {}
    counters = {"truck": 0, "hazmat": 0}

    def plate_of(vid: str) -> str:
        if vid not in plate:
            cls = "hazmat" if vid.startswith("hz") else "truck"
            counters[cls] += 1
            plate[vid] = (f"HZ{counters[cls]:04d}" if cls == "hazmat" else f"TK{counters[cls]:05d}")
        return plate[vid]

    hz_track = {}  # sumo id -> list of (t, x, speed, road)
    hz_roles = {v["sumo_id"]: v["role"] for v in hz_vehicles}
    warnings = []
    injected_log = []
    hz_vars = [tc.VAR_POSITION, tc.VAR_SPEED, tc.VAR_ROAD_ID, tc.VAR_ANGLE]
    restore_lc = []  # (time, vehicle)
    restore_speed = []  # (time, vehicle)
    lateral_of = {}  # hazmat vehicle -> where it parks when stopped ("lane", "shoulder", "parking")
    sa_lo, sa_hi = sa_zone(lay, args)

    t = 0
    step_wall = 0.0
    while t < sim_end:
        w = time.perf_counter()
        sim.simulationStep()
        step_wall += time.perf_counter() - w
        t = int(round(sim.simulation.getTime()))
        if args.kind == "hazmat":
            for vid in sim.simulation.getDepartedIDList():
                if vid.startswith("hz"):
                    sim.vehicle.subscribe(vid, hz_vars)
            for vid, r in sim.vehicle.getAllSubscriptionResults().items():
                x, y = r[tc.VAR_POSITION]
                hz_track.setdefault(vid, []).append((t, x, r[tc.VAR_SPEED], r[tc.VAR_ROAD_ID]))
        # --- incidents
        for inc in incidents:
            if inc["state"] == "pending" and t >= inc["target_start"]:
                inc["state"] = "arming"
            if inc["state"] == "arming":
                for k in inc["idx"]:
                    if k in inc["vehicles"]:
                        continue
                    lid, _, eid = main_lane(lay, inc["stake"], k)
                    x0 = starts[lid][0]
                    target = inc["stake"] - x0
                    best = None
                    for vid in sim.lane.getLastStepVehicleIDs(lid):
                        if not vid.startswith("c_"):
                            continue
                        lp = sim.vehicle.getLanePosition(vid)
                        if target - 600 <= lp <= target - 200:
                            if best is None or lp > best[1]:
                                best = (vid, lp)
                    if best is None:
                        continue
                    vid = best[0]
                    try:
                        sim.vehicle.setLaneChangeMode(vid, 0)
                        sim.vehicle.setStop(vid, eid, pos=target, laneIndex=k, duration=0.0, until=float(inc["until"]))
                        inc["vehicles"][k] = vid
                    except traci.TraCIException as e:  # cannot brake in time etc.
                        sim.vehicle.setLaneChangeMode(vid, 1621)
                        warnings.append(f"incident stop refused for {vid}: {e}")
                if len(inc["vehicles"]) == len(inc["idx"]):
                    inc["state"] = "armed"
                elif t - inc["target_start"] > 600:
                    inc["state"] = "failed"
                    warnings.append(f"incident at {inc['stake']} could not find blocking vehicles")
            if inc["state"] in ("arming", "armed"):
                for k, vid in inc["vehicles"].items():
                    if k not in inc["stopped_at"]:
                        try:
                            if sim.vehicle.isStopped(vid):
                                inc["stopped_at"][k] = t
                        except traci.TraCIException:
                            pass
                if inc["state"] == "armed" and len(inc["stopped_at"]) == len(inc["idx"]):
                    inc["state"] = "active"
            if inc["state"] == "active" and t >= inc["until"] and not any(still_stopped(sim, v) for v in inc["vehicles"].values()):
                inc["state"] = "done"
                inc["ended_at"] = t
                for vid in inc["vehicles"].values():
                    restore_lc.append((t + 60, vid))
            if inc.get("near_loop") and inc["state"] in ("armed", "active") and inc["stopped_at"] and t % 5 == 0:
                # the vehicles that reach the block in its lane within 60 m stay trapped behind it (no lane
                # change) until it clears: a standing queue over the loop while the other lanes move
                for k in inc["idx"]:
                    lid, _, _ = main_lane(lay, inc["stake"], k)
                    target = inc["stake"] - starts[lid][0]
                    for vid in sim.lane.getLastStepVehicleIDs(lid):
                        if vid in inc["vehicles"].values() or vid in inc.setdefault("trapped", []):
                            continue
                        if target - 60 <= sim.vehicle.getLanePosition(vid) < target:
                            sim.vehicle.setLaneChangeMode(vid, 0)
                            inc["trapped"].append(vid)
            if inc["state"] == "done" and inc.get("trapped") and "trap_freed" not in inc:
                inc["trap_freed"] = t
                for vid in inc["trapped"]:
                    restore_lc.append((t + 60, vid))
            rub = inc.get("rubber")
            if rub and not rub.get("on") and inc["stopped_at"] and inc["state"] != "done":
                # rubbernecking: every lane of the carriageway slows around the site while it is blocked
                rub["on"], rub["start"] = True, t
                rub["edges"] = [e[0] for e in lay.edges if e[1] >= rub["from_m"] - 1 and e[2] <= rub["to_m"] + 1]
                for eid in rub["edges"]:
                    sim.edge.setMaxSpeed(eid, rub["kmh"] / 3.6)
            if rub and rub.get("on") and inc["state"] == "done" and "end" not in rub:
                rub["end"] = t
                for eid in rub["edges"]:
                    sim.edge.setMaxSpeed(eid, MAIN_SPEED)
        # --- hazmat injections
        for inj in hz_inj:
            if inj["state"] != "pending" or t < inj["at"]:
                continue
            if t - inj["at"] > 1200:
                inj["state"] = "failed"
                warnings.append(f"hazmat injection {inj['kind']} at {inj['at']} found no vehicle")
                continue
            cands = []
            for vid, trk in hz_track.items():
                if hz_roles.get(vid) != "normal" or vid in injected_log_ids(injected_log):
                    continue
                tt, x, sp, road = trk[-1]
                if tt != t or road not in mainline or sp < 15:
                    continue
                route = sim.vehicle.getRoute(vid)
                exit_x = lay.L if route[-1] in mainline else next(s for rid, s in lay.offramps if route[-1] == f"{rid}_off")
                cands.append((vid, x, exit_x, route))
            rng.shuffle(cands)
            for vid, x, exit_x, route in cands:
                if inj["kind"] in ("speeding", "short_speeding"):
                    if exit_x - x < inj["dur"] * HAZMAT_FAST + 500:
                        continue
                    sim.vehicle.setMaxSpeed(vid, HAZMAT_FAST)
                    sim.vehicle.setSpeedFactor(vid, 1.0)
                    # a speeding driver overtakes: no keep-right, eager speed-gain changes
                    sim.vehicle.setParameter(vid, "laneChangeModel.lcKeepRight", "0")
                    sim.vehicle.setParameter(vid, "laneChangeModel.lcSpeedGain", "10")
                    restore_speed.append((t + inj["dur"], vid))
                else:
                    # a stop on a 3-lane mainline stretch at least 400 m ahead, on its route
                    choices = []
                    if inj["kind"] == "near_sa" and "target" not in inj:
                        # near but not inside the service area: 60-250 m past its extent (mostly) or before it
                        past = rng2.random() < 0.7
                        inj["target"] = round(sa_hi + rng2.uniform(60, 250)) if past else round(sa_lo - rng2.uniform(60, 250))
                        inj["lateral"] = rng2.choice(["lane", "shoulder"])
                    if inj["kind"] == "sa_stop" and args.sa_extent and "lateral" not in inj:
                        inj["lateral"] = rng2.choice(["lane", "parking"])
                    for s in range(int(x) + 400, int(exit_x) - 300, 50):
                        if inj["kind"] == "near_sa":
                            s = inj["target"]
                            if not x + 400 <= s <= exit_x - 300:
                                break
                        near_sa = abs(s - lay.service_area[2]) <= 250
                        if inj["kind"] == "near_sa":
                            ok = True
                        elif inj["kind"] == "sa_stop" and args.sa_extent:
                            ok = sa_lo + 20 <= s <= sa_hi - 20
                        elif inj["kind"] == "sa_stop":
                            ok = near_sa
                        else:
                            ok = abs(s - lay.service_area[2]) > 1000 and not (lay.tunnel[1] - 100 <= s <= lay.tunnel[2] + 100)
                        if ok and lay.is_narrow(s, 60) and lay.edge_of(s)[0] in route:
                            choices.append(s)
                        if inj["kind"] == "near_sa":
                            break
                    if not choices:
                        continue
                    s = rng.choice(choices[: max(1, len(choices) // 2)])
                    lid, k, eid = main_lane(lay, s, 0)
                    try:
                        sim.vehicle.setStop(vid, eid, pos=s - starts[lid][0], laneIndex=k,
                                            duration=float(inj["dur"]), flags=1)
                    except traci.TraCIException as e:
                        warnings.append(f"hazmat stop refused for {vid}: {e}")
                        continue
                    inj["stake"] = s
                    if "lateral" in inj:
                        lateral_of[vid] = inj["lateral"]
                inj["state"] = "done"
                inj["vehicle"] = vid
                injected_log.append(inj)
                break
        for lst, fn in ((restore_lc, lambda v: sim.vehicle.setLaneChangeMode(v, 1621)),
                        (restore_speed, lambda v: sim.vehicle.setMaxSpeed(v, HAZMAT_SPEED))):
            for item in [x for x in lst if x[0] <= t]:
                lst.remove(item)
                try:
                    fn(item[1])
                except traci.TraCIException:
                    pass
        # --- truck positions every 30 s
        if t % args.pos_interval == 0 and t >= warm:
            for vid in sim.vehicle.getIDList():
                if vid.startswith("tk_") or vid.startswith("hz"):
                    if args.pos_share < 1.0 and vid.startswith("tk_") and (hash_unit(vid, args.seed) > args.pos_share):
                        continue
                    x, y = sim.vehicle.getPosition(vid)
                    if vid in lateral_of and sim.vehicle.isStopped(vid):
                        # SUMO draws a parked vehicle beside its lane (about 3 m out); put it where it stands:
                        # in the outer lane (its centre), on the 3-m hard shoulder (centre 1.5 m beyond the
                        # outer lane's edge) or in the service area's car park, 35 m beyond the lanes
                        y = {"lane": -(LANES - 0.5) * LANE_W, "shoulder": -LANES * LANE_W - 1.5,
                             "parking": -LANES * LANE_W - 35.0}[lateral_of[vid]]
                    sp = sim.vehicle.getSpeed(vid)
                    ang = sim.vehicle.getAngle(vid)
                    lon, lat = geo.sumo_to_lonlat(x, y)
                    hd = (geo.bearing(x) + ang - 90.0) % 360.0
                    if args.gps_noise > 0:
                        lon += rng.gauss(0, args.gps_noise) / (M_PER_DEG * math.cos(math.radians(lat)))
                        lat += rng.gauss(0, args.gps_noise) / M_PER_DEG
                    pos_rows.append((t, plate_of(vid), "hazmat" if vid.startswith("hz") else "truck",
                                     lat, lon, sp * 3.6, hd))
    traci.close()
    wall_sim = time.time() - wall0

    # ------------------------------------------------------------------ OBS
    obs = []
    for it in ET.parse(sd / "loops.xml").getroot().iter("interval"):
        end = float(it.get("end"))
        if end <= warm:
            continue
        station, lane = loops[it.get("id")]
        vol = int(it.get("nVehContrib"))
        sp = float(it.get("speed"))
        occ = float(it.get("occupancy"))
        obs.append((end, int(station[1:5]) * 100, lane, station, vol, sp, occ))
    obs.sort()
    with open(out / "OBS.csv", "w", newline="\n") as f:
        f.write("time,detector,lane,interval_s,volume,speed_kmh,occupancy_pct\n")
        for end, _, lane, station, vol, sp, occ in obs:
            spd = f"{sp * 3.6:.1f}" if vol > 0 and sp >= 0 else ""
            f.write(f"{clock.iso(end)},{station},{lane},{args.interval},{vol},{spd},{min(occ, 100.0):.1f}\n")

    # ------------------------------------------------------------------ POS
    with open(out / "POS.csv", "w", newline="\n") as f:
        f.write("time,vehicle,class,lat,lon,speed_kmh,heading_deg\n")
        for t_, v, cls, lat, lon, sp, hd in pos_rows:
            f.write(f"{clock.iso(t_)},{v},{cls},{lat:.6f},{lon:.6f},{sp:.0f},{hd:.0f}\n")

    # ------------------------------------------------------------------ TRUTH + CAM
    truth = []
    cam = []
    for inc in incidents:
        if inc["state"] not in ("done", "active") or not inc["stopped_at"]:
            if inc["state"] != "failed":
                warnings.append(f"incident at {inc['stake']} never fully blocked (state {inc['state']})")
            if not inc["stopped_at"]:
                continue
        start = min(inc["stopped_at"].values())
        end = inc.get("ended_at", inc["until"])
        lanes = sorted(LANES - k for k in inc["stopped_at"])
        rec = {"kind": "incident", "direction": "up", "stake_m": inc["stake"], "lanes": lanes,
               "lanes_blocked": len(lanes), "start": clock.iso(start), "end": clock.iso(end),
               "duration_s": end - start, "demand": args.demand, "camera": inc["camera"]}
        if inc.get("near_loop"):
            rec["near_loop"] = inc["near_loop"]  # the block stands 1-40 m past this station's loops
            rec["trapped_vehicles"] = len(inc.get("trapped", []))
        rub = inc.get("rubber")
        if rub and rub.get("on"):
            rec["rubberneck"] = {"from_m": rub["from_m"], "to_m": rub["to_m"], "kmh": rub["kmh"],
                                 "start": clock.iso(rub["start"]), "end": clock.iso(rub.get("end", sim_end))}
        rec.update(queue_stats(obs, lay, inc["stake"], start, end, args.interval))
        truth.append((start, rec))
        if inc["camera"]:
            ct = start + rng.randint(60, 120)
            cam.append((ct, f"{clock.iso(ct)},CU{int(inc['stake']) // 1000:03d},stopped_vehicle,up,{inc['stake']},{lanes[0]},0.8"))
    if args.kind == "hazmat":
        inj_by_vid = {i["vehicle"]: i for i in injected_log}
        for vid, trk in hz_track.items():
            for rec in hazmat_truth(vid, trk, lay, mainline, (sa_lo, sa_hi)):
                st = rec.pop("_start")
                role = hz_roles.get(vid)
                inj = inj_by_vid.get(vid)
                rec["injected"] = (role == "tunnel" and rec["kind"] == "hazmat_restricted_zone") or (
                    inj is not None and ((inj["kind"] == "speeding" and rec["kind"] == "hazmat_speeding")
                                         or (inj["kind"] in ("stop", "near_sa") and rec["kind"] == "hazmat_stopped")))
                if inj is not None and inj["kind"] == "near_sa" and rec["kind"] == "hazmat_stopped":
                    rec["near_service_area"] = True
                    rec["lateral"] = inj["lateral"]
                rec["vehicle"] = plate_of(vid)
                rec["start"] = clock.iso(st)
                rec["end"] = clock.iso(rec.pop("_end"))
                if st >= warm:
                    truth.append((st, rec))
    truth.sort(key=lambda x: x[0])
    with open(out / "TRUTH.jsonl", "w") as f:
        for _, rec in truth:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    cam.sort()
    with open(out / "CAM.csv", "w") as f:
        f.write("time,camera,kind,direction,stake_m,lane,confidence\n")
        for _, line in cam:
            f.write(line + "\n")

    # ------------------------------------------------------------------ ROAD
    (out / "ROAD.toml").write_text(road_toml(lay, geo, args))

    stats = {}
    try:
        root = ET.parse(sd / "stats.xml").getroot()
        for tag in ("vehicles", "teleports", "vehicleTripStatistics"):
            el = root.find(tag)
            if el is not None:
                stats[tag] = dict(el.attrib)
    except (ET.ParseError, FileNotFoundError):
        pass
    hz_decoys = [{k: v for k, v in i.items() if k != "state"} | {"state": i["state"]} for i in hz_inj]
    for i in hz_decoys:
        if "vehicle" in i:
            i["vehicle"] = plate.get(i["vehicle"], i["vehicle"])
    meta = {
        "kind": args.kind, "seed": args.seed, "demand": args.demand, "length_m": args.length,
        "spacing_m": args.spacing, "interval_s": args.interval, "stations": len(lay.stations),
        "hours_of_data": (sim_end - warm) / 3600.0, "data_start": clock.iso(warm), "data_end": clock.iso(sim_end),
        "mainline_peak_veh_h": round(q_main), "ramp_peak_veh_h": {k: round(v) for k, v in ramp_q.items()},
        "truck_share": args.truck_share, "incidents_planned": len(incidents),
        "incidents_in_truth": sum(1 for _, r in truth if r["kind"] == "incident"),
        "hazmat_injections": hz_decoys, "warnings": warnings, "sumo_stats": stats,
        "rows": {"OBS": len(obs), "POS": len(pos_rows), "CAM": len(cam), "TRUTH": len(truth)},
        "versions": versions(), "wall_s": round(time.time() - wall0, 1), "wall_sim_s": round(wall_sim, 1),
        "wall_sumo_step_s": round(step_wall, 1),
        "command": " ".join(sys.argv),
    }
    (out / "SCENARIO.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    if not args.keep_sumo:
        shutil.rmtree(sd)
    return meta


def still_stopped(sim, vid) -> bool:
    try:
        return bool(sim.vehicle.isStopped(vid))
    except Exception:  # noqa: BLE001  (vehicle has left)
        return False


def injected_log_ids(log):
    return {i["vehicle"] for i in log}


def hash_unit(s: str, seed: int) -> float:
    import hashlib
    h = hashlib.sha1(f"{seed}:{s}".encode()).digest()
    return int.from_bytes(h[:4], "big") / 2**32


def queue_stats(obs, lay: Layout, stake, start, end, interval):
    """Lowest station-mean speed and largest occupancy at the station just upstream during the incident."""
    up = [s for s in lay.stations if s < stake]
    if not up:
        return {}
    sid = lay.station_id(up[-1])
    speeds, occs = {}, {}
    for t_end, _, lane, station, vol, sp, occ in obs:
        if station != sid or t_end <= start or t_end > end + interval:
            continue
        occs.setdefault(t_end, []).append(occ)
        if vol > 0 and sp >= 0:
            speeds.setdefault(t_end, []).append(sp * 3.6)
    ms = min((sum(v) / len(v) for v in speeds.values()), default=None)
    mo = max((sum(v) / len(v) for v in occs.values()), default=None)
    return {"upstream_station": sid, "upstream_min_speed_kmh": None if ms is None else round(ms, 1),
            "upstream_max_occupancy_pct": None if mo is None else round(mo, 1),
            "queue_formed": ms is not None and ms < 60.0}


def sa_zone(lay: Layout, args):
    """Where a hazmat truck may stop: the service area's extent (--sa-extent: 350 m before its stake to 200 m
    past it), else its stake ± --sa-allowed-m (500 m by default, as before; the road book's stake alone means ±250)."""
    sa = lay.service_area[2]
    if args.sa_extent:
        return sa - 350, sa + 200
    return sa - args.sa_allowed_m, sa + args.sa_allowed_m


def hazmat_truth(vid, trk, lay: Layout, mainline, sa_allowed):
    """Violations by rule, from the 1-Hz SUMO trajectory."""
    recs = []
    on_main = []
    last = False
    for t, x, sp, road in trk:
        if road.startswith(":"):
            m = last
        else:
            m = road in mainline
        on_main.append(m)
        last = m
    sa = lay.service_area[2]
    # speeding: above the limit for more than SPEEDING_S; dips of up to SPEED_DIP_S do not break a run
    run0 = None
    last_fast = None
    for (t, x, sp, road), m in zip(trk + [(trk[-1][0] + SPEED_DIP_S + 2, 0, 0, "")], on_main + [False]):
        fast = m and sp * 3.6 > HAZMAT_LIMIT_KMH
        if fast:
            if run0 is None:
                run0 = (t, x)
            last_fast = t
            continue
        if run0 is not None and t - last_fast > SPEED_DIP_S:
            t = last_fast + 1
            if t - run0[0] > SPEEDING_S:
                st = run0[0] + SPEEDING_S
                x_at = next((xx for tt, xx, _, _ in trk if tt >= st), run0[1])
                recs.append({"kind": "hazmat_speeding", "direction": "up", "stake_m": round(x_at),
                             "_start": st, "_end": t})
            run0 = None
    # stopped
    st0 = None
    for (t, x, sp, road), m in zip(trk + [(trk[-1][0] + 1, -1e9, 99, "")], on_main + [False]):
        stopped = m and sp * 3.6 < STOP_KMH and not (sa_allowed[0] <= x <= sa_allowed[1])
        if stopped and (st0 is None or abs(x - st0[1]) > STOP_RADIUS_M):
            if st0 is not None and t - st0[0] >= STOPPED_S:
                recs.append({"kind": "hazmat_stopped", "direction": "up", "stake_m": round(st0[1]),
                             "_start": st0[0] + STOPPED_S, "_end": t})
            st0 = (t, x)
        elif not stopped and st0 is not None:
            if t - st0[0] >= STOPPED_S:
                recs.append({"kind": "hazmat_stopped", "direction": "up", "stake_m": round(st0[1]),
                             "_start": st0[0] + STOPPED_S, "_end": t})
            st0 = None
    # restricted zone
    _, a, b = lay.tunnel
    z0 = None
    for (t, x, sp, road), m in zip(trk + [(trk[-1][0] + 1, -1e9, 0, "")], on_main + [False]):
        inside = m and a <= x <= b
        if inside and z0 is None:
            z0 = (t, x)
        if not inside and z0 is not None:
            recs.append({"kind": "hazmat_restricted_zone", "direction": "up", "stake_m": a, "tunnel": "TN1",
                         "_start": z0[0], "_end": t})
            z0 = None
    return recs


def road_toml(lay: Layout, geo: Geo, args) -> str:
    L = []
    L.append(f"# Generated by scenarios/sumo_suite.py ({args.kind}, seed {args.seed}, demand {args.demand}): "
             f"{len(lay.stations)} stations, 3 lanes, {lay.spacing} m spacing, SUMO one carriageway (up).")
    L.append("[road]")
    L.append(f'id = "SUMO-{args.kind}-{args.seed}"')
    L.append('name = "仿真高速(SUMO)"')
    L.append('tz = "+08:00"')
    L.append('directions = ["up"]')
    L.append(f"geometry = {geo.toml()}")
    L.append("lanes = 3")
    L.append("speed_limit_kmh = 120")
    for s in lay.stations:
        L += ["", "[[detector]]", f'id = "{lay.station_id(s)}"', 'direction = "up"', f"stake_m = {s}", "lanes = 3"]
    # VSL gantries 500 m upstream of each interchange and every 4 km; VMS 2 km upstream of interchanges
    vsl = sorted({s - 500 for _, _, s in lay.onramps} | set(range(2000, lay.L, 4000)))
    for s in vsl:
        L += ["", "[[vsl]]", f'id = "S{s // 100:04d}U"', 'direction = "up"', f"stake_m = {s}"]
    for _, _, s in lay.onramps:
        m = s - 2000 if s >= 2500 else (s // 200) * 100  # 2 km upstream, or halfway on a short approach
        L += ["", "[[vms]]", f'id = "M{m // 100:04d}U"', 'direction = "up"', f"stake_m = {m}"]
    for rid, name, s in lay.onramps:
        L += ["", "[[interchange]]", f'id = "{rid}"', f'name = "{name}"', f"stake_m = {s}", 'directions = ["up"]']
    # zhilu extension: the off-ramps (the contract's interchanges are entries)
    for xid, s in lay.offramps:
        L += ["", "[[exit]]", f'id = "{xid}"', f"stake_m = {s}", 'directions = ["up"]']
    tid, a, b = lay.tunnel
    L += ["", "[[tunnel]]", f'id = "{tid}"', f"from_m = {a}", f"to_m = {b}", 'hazmat = "forbidden"']
    sid, name, s = lay.service_area
    L += ["", "[[service_area]]", f'id = "{sid}"', f'name = "{name}"', f"stake_m = {s}", "chargers = 8"]
    if args.sa_extent:  # zhilu extension (issue 15): the service area's extent, per direction
        lo, hi = sa_zone(lay, args)
        L += [f"from_m = {lo}", f"to_m = {hi}", 'directions = ["up"]']
    return "\n".join(L) + "\n"


def versions():
    v = {"python": sys.version.split()[0]}
    try:
        from importlib.metadata import version
        for p in ("eclipse-sumo", "traci", "sumolib", "libsumo"):
            v[p] = version(p)
    except Exception:  # noqa: BLE001
        pass
    return v


def default_backend() -> str:
    try:
        import libsumo  # noqa: F401
        return "libsumo"
    except ImportError:
        return "traci"


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", choices=["incident", "bottleneck", "quiet", "hazmat"], required=True)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--demand", choices=sorted(LEVELS), default="medium", help="demand level (not used by bottleneck)")
    p.add_argument("--length", type=int, default=16000, help="mainline length (m), 12000-20000 recommended")
    p.add_argument("--spacing", type=int, choices=[500, 1000, 2000], default=1000, help="detector station spacing (m)")
    p.add_argument("--interval", type=int, choices=[20, 30, 60], default=30, help="loop aggregation interval (s)")
    p.add_argument("--loops-only", action="store_true",
                   help="no truck positions and no camera events (POS.csv and CAM.csv hold only their header)")
    p.add_argument("--hours", type=float, default=2.5, help="hours of data written (after the warm-up)")
    p.add_argument("--warmup-min", type=int, default=15, help="simulated minutes before data starts")
    p.add_argument("--date", default="2026-11-23")
    p.add_argument("--start", default="06:00", help="local (+08:00) clock time of simulation start")
    p.add_argument("--incidents", type=int, default=1, help="incidents per run (kind incident)")
    p.add_argument("--lanes-blocked", choices=["1", "2", "mixed"], default="mixed")
    p.add_argument("--min-incident-min", type=int, default=10)
    p.add_argument("--max-incident-min", type=int, default=30)
    p.add_argument("--camera-share", type=float, default=0.5, help="share of incidents with a camera stopped_vehicle event")
    p.add_argument("--rubberneck", type=float, default=0.0,
                   help="share of incidents with rubbernecking: every lane slowed to 35-60 km/h from 250-500 m "
                        "before the site to 100-300 m past it while the lanes are blocked")
    p.add_argument("--block-near-loop", type=float, default=0.0,
                   help="share of incidents placed 1-4 m or 15-40 m downstream of a station, with the vehicles "
                        "reaching the block in its lane within 60 m trapped behind it, so the blocked lane stands "
                        "still over the loop")
    p.add_argument("--bottleneck-main", type=float, default=0.95, help="bottleneck: mainline peak as share of 5400 veh/h")
    p.add_argument("--bottleneck-ramp", type=float, default=1800, help="bottleneck: peak veh/h on the middle on-ramp")
    p.add_argument("--ramp-assertive", type=float, default=5.0, help="lcAssertive of drivers entering from on-ramps")
    p.add_argument("--truck-share", type=float, default=0.12)
    p.add_argument("--pos-interval", type=int, default=30, help="seconds between truck position reports")
    p.add_argument("--pos-share", type=float, default=1.0, help="share of ordinary trucks reporting positions")
    p.add_argument("--gps-noise", type=float, default=1.5, help="GPS noise, sd in metres")
    p.add_argument("--hazmat-per-h", type=float, default=14, help="compliant hazmat trucks per hour")
    p.add_argument("--hazmat-speeding", type=int, default=2)
    p.add_argument("--hazmat-stops", type=int, default=2)
    p.add_argument("--hazmat-tunnel", type=int, default=2)
    p.add_argument("--hazmat-decoys", type=int, default=1, help="sets of (short speeding, short stop, service-area stop)")
    p.add_argument("--hazmat-near-sa", type=int, default=0,
                   help="9-12-min stops near but outside the service area (60-250 m past its extent, or before "
                        "it), in the outer lane or on the shoulder: violations")
    p.add_argument("--hazmat-sa-stops", type=int, default=0, help="more legitimate 10-15-min stops inside the service area")
    p.add_argument("--sa-extent", action="store_true",
                   help="write the service area's extent (from_m, to_m, directions; a zhilu extension) into "
                        "ROAD.toml; hazmat truth then allows stops inside it only")
    p.add_argument("--sa-allowed-m", type=float, default=SERVICE_AREA_M,
                   help="without --sa-extent: stops within this distance of the service area's stake are allowed "
                        "in the truth (default 500; 250 = what the stake alone means in the road book)")
    p.add_argument("--backend", choices=["libsumo", "traci"], default=default_backend(),
                   help="libsumo (in-process, faster; default when installed) or traci (socket)")
    p.add_argument("--no-keep-sumo", dest="keep_sumo", action="store_false", help="delete the SUMO files afterwards")
    a = p.parse_args(argv)
    if a.loops_only:
        a.pos_share, a.camera_share = 0.0, 0.0
    return a


def main(argv=None):
    args = parse(argv)
    meta = run(args)
    print(json.dumps({k: meta[k] for k in ("kind", "seed", "demand", "stations", "rows", "incidents_in_truth",
                                             "wall_s", "warnings")}, ensure_ascii=False))


if __name__ == "__main__":
    main()
