#!/usr/bin/env python3
"""Post-processors for issue 15: turn a generated SUMO day into further classes.

Each command reads a day folder made by sumo_suite.py (ROAD.toml, OBS.csv,
POS.csv, CAM.csv, TRUTH.jsonl, SCENARIO.json) and writes a NEW day folder
(the source is never changed) with the class added and TRUTH.jsonl extended.
Standard library only; deterministic for a given --seed.

  inject.py faults SRC DST --seed S [--lanes 4] [--stations 3]
      detector faults injected into the SUMO traffic of OBS.csv.
      Single-lane: zero (volume 0, no speed, occupancy 0), stuck (the lane's
      last reading repeated), locked_on (occupancy 100 %, volume 0), silent
      (rows missing). Whole-station: zero (every lane zero while the stations
      around flow), stuck (every lane frozen at its last reading), silent.
      TRUTH: {"kind": "detector_fault", "detector", "lanes", "scope": "lane" |
      "station", "fault", "start", "end"}: start = the time of the first
      faulty row (the first moment the data shows it), end = the time of the
      first healthy row after it.

  inject.py fog SRC DST --seed S [--banks sudden,slow,patchy]
      WEATHER.csv with one row per station a minute (aligned with the OBS
      times), from the road book's [[weather]] stations (five are added, with
      fog lights and de-icers, when it has none). Banks:
        sudden  clear to < 50 m within one minute at one station (and a lagged,
                thinner bank at a neighbour), 10-25 min, then thins slowly
                (20-40 min);
        slow    two neighbouring stations thicken over 15-30 min to 60-150 m,
                hold 10-20 min, thin over 20-40 min;
        patchy  one station only: 2-3 dips of 3-8 min to 80-180 m, the
                neighbours clear.
      --async: each station reports at its own second of the minute (1-59 s
      past the detectors' minute), so readings fall between ticks.
      TRUTH: the WEATHER rows are the truth (score15.py reads them); one
      {"kind": "fog", "station", "stake_m", "start", "end",
      "min_visibility_m", "shape"} line per station and bank (< 500 m) is
      added for reading.

  inject.py ice SRC DST --seed S --pattern bridge|dry
      WEATHER.csv for a night (use a SUMO day started at night):
        bridge  every station's moist surface stays at 4-6 C, then falls fast
                (clear-sky cooling, time constant 25-60 min: up to 3-4 C/h)
                and levels off: only the bridge station (W03) towards
                -1..-2.5 C and freezes; the others come close (1.2-3 C) and
                do not freeze;
        dry     the air drops to -3..-1 C and one station's surface to
                -0.6..-0.2 C, but the surface is dry (RH 55-75 %): no ice.
      TRUTH: {"kind": "ice", "station", "stake_m", "start", "end",
      "min_surface_c"} per frozen interval: surface <= 0 C with moisture
      (surface_state moist, wet, ice or snow); spells < 5 min apart merge.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import shutil
import sys
import tomllib
from datetime import datetime, timedelta
from pathlib import Path

COPY = ("ROAD.toml", "OBS.csv", "POS.csv", "CAM.csv", "TRUTH.jsonl", "SCENARIO.json")
WEATHER_HEADER = "time,station,visibility_m,surface_temp_c,air_temp_c,humidity_pct,surface_state\n"
MOIST = ("moist", "wet", "ice", "snow")


def ts(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


def copy_day(src: Path, dst: Path):
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for f in COPY:
        if (src / f).exists():
            shutil.copy2(src / f, dst / f)


def read_truth(d: Path):
    p = d / "TRUTH.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()] if p.exists() else []


def write_truth(d: Path, recs):
    recs = sorted(recs, key=lambda r: ts(r["start"]))
    with open(d / "TRUTH.jsonl", "w") as f:
        for r in recs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def update_meta(d: Path, src: Path, step: dict, class15: str):
    p = d / "SCENARIO.json"
    meta = json.loads(p.read_text()) if p.exists() else {}
    meta.setdefault("derived", []).append({"from": src.name, **step})
    meta["class15"] = class15
    p.write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")


def obs_times(d: Path):
    """Sorted distinct OBS times (strings, as written), and the interval."""
    times, interval = [], None
    with open(d / "OBS.csv", newline="") as f:
        r = csv.reader(f)
        next(r)
        last = None
        for row in r:
            if row[0] != last:
                times.append(row[0])
                last = row[0]
            if interval is None:
                interval = int(row[3])
    return times, interval


# ---------------------------------------------------------------------------
# Detector faults
# ---------------------------------------------------------------------------


def faults(a):
    src, dst = Path(a.src), Path(a.dst)
    rng = random.Random(f"faults/{a.seed}")
    road = tomllib.loads((src / "ROAD.toml").read_text())
    dets = sorted(road["detector"], key=lambda d: d["stake_m"])
    ids = [d["id"] for d in dets]
    lanes_of = {d["id"]: d.get("lanes", road["road"].get("lanes", 3)) for d in dets}
    with open(src / "OBS.csv", newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    times, interval = obs_times(src)
    tidx = {t: i for i, t in enumerate(times)}
    kinds = ([("lane", k) for k in ("zero", "stuck", "locked_on", "silent")] * 9)[: a.lanes]
    kinds += ([("station", k) for k in ("zero", "stuck", "silent")] * 9)[: a.stations]
    rng.shuffle(kinds)
    n_t = len(times)
    per_step = interval
    plan = []  # (scope, fault, detector, lanes, i0, i1)  rows i0..i1-1 faulty
    for scope, fault in kinds:
        for _ in range(2000):
            dur = rng.randint(a.min_min * 60, a.max_min * 60) // per_step
            i0 = rng.randint(600 // per_step, n_t - dur - 300 // per_step)
            i1 = i0 + dur
            k = rng.randrange(1, len(ids) - 1)  # interior stations only: both neighbours exist
            det = ids[k]
            margin = 600 // per_step
            clash = any(abs(ids.index(p[2]) - k) <= 1 and not (i1 + margin <= p[4] or p[5] + margin <= i0) for p in plan)
            if clash:
                continue
            lanes = list(range(1, lanes_of[det] + 1)) if scope == "station" else [rng.randint(1, lanes_of[det])]
            plan.append((scope, fault, det, lanes, i0, i1))
            break
        else:
            sys.exit(f"inject faults: no room for a {scope} {fault} fault")
    # last reading before the fault, per faulty lane, for stuck faults (a non-zero reading)
    by_key = {}
    for i, row in enumerate(rows):
        by_key[(row[0], row[1], int(row[2]))] = i
    drop = set()
    truth = read_truth(src)
    for scope, fault, det, lanes, i0, i1 in plan:
        for ln in lanes:
            frozen = None
            if fault == "stuck":
                for j in range(i0 - 1, -1, -1):
                    r = rows[by_key[(times[j], det, ln)]]
                    if int(r[4]) > 0:
                        frozen = r[4:7]
                        break
            for i in range(i0, i1):
                ri = by_key.get((times[i], det, ln))
                if ri is None:
                    continue
                if fault == "silent":
                    drop.add(ri)
                elif fault == "zero":
                    rows[ri][4:7] = ["0", "", "0.0"]
                elif fault == "locked_on":
                    rows[ri][4:7] = ["0", "", "100.0"]
                elif fault == "stuck":
                    rows[ri][4:7] = list(frozen)
        truth.append({"kind": "detector_fault", "detector": det, "lanes": lanes, "scope": scope, "fault": fault,
                      "start": times[i0], "end": times[i1] if i1 < n_t else times[-1],
                      "duration_s": (i1 - i0) * interval})
    copy_day(src, dst)
    with open(dst / "OBS.csv", "w", newline="\n") as f:
        f.write(",".join(header) + "\n")
        for i, r in enumerate(rows):
            if i not in drop:
                f.write(",".join(r) + "\n")
    write_truth(dst, truth)
    update_meta(dst, src, {"step": "faults", "seed": a.seed, "faults": len(plan)}, a.class15 or "faults")
    print(f"{dst.name}: {len(plan)} faults")


# ---------------------------------------------------------------------------
# Weather: stations, fog, ice
# ---------------------------------------------------------------------------


def weather_stations(dst: Path):
    """The road book's weather stations; adds five (W03 on a bridge), fog lights and de-icers when it has none."""
    text = (dst / "ROAD.toml").read_text()
    road = tomllib.loads(text)
    if road.get("weather"):
        return [(w["id"], float(w["stake_m"])) for w in road["weather"]]
    L = road["road"]["geometry"][-1][0]
    f = L / 16000.0

    def r(v):
        return int(round(v * f / 10.0)) * 10

    ws = [("W01", r(2200)), ("W02", r(5800)), ("W03", r(8400)), ("W04", r(11000)), ("W05", r(14500))]
    add = ["", "# issue 15: road weather stations (W03 stands on a bridge), fog lights, de-icers"]
    for wid, s in ws:
        add += ["", "[[weather]]", f'id = "{wid}"', f"stake_m = {s}"]
    add += ["", "[[fog_lights]]", 'id = "L1"', f"from_m = {r(4000)}", f"to_m = {r(9000)}"]
    add += ["", "[[deicer]]", 'id = "I1"', f"from_m = {r(8200)}", f"to_m = {r(8600)}"]
    add += ["", "[[deicer]]", 'id = "I2"', f"from_m = {r(10700)}", f"to_m = {r(11300)}"]
    (dst / "ROAD.toml").write_text(text.rstrip("\n") + "\n" + "\n".join(add) + "\n")
    return [(w, float(s)) for w, s in ws]


def minute_times(d: Path):
    times, _ = obs_times(d)
    return [t for t in times if t[17:19] == "00"]


def loglerp(a, b, f):
    f = min(1.0, max(0.0, f))
    return math.exp(math.log(a) + (math.log(b) - math.log(a)) * f)


def fog(a):
    src, dst = Path(a.src), Path(a.dst)
    rng = random.Random(f"fog/{a.seed}")
    copy_day(src, dst)
    ws = weather_stations(dst)
    times = minute_times(dst)
    n, ns = len(times), len(ws)
    clear = [[rng.uniform(4000, 10000)] for _ in range(ns)]
    for s in range(ns):  # a slow random walk in clear air
        for _ in range(n - 1):
            clear[s].append(min(15000.0, max(2500.0, clear[s][-1] * math.exp(rng.gauss(0, 0.03)))))
    vis = [list(c) for c in clear]
    shapes = [[None] * n for _ in range(ns)]
    banks = a.banks.split(",") if a.banks else []
    used = []  # (station, i0, i1) occupied (with neighbours) so banks stay apart

    def free(sts, i0, i1):
        return all(not (abs(s - u) <= 1 and i0 < u1 + 15 and u0 < i1 + 15) for s in sts for u, u0, u1 in used)

    def put(s, i, v, shape):
        if 0 <= i < n and v < vis[s][i]:
            vis[s][i] = v
            shapes[s][i] = shape

    for kind in banks:
        for _ in range(500):
            s = rng.randrange(ns)
            if kind == "sudden":
                hold, thin = rng.randint(10, 25), rng.randint(20, 40)
                i0 = rng.randint(10, max(11, n - hold - thin - 5))
                nb = [x for x in (s - 1, s + 1) if 0 <= x < ns]
                s2 = rng.choice(nb)
                lag = rng.randint(2, 5)
                sts, span = [s, s2], (i0, i0 + hold + thin + lag)
                if not free(sts, *span):
                    continue
                vmin = rng.uniform(25, 45)
                for k in range(hold):
                    put(s, i0 + k, min(49.0, vmin * math.exp(rng.gauss(0, 0.12))), kind)
                for k in range(thin):
                    put(s, i0 + hold + k, loglerp(55, clear[s][min(n - 1, i0 + hold + thin)], (k + 1) / thin), kind)
                v2 = rng.uniform(60, 150)
                h2 = max(4, hold - lag)
                for k in range(h2):
                    put(s2, i0 + lag + k, v2 * math.exp(rng.gauss(0, 0.1)), kind)
                for k in range(thin):
                    put(s2, i0 + lag + h2 + k, loglerp(v2, clear[s2][min(n - 1, i0 + lag + h2 + thin)], (k + 1) / thin), kind)
            elif kind == "slow":
                if s + 1 >= ns:
                    continue
                grow, hold, thin = rng.randint(15, 30), rng.randint(10, 20), rng.randint(20, 40)
                i0 = rng.randint(5, max(6, n - grow - hold - thin - 5))
                sts, span = [s, s + 1], (i0, i0 + grow + hold + thin)
                if not free(sts, *span):
                    continue
                for x in sts:
                    vmin = rng.uniform(60, 150)
                    for k in range(grow):
                        put(x, i0 + k, loglerp(clear[x][i0], vmin, (k + 1) / grow), kind)
                    for k in range(hold):
                        put(x, i0 + grow + k, vmin * math.exp(rng.gauss(0, 0.08)), kind)
                    for k in range(thin):
                        end = min(n - 1, i0 + grow + hold + thin)
                        put(x, i0 + grow + hold + k, loglerp(vmin, clear[x][end], (k + 1) / thin), kind)
            elif kind == "patchy":
                dips = rng.randint(2, 3)
                lens = [rng.randint(3, 8) for _ in range(dips)]
                gaps = [rng.randint(5, 15) for _ in range(dips)]
                total = sum(lens) + sum(gaps)
                i0 = rng.randint(5, max(6, n - total - 5))
                if not free([s], i0, i0 + total):
                    continue
                sts, span = [s], (i0, i0 + total)
                i = i0
                for ln, gp in zip(lens, gaps):
                    v = rng.uniform(80, 180)
                    for k in range(ln):
                        put(s, i + k, v * math.exp(rng.gauss(0, 0.1)), kind)
                    i += ln + gp
            else:
                sys.exit(f"inject fog: unknown bank {kind}")
            used.extend((x, span[0], span[1]) for x in sts)
            break
        else:
            print(f"inject fog: no room for the {kind} bank", file=sys.stderr)
    rows = []
    truth = read_truth(src)
    # --async: each station reports at its own second of the minute (road weather stations keep their own
    # clocks), so a reading falls between the detectors' ticks
    offs = [rng.randrange(1, 60) if a.asynchronous else 0 for _ in ws]
    for s, (wid, stake) in enumerate(ws):
        t_surf = rng.uniform(8, 12)
        ep = None
        for i, t in enumerate(times):
            v = vis[s][i]
            foggy = v < 1000
            rh = rng.uniform(96, 100) if foggy else rng.uniform(70, 85)
            if offs[s]:
                t = (datetime.fromisoformat(t) + timedelta(seconds=offs[s])).isoformat()
            rows.append((t, wid, f"{v:.0f}", f"{t_surf + rng.gauss(0, 0.1):.1f}", f"{t_surf - 1 + rng.gauss(0, 0.2):.1f}",
                         f"{min(100, rh):.0f}", "moist" if foggy else "dry"))
            vv = round(v)
            if vv < 500 and ep is None:
                ep = [i, vv, shapes[s][i]]
            elif vv < 500:
                ep[1] = min(ep[1], vv)
            if ep is not None and (vv >= 500 or i == len(times) - 1):
                j = i if vv >= 500 else i + 1
                sh = timedelta(seconds=offs[s])
                truth.append({"kind": "fog", "station": wid, "stake_m": stake,
                              "start": (datetime.fromisoformat(times[ep[0]]) + sh).isoformat(),
                              "end": (datetime.fromisoformat(times[j] if j < len(times) else times[-1]) + sh).isoformat(),
                              "min_visibility_m": ep[1], "shape": ep[2]})
                ep = None
    rows.sort()
    with open(dst / "WEATHER.csv", "w", newline="\n") as f:
        f.write(WEATHER_HEADER)
        for r in rows:
            f.write(",".join(r) + "\n")
    write_truth(dst, truth)
    update_meta(dst, src, {"step": "fog", "seed": a.seed, "banks": banks}, a.class15 or "fog")
    print(f"{dst.name}: fog {banks}, {sum(1 for r in truth if r['kind'] == 'fog')} station banks")


def dewpoint(t, rh):
    g = math.log(max(rh, 1) / 100.0) + 17.62 * t / (243.12 + t)
    return 243.12 * g / (17.62 - g)


def ice(a):
    src, dst = Path(a.src), Path(a.dst)
    rng = random.Random(f"ice/{a.seed}")
    copy_day(src, dst)
    ws = weather_stations(dst)
    times = minute_times(dst)
    n = len(times)
    bridge = min(range(len(ws)), key=lambda s: abs(ws[s][1] - ws[len(ws) // 2][1]))  # W03
    rows, truth = [], read_truth(src)
    dry_station = rng.randrange(len(ws))
    for s, (wid, stake) in enumerate(ws):
        start = rng.uniform(4.0, 6.0)
        if a.pattern == "bridge":
            # clear-sky cooling: flat, then a fast fall (up to 3-4 C/h) that levels off towards the low
            i0 = rng.uniform(0.05, 0.3) * n
            tau = rng.uniform(25, 60)
            low = rng.uniform(-2.5, -1.0) if s == bridge else rng.uniform(1.2, 3.0)
            t_low = min(n - 1.0, i0 + 3 * tau)
            moist = True
        else:
            low = rng.uniform(-0.6, -0.2) if s == dry_station else rng.uniform(0.4, 2.5)
            t_low = rng.uniform(0.6, 0.9) * n
            moist = False
        ep = None
        for i, t in enumerate(times):
            if not moist:
                # falls steadily to its low, then a slight recovery
                x = min(1.0, i / t_low)
                surf = start + (low - start) * (1 - (1 - x) ** 1.6)
            else:
                # approaches its low ever more slowly (exponentially), never below it
                surf = low + (start - low) * math.exp(-max(0.0, i - i0) / tau)
            if i > t_low:
                surf += 0.004 * (i - t_low)
            surf += rng.gauss(0, 0.05)
            air = surf - (0.5 if moist else rng.uniform(1.5, 2.5)) + rng.gauss(0, 0.2)
            if not moist:
                air = min(air, surf - 1.0) - 1.5 * min(1.0, i / t_low)
            rh = rng.uniform(90, 97) if moist else rng.uniform(55, 75)
            state = ("ice" if surf <= -0.3 else "moist") if moist else "dry"
            sv = round(surf, 1)
            rows.append((t, wid, f"{rng.uniform(4000, 12000):.0f}", f"{sv:.1f}", f"{air:.1f}", f"{rh:.0f}", state))
            frozen = sv <= 0.0 and state in MOIST
            if frozen and ep is None:
                ep = [i, sv]
            elif frozen:
                ep[1] = min(ep[1], sv)
            if ep is not None and (not frozen or i == n - 1):
                j = i if not frozen else i + 1
                truth.append({"kind": "ice", "station": wid, "stake_m": stake, "start": times[ep[0]],
                              "end": times[j] if j < n else times[-1], "min_surface_c": ep[1]})
                ep = None
    # a reading flickering at 0.0 C does not end a frozen spell: merge spells less than 5 min apart
    merged = []
    for r in truth:
        m = merged[-1] if merged else None
        if r["kind"] == "ice" and m is not None and m["kind"] == "ice" and m["station"] == r["station"] \
                and ts(r["start"]) - ts(m["end"]) < 300:
            m["end"] = r["end"]
            m["min_surface_c"] = min(m["min_surface_c"], r["min_surface_c"])
        else:
            merged.append(r)
    truth = merged
    rows.sort()
    with open(dst / "WEATHER.csv", "w", newline="\n") as f:
        f.write(WEATHER_HEADER)
        for r in rows:
            f.write(",".join(r) + "\n")
    write_truth(dst, truth)
    update_meta(dst, src, {"step": "ice", "seed": a.seed, "pattern": a.pattern}, a.class15 or "ice")
    print(f"{dst.name}: ice {a.pattern}, {sum(1 for r in truth if r['kind'] == 'ice')} frozen intervals")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("faults", "fog", "ice"):
        q = sub.add_parser(name)
        q.add_argument("src")
        q.add_argument("dst")
        q.add_argument("--seed", type=int, required=True)
        q.add_argument("--class15", help="class name written into SCENARIO.json (default: the command)")
        if name == "faults":
            q.add_argument("--lanes", type=int, default=4, help="single-lane faults (zero, stuck, locked_on, silent in turn)")
            q.add_argument("--stations", type=int, default=3, help="whole-station faults (zero, stuck, silent in turn)")
            q.add_argument("--min-min", type=int, default=12)
            q.add_argument("--max-min", type=int, default=30)
        if name == "fog":
            q.add_argument("--banks", default="sudden,slow,patchy")
            q.add_argument("--async", dest="asynchronous", action="store_true",
                           help="each station reports at its own second of the minute, between the detectors' ticks")
        if name == "ice":
            q.add_argument("--pattern", choices=["bridge", "dry"], required=True)
    a = p.parse_args(argv)
    {"faults": faults, "fog": fog, "ice": ice}[a.cmd](a)


if __name__ == "__main__":
    main()
