#!/usr/bin/env python3
"""Score incident and hazmat detection against scenario ground truth.

For every scenario folder (containing TRUTH.jsonl, OBS.csv, ROAD.toml and
optionally SCENARIO.json and the platform's EVENTS.jsonl) this

* runs California #7 (Payne & Tignor; modified decision tree with an
  "incident continuing" state: tentative if OCCDF >= T1 and OCCRDF >= T2 and
  DOCCTD >= T3, confirmed if OCCRDF >= T2 on the next interval, continuing
  while OCCRDF >= T2; T1 = 8 %, T2 = 0.5, T3 = 0.3) on station-average
  occupancy of each upstream/downstream station pair, and writes its alarms
  in the contract's EVENTS.jsonl shape to CAL7_EVENTS.jsonl in the folder;
* scores zhilu's events (if found) and California #7 the same way.

Incidents. A truth incident is detected by an `incident` event (direction
"up"/"down" matching, or "both") whose [from_m - 1000, to_m + 1000] contains
the truth stake and whose detected_at lies in [start, end + 5 min]. An
incident counts once however many events match it; its time to detect is
the earliest matching detected_at - start. An incident event matching no
truth incident is a false alarm. False alarms are reported per station-hour
(stations x hours of OBS data) and, for California #7, per decision (one
decision = one station pair x one interval).

Hazmat. A truth violation (kind hazmat_speeding / hazmat_stopped /
hazmat_restricted_zone, vehicle, start = the moment it became a violation)
is found in time when an event of the same kind and vehicle has detected_at
in [start - 30 s, start + 120 s]; found late when detected_at is later but
before end + 120 s. A hazmat event whose detected_at falls in no truth
violation's [start - 30 s, end + 120 s] for the same kind and vehicle is a
false alarm.

Usage:
  score.py DIR [DIR ...]            score these scenario folders
  score.py --suite scenarios/out    score every sub-folder with a TRUTH.jsonl
Options: --events NAME (path of the platform's events inside each folder;
default: zhilu/EVENTS.jsonl, then EVENTS.jsonl), --md FILE, --json FILE.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tomllib
from collections import defaultdict
from datetime import datetime
from pathlib import Path

T1, T2, T3 = 8.0, 0.5, 0.3
STAKE_MARGIN_M = 1000.0
LATE_S = 300
HAZ_EARLY_S, HAZ_WINDOW_S = 30, 120
HAZMAT_KINDS = ("hazmat_speeding", "hazmat_stopped", "hazmat_restricted_zone")


def ts(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


def iso(t: float, tz) -> str:
    return datetime.fromtimestamp(t, tz).isoformat()


def stake(v) -> float:
    if isinstance(v, (int, float)):
        return float(v)
    v = str(v).strip()
    if v.upper().startswith("K"):
        km, m = v[1:].split("+")
        return float(km) * 1000 + float(m)
    return float(v)


def read_jsonl(path: Path):
    if not path.exists():
        return None
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


# ---------------------------------------------------------------------------
# OBS and California #7
# ---------------------------------------------------------------------------


def load_obs(path: Path):
    """station -> {time: mean occupancy over valid lanes}; plus the set of times and the interval."""
    occ = defaultdict(lambda: defaultdict(list))
    times = set()
    interval = None
    tz = None
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            t = datetime.fromisoformat(r["time"])
            tz = tz or t.tzinfo
            tt = t.timestamp()
            times.add(tt)
            if interval is None and r.get("interval_s"):
                interval = int(float(r["interval_s"]))
            o = r.get("occupancy_pct", "")
            try:
                ov = float(o)
            except ValueError:
                continue
            if 0.0 <= ov <= 100.0:
                occ[r["detector"]][tt].append(ov)
    mean = {d: {t: sum(v) / len(v) for t, v in series.items()} for d, series in occ.items()}
    return mean, sorted(times), interval or 30, tz


def california7(road: dict, occ: dict, times: list[float], interval: int, tz):
    """Alarms (contract event dicts) and the number of decisions taken."""
    events = []
    decisions = 0
    dets = road.get("detector", [])
    by_dir = defaultdict(list)
    for d in dets:
        by_dir[d["direction"]].append((stake(d["stake_m"]), d["id"]))
    seq = 0
    for direction, lst in by_dir.items():
        lst.sort(reverse=(direction == "down"))  # upstream first
        for (su, up), (sd, dn) in zip(lst, lst[1:]):
            ou, od = occ.get(up, {}), occ.get(dn, {})
            state = "free"
            ev = None
            for k, t in enumerate(times):
                if k < 2:
                    continue
                t2 = times[k - 2]
                if t not in ou or t not in od or t2 not in od or t - t2 > 2.5 * interval:
                    continue
                decisions += 1
                occ_i, occ_j, occ_j2 = ou[t], od[t], od[t2]
                occdf = occ_i - occ_j
                occrdf = occdf / occ_i if occ_i > 0 else 0.0
                docctd = (occ_j2 - occ_j) / occ_j2 if occ_j2 > 0 else 0.0
                if state in ("confirmed", "continuing"):
                    if occrdf >= T2:
                        state = "continuing"
                    else:
                        state = "free"
                        ev["end"] = iso(t, tz)
                        events.append(ev)
                        ev = None
                elif state == "tentative":
                    if occrdf >= T2:
                        state = "confirmed"
                        ev["detected_at"] = iso(t, tz)
                    else:
                        state = "free"
                        ev = None
                else:
                    if occdf >= T1 and occrdf >= T2 and docctd >= T3:
                        state = "tentative"
                        seq += 1
                        ev = {"id": f"C7-{seq}", "kind": "incident", "direction": direction,
                              "from_m": min(su, sd), "to_m": max(su, sd), "start": iso(t, tz),
                              "detected_at": None, "end": None, "severity": 3,
                              "evidence": {"detectors": [up, dn], "rule": "california7",
                                           "occdf": round(occdf, 1), "occrdf": round(occrdf, 2),
                                           "docctd": round(docctd, 2)}}
            if ev is not None and state in ("confirmed", "continuing"):
                events.append(ev)  # still active at the end: end = null
    events.sort(key=lambda e: e["detected_at"])
    return events, decisions


# ---------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def dir_ok(ev_dir, truth_dir) -> bool:
    return ev_dir in (truth_dir, "both") or ev_dir is None


def score_incidents(truth, events, station_hours, decisions=None):
    incs = [t for t in truth if t["kind"] == "incident"]
    evs = [e for e in (events or []) if e.get("kind") == "incident" and e.get("detected_at")]
    matched = set()
    per = []
    for t in incs:
        s, a, b = float(t["stake_m"]), ts(t["start"]), ts(t["end"]) + LATE_S
        best = None
        for i, e in enumerate(evs):
            lo = min(stake(e["from_m"]), stake(e["to_m"])) - STAKE_MARGIN_M
            hi = max(stake(e["from_m"]), stake(e["to_m"])) + STAKE_MARGIN_M
            d = ts(e["detected_at"])
            if lo <= s <= hi and a <= d <= b and dir_ok(e.get("direction"), t.get("direction")):
                matched.add(i)
                if best is None or d < best:
                    best = d
        per.append({"stake_m": t["stake_m"], "start": t["start"], "lanes": t.get("lanes"),
                    "queue_formed": t.get("queue_formed"), "detected": best is not None,
                    "ttd_s": None if best is None else round(best - a),
                    "before_end": best is not None and best <= ts(t["end"])})
    fa = len(evs) - len(matched)
    det = [p for p in per if p["detected"]]
    res = {
        "incidents": len(incs), "detected": len(det),
        "dr": (len(det) / len(incs)) if incs else None,
        "false_alarms": fa, "station_hours": station_hours,
        "fa_per_station_hour": fa / station_hours if station_hours else None,
        "mttd_s": (sum(p["ttd_s"] for p in det) / len(det)) if det else None,
        "median_ttd_s": median([p["ttd_s"] for p in det]),
        "detected_before_end": sum(p["before_end"] for p in det),
        "events": len(evs), "per_incident": per,
    }
    if decisions is not None:
        res["decisions"] = decisions
        res["far_per_decision_pct"] = 100.0 * fa / decisions if decisions else None
    return res


def score_hazmat(truth, events):
    viol = [t for t in truth if t["kind"] in HAZMAT_KINDS]
    evs = [e for e in (events or []) if e.get("kind") in HAZMAT_KINDS and e.get("detected_at")]
    used = set()
    per_kind = {k: {"truth": 0, "in_time": 0, "late": 0} for k in HAZMAT_KINDS}
    per = []
    delays = []
    for v in viol:
        k, veh, a, b = v["kind"], v["vehicle"], ts(v["start"]), ts(v["end"])
        per_kind[k]["truth"] += 1
        first = None
        for i, e in enumerate(evs):
            if e["kind"] != k or str(e.get("vehicle")) != str(veh):
                continue
            d = ts(e["detected_at"])
            if a - HAZ_EARLY_S <= d <= b + HAZ_WINDOW_S:
                used.add(i)
                if first is None or d < first:
                    first = d
        in_time = first is not None and first <= a + HAZ_WINDOW_S
        if in_time:
            per_kind[k]["in_time"] += 1
            delays.append(first - a)
        elif first is not None:
            per_kind[k]["late"] += 1
        per.append({"kind": k, "vehicle": veh, "start": v["start"], "injected": v.get("injected"),
                    "detected_after_s": None if first is None else round(first - a), "in_time": in_time})
    false = [e for i, e in enumerate(evs) if i not in used]
    n = len(viol)
    found = sum(p["in_time"] for p in per)
    return {"violations": n, "found_in_time": found, "rate": found / n if n else None,
            "late": sum(pk["late"] for pk in per_kind.values()), "false": len(false),
            "false_by_kind": {k: sum(1 for e in false if e["kind"] == k) for k in HAZMAT_KINDS},
            "mean_delay_s": sum(delays) / len(delays) if delays else None,
            "per_kind": per_kind, "per_violation": per}


def find_events(d: Path, name: str | None):
    cands = [name] if name else ["zhilu/EVENTS.jsonl", "EVENTS.jsonl"]
    for c in cands:
        p = d / c
        if p.exists():
            return p
    return None


def score_dir(d: Path, events_name: str | None):
    truth = read_jsonl(d / "TRUTH.jsonl") or []
    meta = json.loads((d / "SCENARIO.json").read_text()) if (d / "SCENARIO.json").exists() else {}
    road = tomllib.loads((d / "ROAD.toml").read_text())
    occ, times, interval, tz = load_obs(d / "OBS.csv")
    stations = len({x["id"] for x in road.get("detector", [])})
    hours = len(times) * interval / 3600.0
    sh = stations * hours
    cal7, decisions = california7(road, occ, times, interval, tz)
    with open(d / "CAL7_EVENTS.jsonl", "w") as f:
        for e in cal7:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    evp = find_events(d, events_name)
    zev = read_jsonl(evp) if evp else None
    kinds = defaultdict(int)
    for e in zev or []:
        kinds[e.get("kind")] += 1
    res = {
        "scenario": d.name, "kind": meta.get("kind"), "demand": meta.get("demand"), "seed": meta.get("seed"),
        "stations": stations, "hours": round(hours, 3), "station_hours": round(sh, 2), "interval_s": interval,
        "spacing_m": meta.get("spacing_m"),
        "california7": {"incident": score_incidents(truth, cal7, sh, decisions)},
        "zhilu": None,
    }
    if zev is not None:
        res["zhilu"] = {"events_file": str(evp), "event_kinds": dict(kinds),
                        "incident": score_incidents(truth, zev, sh), "hazmat": score_hazmat(truth, zev)}
    return res


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


def f_pct(x):
    return "—" if x is None else f"{100 * x:.0f} %"


def f_num(x, nd=3):
    return "—" if x is None else f"{x:.{nd}f}"


def f_s(x):
    return "—" if x is None else f"{x:.0f} s"


def aggregate(rows, who):
    inc = [r[who]["incident"] for r in rows if r.get(who)]
    if not inc:
        return None
    n = sum(i["incidents"] for i in inc)
    det = sum(i["detected"] for i in inc)
    fa = sum(i["false_alarms"] for i in inc)
    sh = sum(i["station_hours"] for i in inc)
    ttd = [p["ttd_s"] for i in inc for p in i["per_incident"] if p["detected"]]
    out = {"scenarios": len(inc), "incidents": n, "detected": det, "dr": det / n if n else None,
           "false_alarms": fa, "station_hours": round(sh, 2), "fa_per_station_hour": fa / sh if sh else None,
           "mttd_s": sum(ttd) / len(ttd) if ttd else None, "median_ttd_s": median(ttd),
           "detected_before_end": sum(i["detected_before_end"] for i in inc)}
    dec = sum(i.get("decisions", 0) for i in inc)
    if dec:
        out["decisions"] = dec
        out["far_per_decision_pct"] = 100.0 * fa / dec
    # DR by lanes blocked and by whether a queue formed upstream
    groups = defaultdict(lambda: [0, 0])
    for i in inc:
        for p in i["per_incident"]:
            for key in (f"lanes_blocked={len(p['lanes'] or [])}", f"queue_formed={p['queue_formed']}"):
                groups[key][0] += 1
                groups[key][1] += p["detected"]
    out["dr_by"] = {k: {"incidents": v[0], "detected": v[1], "dr": v[1] / v[0]} for k, v in sorted(groups.items())}
    return out


def markdown(results):
    L = ["| scenario | kind | demand | incidents | zhilu DR | zhilu FA (per st-h) | zhilu MTTD | "
         "Cal#7 DR | Cal#7 FA (per st-h) | Cal#7 MTTD | hazmat found ≤2 min | hazmat false |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        c = r["california7"]["incident"]
        z = r["zhilu"]["incident"] if r["zhilu"] else None
        h = r["zhilu"]["hazmat"] if r["zhilu"] else None
        hz = "—" if not h or not h["violations"] and not h["false"] else f"{h['found_in_time']}/{h['violations']}"
        L.append(
            f"| {r['scenario']} | {r['kind']} | {r['demand'] if r['kind'] != 'bottleneck' else 'bottleneck'} | {c['incidents']} | "
            + (f"{f_pct(z['dr'])} | {z['false_alarms']} ({f_num(z['fa_per_station_hour'])}) | {f_s(z['mttd_s'])} | " if z else "— | — | — | ")
            + f"{f_pct(c['dr'])} | {c['false_alarms']} ({f_num(c['fa_per_station_hour'])}) | {f_s(c['mttd_s'])} | "
            + f"{hz} | {'—' if not h else h['false']} |"
        )
    return "\n".join(L)


def summary_md(summary):
    L = ["", "| scenario kind | detector | scenarios | incidents | DR | detected before end | false alarms | FA per station-hour | FA per decision | MTTD | median TTD |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind, per in summary["by_kind"].items():
        for who in ("zhilu", "california7"):
            a = per.get(who)
            if not a:
                continue
            far = a.get("far_per_decision_pct")
            L.append(f"| {kind} | {who} | {a['scenarios']} | {a['incidents']} | {f_pct(a['dr'])} | {a['detected_before_end']} | "
                     f"{a['false_alarms']} | {f_num(a['fa_per_station_hour'], 4)} | {'—' if far is None else f'{far:.4f} %'} | "
                     f"{f_s(a['mttd_s'])} | {f_s(a['median_ttd_s'])} |")
        dr_by = (per.get("california7") or {}).get("dr_by") or {}
        zdr = (per.get("zhilu") or {}).get("dr_by") or {}
        if kind == "all" and dr_by:
            L += ["", "| incidents by | n | zhilu DR | California #7 DR |", "|---|---|---|---|"]
            for key, v in dr_by.items():
                L.append(f"| {key} | {v['incidents']} | {f_pct(zdr[key]['dr']) if key in zdr else '—'} | {f_pct(v['dr'])} |")
    hz = summary.get("hazmat")
    if hz:
        L += ["", f"Hazmat (zhilu): {hz['found_in_time']}/{hz['violations']} violations found within 2 min of start, "
              f"{hz['late']} late, {hz['false']} false; by kind: "
              + ", ".join(f"{k} {v['in_time']}/{v['truth']}" for k, v in hz["per_kind"].items())]
    return "\n".join(L)


def summarise(results):
    kinds = defaultdict(list)
    for r in results:
        kinds[r["kind"] or "?"].append(r)
    by_kind = {}
    for k, rows in list(kinds.items()) + [("all", results)]:
        by_kind[k] = {who: aggregate(rows, who) for who in ("zhilu", "california7")}
    hz = None
    hrows = [r["zhilu"]["hazmat"] for r in results if r["zhilu"]]
    if hrows:
        hz = {"violations": sum(h["violations"] for h in hrows), "found_in_time": sum(h["found_in_time"] for h in hrows),
              "late": sum(h["late"] for h in hrows), "false": sum(h["false"] for h in hrows),
              "per_kind": {k: {x: sum(h["per_kind"][k][x] for h in hrows) for x in ("truth", "in_time", "late")}
                           for k in HAZMAT_KINDS}}
    return {"by_kind": by_kind, "hazmat": hz,
            "rules": {"incident_match": f"event [from_m-{STAKE_MARGIN_M:.0f}, to_m+{STAKE_MARGIN_M:.0f}] contains stake and "
                                        f"detected_at in [start, end+{LATE_S}s]",
                      "hazmat_match": f"same kind and vehicle, detected_at in [start-{HAZ_EARLY_S}s, start+{HAZ_WINDOW_S}s]",
                      "california7": {"T1": T1, "T2": T2, "T3": T3}}}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dirs", nargs="*", type=Path)
    p.add_argument("--suite", type=Path, help="score every sub-folder holding a TRUTH.jsonl")
    p.add_argument("--events", help="platform events file inside each folder (default zhilu/EVENTS.jsonl, EVENTS.jsonl)")
    p.add_argument("--md", type=Path, help="write the markdown report here")
    p.add_argument("--json", type=Path, help="write the JSON summary here")
    a = p.parse_args(argv)
    dirs = list(a.dirs)
    if a.suite:
        dirs += sorted(x for x in a.suite.iterdir() if (x / "TRUTH.jsonl").exists())
    if not dirs:
        p.error("no scenario folders given")
    results = [score_dir(d, a.events) for d in dirs]
    summary = summarise(results)
    md = "## Per scenario\n\n" + markdown(results) + "\n\n## Summary\n" + summary_md(summary) + "\n"
    print(md)
    if a.md:
        a.md.write_text(md)
    if a.json:
        a.json.write_text(json.dumps({"summary": summary, "scenarios": results}, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    sys.exit(main())
