#!/usr/bin/env python3
"""Issue-15 scorer: every measure of the issue's table, for zhilu's
EVENTS.jsonl / ACTIONS.jsonl beside California #7 (where it applies).

    score15.py DIR... [--events zhilu/EVENTS.jsonl] [--md FILE] [--json FILE] [-v]
    score15.py --set /work/sets/val15 ...        every sub-folder holding a TRUTH.jsonl

ACTIONS.jsonl is read next to the events file. Standard library only; the
incident, California #7 and hazmat scoring is score.py's (imported).

Classes of a day (SCENARIO.json): `kind` (incident, bottleneck = recurrent
merge jam, quiet, hazmat), `class15` set by inject.py (faults, fog, ice),
`spacing_m`, `interval_s`; loops only = POS.csv and CAM.csv without rows.

Measures
- Incidents detected / mean time to detect per spacing · interval class
  (score.py's matching: an `incident` event whose [from_m - 1 km, to_m + 1 km]
  holds the stake, detected in [start, end + 5 min]).
- Detected incidents held open: the share of the blocked time after the
  first detection during which a matching event was open (>= 90 % counts);
  and whether a matching event's own [from_m, to_m] (no margin) holds the
  site (the plan's signs are the ones drivers pass before it).
- False incident alarms per station-hour, all days and recurrent-jam days.
- Healthy detectors reported faulty: zhilu `detector_fault` events naming a
  lane (`evidence.lanes`, else `lane`, else every lane) with no injected fault
  of that detector and lane whose [start - 1 interval, end + 10 min] holds
  the event's detected_at. Counted per event (an event flagging a healthy
  lane beside a faulty one counts), by day class.
- Injected faults found: a `detector_fault` event of the detector naming one
  of the fault's lanes, detected in [start - 1 interval, end + 5 min];
  delay = detected_at - start (start = the first faulty row's time).
- Fog (days with WEATHER.csv and visibility < 500 m somewhere). A station-
  minute is the WEATHER row's minute [t, t + 60 s). The signs governing a
  weather station (per direction) are the speed-limit signs inside its
  cover (halfway to the neighbouring stations, at most 5 km: all that is
  known of the fog there) and the last sign before it in the direction of
  travel (at most 5 km; what drivers were told when they reach it). Lawful: visibility < 200/100/50 m
  requires every governing sign to show <= 60/40/20 km/h over the whole
  minute from the end of the detector tick the reading arrives in (a
  reading between ticks is acted on at the tick's end) to the next
  reading. Reaction delay: each time a station's requirement tightens, the
  time from that tick's end until every governing sign complies.
  Clear (>= 500 m) station-minutes under a lowered limit: a governing sign
  shows below the posted limit for a fog event (the action's `event` is a
  `fog` event) at any moment in the minute, unless excused
  by a non-clear station W (requirement 60/40/20, or 80 at 200-500 m; W's reading in force when the minute
  begins or any arriving within it, the strictest): the
  sign governs W or lies in W's cover and shows >= W's requirement, or it lies upstream of W's governing signs and shows >=
  the requirement + 20 km/h per sign between (the approach taper).
- Hazmat: score.py's (found within 2 min of the truth start = the moment
  the stop reached 5 min; false = matching no truth violation), and the
  stops near a service area on their own.
- Ice: per frozen station (truth: surface <= 0 C with moisture), risk found
  when an `ice` event covering the station's stake was detected before its
  first frozen minute. False ice alerts: `ice` events whose [detected_at, end]
  overlaps no frozen interval +- 1 h of a station inside [from_m, to_m]; also
  counted per station (stations inside an event's extent that never froze
  within +- 1 h). De-icers: on-time (ACTIONS `deicing`) outside the frozen
  intervals +- 1 h of the stations whose cover overlaps the de-icer's zone.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import json
import math
import sys
import tomllib
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import score  # noqa: E402

FAULT_EARLY_INTERVALS = 1
FAULT_LATE_S = 300
HEALTHY_TAIL_S = 600
COVER_MAX_M = 5000.0
GOVERN_MAX_M = 5000.0
ICE_MARGIN_S = 3600
LAW = ((50, 20), (100, 40), (200, 60))  # Art. 81: visibility below -> limit at most
BAND1 = (500, 80)


def required(vis):
    for edge, lim in LAW:
        if vis < edge:
            return lim
    if vis < BAND1[0]:
        return BAND1[1]
    return None


def lawful_need(vis):
    for edge, lim in LAW:
        if vis < edge:
            return lim
    return None


def rows_in(p: Path) -> int:
    if not p.exists():
        return 0
    with open(p) as f:
        return max(0, sum(1 for _ in f) - 1)


def day_class(d: Path, meta: dict) -> str:
    c = meta.get("class15")
    if c:
        return c
    return {"bottleneck": "jam"}.get(meta.get("kind"), meta.get("kind") or "?")


def sign_timelines(actions, posted, only_events=None):
    """device -> [(t, value)]; with only_events, a value set for another event counts as the posted limit."""
    tl = defaultdict(list)
    for a in actions or []:
        if a.get("action") == "speed_limit":
            v = a.get("value")
            if only_events is not None and a.get("event") not in only_events:
                v = None
            tl[a["device"]].append((score.ts(a["at"]), posted if v is None else float(v)))
    return tl


def value_over(tl, dev, t0, t1, posted):
    """(max, min) of a sign's value over [t0, t1)."""
    cur = posted
    vals = []
    for t, v in tl.get(dev, []):
        if t <= t0:
            cur = v
        elif t < t1:
            vals.append(v)
        else:
            break
    vals.append(cur)
    return max(vals), min(vals)


def first_compliant(tl, devs, t0, need, posted, t_end):
    """Earliest time >= t0 at which every sign in devs shows <= need (None if never before t_end)."""
    cands = [t0] + sorted({t for dv in devs for t, _ in tl.get(dv, []) if t0 < t < t_end})
    for t in cands:
        if all(value_over(tl, dv, t, t + 1e-3, posted)[0] <= need for dv in devs):
            return t
    return None


def covers(stations):
    """Cover (lo, hi) of each station: halfway to its neighbours, at most COVER_MAX_M."""
    st = sorted(stations, key=lambda s: s[1])
    out = {}
    for i, (wid, s) in enumerate(st):
        lo = (st[i - 1][1] + s) / 2 if i > 0 else s - COVER_MAX_M
        hi = (st[i + 1][1] + s) / 2 if i + 1 < len(st) else s + COVER_MAX_M
        out[wid] = (max(lo, s - COVER_MAX_M), min(hi, s + COVER_MAX_M))
    return out


def governing(road, stations, direction):
    """station id -> governing sign ids, and the signs of the direction in travel order (with their stakes).

    A station is governed by the signs inside its cover (the fog it reads is all that is known there) and by
    the last sign before it in the direction of travel (what drivers were told when they reach it)."""
    sgn = 1 if direction == "up" else -1
    signs = sorted(((score.stake(v["stake_m"]), v["id"]) for v in road.get("vsl", []) if v.get("direction") == direction),
                   key=lambda x: sgn * x[0])
    cov = covers(stations)
    gov = {}
    for wid, s in stations:
        lo, hi = cov[wid]
        g = {sid for ss, sid in signs if lo <= ss <= hi}
        ups = [sid for ss, sid in signs if 0 <= sgn * (s - ss) <= GOVERN_MAX_M]
        if ups:
            g.add(ups[-1])
        gov[wid] = [sid for _, sid in signs if sid in g]
    return gov, [sid for _, sid in signs], {sid: ss for ss, sid in signs}


def load_weather(d: Path):
    p = d / "WEATHER.csv"
    if not p.exists():
        return None
    w = defaultdict(list)
    with open(p, newline="") as f:
        for r in csv.DictReader(f):
            try:
                vis = float(r["visibility_m"])
            except (ValueError, KeyError):
                continue
            surf = r.get("surface_temp_c")
            w[r["station"]].append((score.ts(r["time"]), vis, float(surf) if surf not in (None, "") else None,
                                    r.get("surface_state", "")))
    for v in w.values():
        v.sort()
    return w


def score_fog(d, road, weather, actions, events, interval):
    posted = float(road["road"].get("speed_limit_kmh", 120))
    stations = [(x["id"], score.stake(x["stake_m"])) for x in road.get("weather", [])]
    if not stations or not weather:
        return None
    if not any(vis < 500 for rows in weather.values() for _, vis, _, _ in rows):
        return None
    tl = sign_timelines(actions, posted)
    # lowered in clear air: only what a fog plan asked for (a false incident's plan is counted as a false alarm)
    tl_fog = sign_timelines(actions, posted, {e.get("id") for e in events or [] if e.get("kind") == "fog"})
    cov = covers(stations)
    res = {"need_minutes": 0, "lawful_minutes": 0, "clear_minutes": 0, "clear_lowered": 0, "delays_s": [],
           "never": 0, "unlawful": [], "lowered": []}
    stake_of = dict(stations)
    t_last = max(r[-1][0] for r in weather.values()) + 60
    for direction in road["road"].get("directions", ["up"]):
        gov, order, sign_stake = governing(road, stations, direction)
        sgn = 1 if direction == "up" else -1
        # each station's readings in time order: what it reads during a minute of another station's is the
        # reading in force when the minute begins and any that arrive within it (stations report at their own
        # second of the minute: a same-second lookup would never find the others)
        times = {wid: [r[0] for r in rows] for wid, rows in weather.items()}

        def req_during(w2, t0, t1):
            rows2, ts2 = weather[w2], times[w2]
            i = bisect.bisect_right(ts2, t0) - 1
            reqs = [required(rows2[j][1]) for j in range(max(i, 0), bisect.bisect_left(ts2, t1)) if ts2[j] < t1
                    and (j == i or ts2[j] > t0)]
            reqs = [r for r in reqs if r]
            return min(reqs) if reqs else None
        for wid, rows in weather.items():
            if wid not in gov or not gov[wid]:
                continue
            prev_need = None
            for t, vis, _, _ in rows:
                need = lawful_need(vis)
                # a reading applies from the end of the detector tick it arrives in
                tick = math.ceil(t / interval) * interval
                if need is not None:
                    res["need_minutes"] += 1
                    worst = max(value_over(tl, g, tick, max(tick + 1, t + 60), posted)[0] for g in gov[wid])
                    if worst <= need:
                        res["lawful_minutes"] += 1
                    else:
                        res["unlawful"].append((d.name, wid, t, vis, need, worst))
                    if prev_need is None or need < prev_need:
                        fc = first_compliant(tl, gov[wid], tick, need, posted, t_last)
                        if fc is None:
                            res["never"] += 1
                        else:
                            res["delays_s"].append(fc - tick)
                prev_need = need
                if vis >= 500:
                    res["clear_minutes"] += 1
                    # non-clear stations now, their requirement
                    others = [(w2, r2) for w2 in stake_of if w2 in weather and (r2 := req_during(w2, t, t + 60))]
                    bad = False
                    for g in gov[wid]:
                        vmax, vmin = value_over(tl_fog, g, t, t + 60, posted)
                        if vmin >= posted:
                            continue
                        gs = sign_stake[g]
                        excused = False
                        for w2, req in others:
                            lo, hi = cov[w2]
                            g2 = gov.get(w2) or []
                            if (lo <= gs <= hi or g in g2) and vmin >= req:
                                excused = True
                            if g2:
                                first = min(order.index(x) for x in g2)
                                k = order.index(g)
                                if k < first and vmin >= req + 20 * (first - k):
                                    excused = True
                        if not excused:
                            bad = True
                            res["lowered"].append((d.name, wid, t, g, vmin))
                    res["clear_lowered"] += bad
    return res


def frozen_intervals(truth):
    out = defaultdict(list)
    for t in truth:
        if t["kind"] == "ice":
            out[t["station"]].append((score.ts(t["start"]), score.ts(t["end"])))
    return out


def score_ice(d, road, truth, events, actions, t_end):
    stations = [(x["id"], score.stake(x["stake_m"])) for x in road.get("weather", [])]
    froz = frozen_intervals(truth)
    ev = [e for e in events or [] if e.get("kind") == "ice" and e.get("detected_at")]
    res = {"frozen_stations": 0, "found_before": 0, "false_events": 0, "ice_events": len(ev), "false_station_alerts": 0,
           "deicer_on_s": 0.0, "deicer_outside_s": 0.0, "detail": []}
    for wid, s in stations:
        iv = froz.get(wid)
        if not iv:
            continue
        res["frozen_stations"] += 1
        first = min(a for a, _ in iv)
        ok = any(min(score.stake(e["from_m"]), score.stake(e["to_m"])) <= s <= max(score.stake(e["from_m"]), score.stake(e["to_m"]))
                 and score.ts(e["detected_at"]) <= first for e in ev)
        res["found_before"] += ok
        res["detail"].append((d.name, wid, "found before" if ok else "MISSED"))
    for e in ev:
        a, b = score.ts(e["detected_at"]), score.ts(e["end"]) if e.get("end") else t_end
        lo, hi = sorted((score.stake(e["from_m"]), score.stake(e["to_m"])))
        inside = [(wid, s) for wid, s in stations if lo <= s <= hi]
        hit = [wid for wid, _ in inside
               if any(a <= fb + ICE_MARGIN_S and fa - ICE_MARGIN_S <= b for fa, fb in froz.get(wid, []))]
        if not hit:
            res["false_events"] += 1
            res["detail"].append((d.name, e.get("id"), f"FALSE ice {lo:.0f}-{hi:.0f} at {e['detected_at'][11:19]} "
                                                       f"surface {e.get('surface_temp_c')}"))
        res["false_station_alerts"] += len(inside) - len(hit)
    cov = covers(stations) if stations else {}
    on = defaultdict(list)
    for a in actions or []:
        if a.get("action") == "deicing":
            on[a["device"]].append((score.ts(a["at"]), a.get("value") == "on"))
    for z in road.get("deicer", []):
        risk = []
        for wid, s in stations:
            lo, hi = cov[wid]
            if lo <= z["to_m"] and hi >= z["from_m"]:
                risk += [(fa - ICE_MARGIN_S, fb + ICE_MARGIN_S) for fa, fb in froz.get(wid, [])]
        seq = sorted(on.get(z["id"], []))
        for (t0, is_on), nxt in zip(seq, seq[1:] + [(t_end, False)]):
            if not is_on:
                continue
            t1 = max(t0, nxt[0])
            res["deicer_on_s"] += t1 - t0
            covered = 0.0
            for ra, rb in sorted(risk):
                covered += max(0.0, min(t1, rb) - max(t0, ra))
            res["deicer_outside_s"] += max(0.0, (t1 - t0) - min(covered, t1 - t0))
    return res


def fault_lanes(e, lanes_of):
    ev = e.get("evidence") or {}
    ls = ev.get("lanes") or ([e["lane"]] if e.get("lane") is not None else None)
    return set(int(x) for x in ls) if ls else set(range(1, lanes_of.get(e.get("detector"), 3) + 1))


def score_faults(truth, events, interval, lanes_of):
    faults = [t for t in truth if t["kind"] == "detector_fault"]
    fev = [e for e in events or [] if e.get("kind") == "detector_fault" and e.get("detected_at")]
    found, delays, per = 0, [], []
    for f in faults:
        a, b = score.ts(f["start"]), score.ts(f["end"])
        best = None
        for e in fev:
            d = score.ts(e["detected_at"])
            if e.get("detector") == f["detector"] and fault_lanes(e, lanes_of) & set(f["lanes"]) and \
                    a - FAULT_EARLY_INTERVALS * interval <= d <= b + FAULT_LATE_S:
                best = d if best is None else min(best, d)
        found += best is not None
        if best is not None:
            delays.append(best - a)
        per.append({"detector": f["detector"], "scope": f["scope"], "fault": f["fault"], "lanes": f["lanes"],
                    "start": f["start"], "delay_s": None if best is None else round(best - a)})
    healthy = []
    for e in fev:
        d = score.ts(e["detected_at"])
        lanes = fault_lanes(e, lanes_of)
        covered = set()
        for f in faults:
            if f["detector"] == e.get("detector") and \
                    score.ts(f["start"]) - FAULT_EARLY_INTERVALS * interval <= d <= score.ts(f["end"]) + HEALTHY_TAIL_S:
                covered |= set(f["lanes"])
        if lanes - covered:
            ev = e.get("evidence") or {}
            healthy.append({"detector": e.get("detector"), "lanes": sorted(lanes - covered),
                            "detected_at": e["detected_at"], "end": e.get("end"),
                            "rules": ev.get("rules") or ev.get("rule")})
    return {"faults": len(faults), "found": found, "delays_s": delays, "per_fault": per, "healthy_flagged": healthy}


def score_hold(truth, events, t_end):
    """Per detected truth incident: the share of its blocked time after the first detection that some matching
    incident event was open, and whether a matching event's own extent (no margin) holds the site."""
    out = []
    evs = [e for e in events or [] if e.get("kind") == "incident" and e.get("detected_at")]
    for t in truth:
        if t["kind"] != "incident":
            continue
        s, a, b = float(t["stake_m"]), score.ts(t["start"]), score.ts(t["end"])
        m = []
        for e in evs:
            lo, hi = sorted((score.stake(e["from_m"]), score.stake(e["to_m"])))
            d = score.ts(e["detected_at"])
            if lo - score.STAKE_MARGIN_M <= s <= hi + score.STAKE_MARGIN_M and a <= d <= b + score.LATE_S:
                m.append((d, score.ts(e["end"]) if e.get("end") else t_end, lo <= s <= hi))
        if not m:
            continue
        first = min(x[0] for x in m)
        if first >= b:
            out.append({"open_share": None, "covers_site": any(x[2] for x in m)})
            continue
        cover, cur = 0.0, first
        for d, e_end, _ in sorted(m):
            lo_, hi_ = max(d, cur), min(e_end, b)
            if hi_ > lo_:
                cover += hi_ - lo_
                cur = hi_
        out.append({"open_share": cover / (b - first), "covers_site": any(x[2] for x in m)})
    return out


def score_day(d: Path, events_name: str):
    base = score.score_dir(d, events_name)
    meta = json.loads((d / "SCENARIO.json").read_text()) if (d / "SCENARIO.json").exists() else {}
    road = tomllib.loads((d / "ROAD.toml").read_text())
    truth = score.read_jsonl(d / "TRUTH.jsonl") or []
    evp = d / events_name
    events = score.read_jsonl(evp) or []
    actions = score.read_jsonl(evp.parent / "ACTIONS.jsonl") or []
    occ, times, interval, tz = score.load_obs(d / "OBS.csv")
    t_end = max(times) if times else 0
    lanes_of = {x["id"]: x.get("lanes", road["road"].get("lanes", 3)) for x in road.get("detector", [])}
    weather = load_weather(d)
    loops_only = rows_in(d / "POS.csv") == 0 and rows_in(d / "CAM.csv") == 0
    return {
        "day": d.name, "class": day_class(d, meta), "spacing_m": meta.get("spacing_m"), "interval_s": interval,
        "loops_only": loops_only, "station_hours": base["station_hours"], "base": base,
        "faults": score_faults(truth, events, interval, lanes_of),
        "hold": score_hold(truth, events, t_end),
        "hold_cal7": score_hold(truth, score.read_jsonl(d / "CAL7_EVENTS.jsonl") or [], t_end),
        "fog": score_fog(d, road, weather, actions, events, interval) if weather else None,
        "ice": score_ice(d, road, truth, events, actions, t_end) if weather else None,
        "events_found": evp.exists(),
    }


def hm(t):
    return datetime.fromtimestamp(t, timezone(timedelta(hours=8))).strftime("%H:%M:%S")


def pct(a, b):
    return "—" if not b else f"{100.0 * a / b:.1f} %"


def mean(xs):
    return sum(xs) / len(xs) if xs else None


def fs(x):
    return "—" if x is None else f"{x:.0f} s"


def inc_class(r):
    src = "loops only" if r["loops_only"] else "loops + probes/cameras"
    return f"{r['spacing_m']} m / {r['interval_s']} s, {src}"


def table(days, verbose=False):
    L = []
    # --- incidents per class
    cls = defaultdict(lambda: {"zhilu": [0, 0, []], "california7": [0, 0, []]})
    for r in days:
        for who in ("zhilu", "california7"):
            res = (r["base"].get(who) or {}).get("incident") if r["base"].get(who) else None
            if not res:
                continue
            for p in res["per_incident"]:
                c = cls[inc_class(r)][who]
                c[0] += 1
                c[1] += p["detected"]
                if p["detected"]:
                    c[2].append(p["ttd_s"])
    L.append("| measure | zhilu | California #7 |")
    L.append("|---|---|---|")
    for k in sorted(cls):
        z, c = cls[k]["zhilu"], cls[k]["california7"]
        L.append(f"| incidents detected, {k} | {z[1]}/{z[0]} | {c[1]}/{c[0]} |")
        L.append(f"| mean time to detect, {k} | {fs(mean(z[2]))} | {fs(mean(c[2]))} |")
    # --- incidents held open while blocked, zone over the site
    cells = ([], [])
    for k, key in enumerate(("hold", "hold_cal7")):
        hold = [h for r in days for h in r[key]]
        sh = [h["open_share"] for h in hold if h["open_share"] is not None]
        cells[0].append(f"{sum(1 for x in sh if x >= 0.9)}/{len(sh)} ({100 * mean(sh):.0f} %)" if sh else "—")
        cells[1].append(f"{sum(h['covers_site'] for h in hold)}/{len(hold)}" if hold else "—")
    L.append("| detected incidents held open until the block cleared (>= 90 % of the blocked time after detection; "
             f"mean share) | {cells[0][0]} | {cells[0][1]} |")
    L.append(f"| detected incidents with an event whose extent holds the site | {cells[1][0]} | {cells[1][1]} |")
    # --- false alarms
    for label, sel in (("all days", lambda r: True), ("recurrent-jam days", lambda r: r["class"] == "jam")):
        sh = sum(r["station_hours"] for r in days if sel(r))
        vals = []
        for who in ("zhilu", "california7"):
            fa = sum(r["base"][who]["incident"]["false_alarms"] for r in days if sel(r) and r["base"].get(who))
            vals.append(f"{fa / sh:.4f} ({fa} in {sh:.0f} st-h)" if sh else "—")
        L.append(f"| false incident alarms per station-hour, {label} | {vals[0]} | {vals[1]} |")
    # --- faults
    hf = defaultdict(int)
    for r in days:
        hf[r["class"]] += len(r["faults"]["healthy_flagged"])
    L.append(f"| healthy detectors reported faulty (events) | {sum(hf.values())} ("
             + ", ".join(f"{k} {v}" for k, v in sorted(hf.items())) + ") | — |")
    nf = sum(r["faults"]["faults"] for r in days)
    fd = sum(r["faults"]["found"] for r in days)
    dl = [x for r in days for x in r["faults"]["delays_s"]]
    by = defaultdict(lambda: [0, 0])
    for r in days:
        for p in r["faults"]["per_fault"]:
            by[f"{p['scope']} {p['fault']}"][0] += 1
            by[f"{p['scope']} {p['fault']}"][1] += p["delay_s"] is not None
    L.append(f"| injected detector faults found (mean delay) | {fd}/{nf} ({fs(mean(dl))}; "
             + ", ".join(f"{k} {v[1]}/{v[0]}" for k, v in sorted(by.items())) + ") | — |")
    # --- fog
    fog = [r["fog"] for r in days if r["fog"]]
    if fog:
        need = sum(f["need_minutes"] for f in fog)
        law = sum(f["lawful_minutes"] for f in fog)
        dls = [x for f in fog for x in f["delays_s"]]
        never = sum(f["never"] for f in fog)
        L.append(f"| fog station-minutes under a lawful limit (Art. 81) | {pct(law, need)} ({law}/{need}) | — |")
        L.append(f"| fog reaction delay: mean / max (tightenings; never complied) | "
                 f"{fs(mean(dls))} / {fs(max(dls) if dls else None)} ({len(dls)}; {never}) | — |")
        cm = sum(f["clear_minutes"] for f in fog)
        cl = sum(f["clear_lowered"] for f in fog)
        L.append(f"| clear station-minutes under a lowered limit (taper excused) | {pct(cl, cm)} ({cl}/{cm}) | — |")
    # --- hazmat
    hz = [r["base"]["zhilu"]["hazmat"] for r in days if r["base"].get("zhilu")]
    nv = sum(h["violations"] for h in hz)
    if nv:
        fi = sum(h["found_in_time"] for h in hz)
        fl = sum(h["false"] for h in hz)
        late = sum(h["late"] for h in hz)
        st = [p for h in hz for p in h["per_violation"] if p["kind"] == "hazmat_stopped"]
        L.append(f"| hazmat violations found within 2 min (late; false) | {fi}/{nv} ({late}; {fl}) | — |")
        near = []
        for r in days:
            tr = score.read_jsonl(Path(r["base"]["zhilu"]["events_file"]).parent.parent / "TRUTH.jsonl") or [] \
                if r["base"].get("zhilu") else []
            near_keys = {(t["vehicle"], t["start"]) for t in tr if t.get("near_service_area")}
            near += [p for p in r["base"]["zhilu"]["hazmat"]["per_violation"] if (p["vehicle"], p["start"]) in near_keys] \
                if r["base"].get("zhilu") else []
        L.append(f"| hazmat stops found within 2 min: all / near a service area | "
                 f"{sum(p['in_time'] for p in st)}/{len(st)} / {sum(p['in_time'] for p in near)}/{len(near)} | — |")
    # --- ice
    ice = [r["ice"] for r in days if r["ice"]]
    if ice:
        fz = sum(i["frozen_stations"] for i in ice)
        fb = sum(i["found_before"] for i in ice)
        fe = sum(i["false_events"] for i in ice)
        fsa = sum(i["false_station_alerts"] for i in ice)
        on = sum(i["deicer_on_s"] for i in ice)
        out = sum(i["deicer_outside_s"] for i in ice)
        L.append(f"| ice: risk found before the first frozen minute | {fb}/{fz} | — |")
        L.append(f"| ice: false ice alerts (events; stations alerted that did not freeze) | {fe}; {fsa} | — |")
        L.append(f"| ice: de-icer on-time outside the risk ± 1 h | {pct(out, on)} ({out / 60:.0f} of {on / 60:.0f} min) | — |")
    L += ["", "| day | class | spacing / interval | incidents zhilu / Cal#7 | false alarms zhilu / Cal#7 | "
          "healthy flagged | faults found | fog lawful | clear lowered | hazmat found / false | ice found / false |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in days:
        z = (r["base"].get("zhilu") or {}).get("incident")
        c = r["base"]["california7"]["incident"]
        h = (r["base"].get("zhilu") or {}).get("hazmat")
        f, i = r["fog"], r["ice"]
        cells = [
            r["day"], r["class"], f"{r['spacing_m']} m / {r['interval_s']} s" + ("" if r["loops_only"] else " + probes"),
            f"{z['detected'] if z else '—'}/{c['incidents']} / {c['detected']}/{c['incidents']}",
            f"{z['false_alarms'] if z else '—'} / {c['false_alarms']}",
            str(len(r["faults"]["healthy_flagged"])),
            f"{r['faults']['found']}/{r['faults']['faults']}",
            f"{f['lawful_minutes']}/{f['need_minutes']}" if f else "—",
            f"{f['clear_lowered']}/{f['clear_minutes']}" if f else "—",
            f"{h['found_in_time']}/{h['violations']} / {h['false']}" if h and (h["violations"] or h["false"]) else "—",
            f"{i['found_before']}/{i['frozen_stations']} / {i['false_events']}" if i and (i["frozen_stations"] or i["ice_events"]) else "—",
        ]
        L.append("| " + " | ".join(cells) + " |")
    if verbose:
        L.append("")
        for r in days:
            for p in (r["base"].get("zhilu") or {}).get("incident", {}).get("per_incident", []):
                L.append(f"- {r['day']}: incident {p['stake_m']} lanes {p['lanes']} {p['start'][11:19]} "
                         f"ttd {p['ttd_s']}")
            for h in r["faults"]["healthy_flagged"]:
                L.append(f"- {r['day']}: healthy flagged {h['detector']} lanes {h['lanes']} at {h['detected_at'][11:19]} {h['rules']}")
            for p in r["faults"]["per_fault"]:
                L.append(f"- {r['day']}: fault {p['detector']} {p['scope']} {p['fault']} {p['lanes']} {p['start'][11:19]} "
                         f"delay {p['delay_s']}")
            if r["fog"]:
                for x in r["fog"]["unlawful"][:30]:
                    L.append(f"- {x[0]}: UNLAWFUL {x[1]} {hm(x[2])} vis {x[3]:.0f} needs {x[4]} shows {x[5]:.0f}")
                for x in r["fog"]["lowered"][:30]:
                    L.append(f"- {x[0]}: lowered in clear {x[1]} {hm(x[2])} sign {x[3]} {x[4]:.0f}")
            if r["ice"]:
                for x in r["ice"]["detail"]:
                    L.append(f"- {x[0]}: {x[1]} {x[2]}")
    return "\n".join(L)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dirs", nargs="*", type=Path)
    p.add_argument("--set", type=Path, help="score every sub-folder holding a TRUTH.jsonl")
    p.add_argument("--events", default="zhilu/EVENTS.jsonl", help="events file inside each day (ACTIONS.jsonl beside it)")
    p.add_argument("--md", type=Path)
    p.add_argument("--json", type=Path)
    p.add_argument("-v", action="store_true", help="list every incident, fault, unlawful minute and ice alert")
    a = p.parse_args(argv)
    dirs = list(a.dirs)
    if a.set:
        dirs += sorted(x for x in a.set.iterdir() if x.is_dir() and (x / "TRUTH.jsonl").exists())
    if not dirs:
        p.error("no day folders")
    days = [score_day(d, a.events) for d in dirs]
    md = table(days, a.v)
    print(md)
    if a.md:
        a.md.write_text(md + "\n")
    if a.json:
        a.json.write_text(json.dumps(days, indent=1, ensure_ascii=False, default=str) + "\n")


if __name__ == "__main__":
    main()
