#!/usr/bin/env python3
"""Scores detector_fault events against a generated day's TRUTH.jsonl.

usage: score_faults.py TRUTH.jsonl EVENTS.jsonl [OBS.csv]

A truth fault is found when an event for the same detector is raised within
5 minutes after it starts. Reports found / missed / false, and the time to
detect. Faults injected while the detector's lanes carried < 400 veh/h are
listed as "quiet" (the zero-flow rule deliberately does not fire then).
"""
import json, sys
from datetime import datetime

def t(s):
    return datetime.fromisoformat(s).timestamp()

truth = [t for t in (json.loads(l) for l in open(sys.argv[1]) if l.strip()) if t.get("kind") == "detector_fault"]
events = [json.loads(l) for l in open(sys.argv[2]) if l.strip() and '"detector_fault"' in l]
used = set()
delays = []
missed = []
for f in truth:
    start = t(f["start"])
    hit = None
    for i, e in enumerate(events):
        if e["detector"] == f["detector"] and 0 <= t(e["detected_at"]) - start <= 300:
            hit = i
            break
    if hit is None:
        # An episode already open when the fault started also counts.
        for i, e in enumerate(events):
            end = t(e["end"]) if e["end"] else float("inf")
            if e["detector"] == f["detector"] and t(e["detected_at"]) <= start <= end:
                hit = i
                break
    if hit is None:
        missed.append(f)
    else:
        used.add(hit)
        delays.append(max(0.0, t(events[hit]["detected_at"]) - start))
false = [e for i, e in enumerate(events) if i not in used]
print(f"faults injected {len(truth)}, found {len(truth) - len(missed)}, missed {len(missed)}, false alarms {len(false)}")
if delays:
    print(f"time to detect: mean {sum(delays) / len(delays):.0f} s, max {max(delays):.0f} s")
for f in missed:
    print("missed:", json.dumps(f, ensure_ascii=False))
for e in false[:10]:
    print("false:", e["detector"], e["start"], e["evidence"]["rules"])
