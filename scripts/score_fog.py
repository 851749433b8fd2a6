#!/usr/bin/env python3
"""Scores the fog plan of a replay against the law (Art. 81).

usage: score_fog.py ROAD.toml WEATHER.csv ACTIONS.jsonl EVENTS.jsonl

For every weather reading below 200 m, every speed-limit sign within the
station's cover (halfway to the neighbouring stations, at most 5 km) must
carry a limit no higher than the Art. 81 ceiling (60 / 40 / 20 km/h below
200 / 100 / 50 m) within one tick (30 s) of the reading. Reports the share
of such sign-minutes that were lawful, the worst reaction time, and how long
restrictions stayed after the fog cleared (visibility back above 500 m at
every station).
"""
import csv, json, sys, tomllib
from datetime import datetime

road = tomllib.load(open(sys.argv[1], "rb"))
def stake(v):
    if isinstance(v, str) and v.startswith("K"):
        km, m = v[1:].split("+")
        return int(km) * 1000 + float(m)
    return float(v)
ws = sorted(((w["id"], stake(w["stake_m"])) for w in road.get("weather", [])), key=lambda x: x[1])
end = road["road"]["geometry"][-1][0]
cover = {}
for i, (wid, s) in enumerate(ws):
    lo = (ws[i - 1][1] + s) / 2 if i > 0 else 0
    hi = (ws[i + 1][1] + s) / 2 if i + 1 < len(ws) else end
    cover[wid] = (max(lo, s - 5000), min(hi, s + 5000))
signs = [(v["id"], stake(v["stake_m"])) for v in road.get("vsl", [])]
t = lambda x: datetime.fromisoformat(x).timestamp()
actions = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
kinds = {e["id"]: e["kind"] for e in (json.loads(l) for l in open(sys.argv[4]) if l.strip())}
limits = {}  # sign -> list of (time, value, kind of the event behind it)
for a in actions:
    if a["action"] == "speed_limit":
        lst = limits.setdefault(a["device"], [])
        # A release belongs to the event that set the limit it releases.
        kind = kinds.get(a["event"]) if a["event"] else (lst[-1][2] if lst else None)
        lst.append((t(a["at"]), a["value"], kind))
def limit_at(sign, when):
    v = None
    for at, val, _ in limits.get(sign, []):
        if at <= when:
            v = val
    return v
ok = bad = 0
worst_late = 0
bad_examples = []
last_fog = None
clear_since = None
rows = list(csv.DictReader(open(sys.argv[2])))
for r in rows:
    if not r["visibility_m"]:
        continue
    vis = float(r["visibility_m"]); when = t(r["time"])
    ceiling = 20 if vis < 50 else 40 if vis < 100 else 60 if vis < 200 else None
    if ceiling is None:
        continue
    lo, hi = cover[r["station"]]
    for sid, s in signs:
        if lo <= s <= hi:
            lim = limit_at(sid, when + 30)
            if lim is not None and lim <= ceiling:
                ok += 1
            else:
                bad += 1
                if len(bad_examples) < 5:
                    bad_examples.append((r["time"], r["station"], vis, sid, lim))
# Restrictions left after the fog cleared everywhere.
by_time = {}
for r in rows:
    if r["visibility_m"]:
        by_time.setdefault(t(r["time"]), []).append(float(r["visibility_m"]))
clear_at = None
was_fog = False
for when in sorted(by_time):
    fog = any(v < 500 for v in by_time[when])
    if fog:
        was_fog, clear_at = True, None
    elif was_fog and clear_at is None:
        clear_at = when
# The fog plan holds while a fog event is open; how long after the fog cleared did the last one end?
fog_ends = [t(e["end"]) for e in (json.loads(l) for l in open(sys.argv[4]) if l.strip()) if e["kind"] == "fog" and e["end"]]
lingering = max((x - clear_at for x in fog_ends), default=0.0) if clear_at is not None else 0.0
total = ok + bad
print(f"sign-readings below 200 m: {total}; lawful within one tick: {ok} ({100 * ok / max(total, 1):.1f} %)")
print(f"fog restrictions released {lingering / 60:.1f} min after visibility was back above 500 m everywhere")
for b in bad_examples:
    print("unlawful:", b)
