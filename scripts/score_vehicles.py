#!/usr/bin/env python3
"""Scores hazardous-goods and wrong-way events against TRUTH.jsonl.

usage: score_vehicles.py TRUTH.jsonl EVENTS.jsonl

A staged violation is found when an event of the same kind for the same
vehicle is raised no earlier than 30 s before and no later than 2 min after
it became a violation (`start` in the truth). Prints found / missed / false
and the delays.
"""
import json, sys
from datetime import datetime

KINDS = {"hazmat_speeding", "hazmat_stopped", "hazmat_restricted_zone", "hazmat_driving_time", "wrong_way"}
t = lambda s: datetime.fromisoformat(s).timestamp()
truth = [x for x in (json.loads(l) for l in open(sys.argv[1]) if l.strip()) if x.get("kind") in KINDS]
events = [x for x in (json.loads(l) for l in open(sys.argv[2]) if l.strip()) if x.get("kind") in KINDS]
used, delays, missed = set(), [], []
for v in truth:
    s = t(v["start"])
    hit = next((i for i, e in enumerate(events) if i not in used and e["kind"] == v["kind"] and e.get("vehicle") == v["vehicle"] and -30 <= t(e["detected_at"]) - s <= 120), None)
    if hit is None:
        missed.append(v)
    else:
        used.add(hit)
        delays.append(t(events[hit]["detected_at"]) - s)
false = [e for i, e in enumerate(events) if i not in used]
print(f"violations staged {len(truth)}, found within 2 min {len(truth) - len(missed)}, missed {len(missed)}, false {len(false)}"
      + (f"; delay mean {sum(delays) / len(delays):.0f} s, max {max(delays):.0f} s" if delays else ""))
for m in missed:
    print("missed:", json.dumps(m, ensure_ascii=False))
for f in false[:5]:
    print("false:", f["kind"], f.get("vehicle"), f["detected_at"])
