#!/usr/bin/env python3
"""Issue-3 table: one row per detector over a set of scenario folders.

    scenarios/.venv/bin/python scenarios/table.py --events zl/EVENTS.jsonl [--events zlc/EVENTS.jsonl] [-v] DIR...

Columns: DR, 1-lane / 2-lane blocks, no queue / queue (TRUTH `queue_formed`),
false alarms per station-hour over all days / over bottleneck (merge-jam)
days, MTTD mean (median). California #7 is computed by score.py on the same
OBS files. -v lists every incident and every false alarm.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import score  # noqa: E402


def pct(a, b):
    return "—" if b == 0 else f"{100.0 * a / b:.0f} % ({a}/{b})"


def row(name, results, key):
    inc = [(r, p) for r in results for p in r[key]["incident"]["per_incident"]]
    det = [p for _, p in inc if p["detected"]]
    one = [p for _, p in inc if len(p["lanes"] or []) == 1]
    two = [p for _, p in inc if len(p["lanes"] or []) >= 2]
    nq = [p for _, p in inc if not p["queue_formed"]]
    q = [p for _, p in inc if p["queue_formed"]]
    d = lambda xs: sum(1 for p in xs if p["detected"])
    fa = sum(r[key]["incident"]["false_alarms"] for r in results)
    sh = sum(r["station_hours"] for r in results)
    bot = [r for r in results if r["kind"] == "bottleneck"]
    fab = sum(r[key]["incident"]["false_alarms"] for r in bot)
    shb = sum(r["station_hours"] for r in bot)
    ttd = sorted(p["ttd_s"] for p in det)
    mttd = f"{sum(ttd) / len(ttd):.0f} s ({score.median(ttd):.0f} s)" if ttd else "—"
    return (f"| {name} | {pct(len(det), len(inc))} | {pct(d(one), len(one))} / {pct(d(two), len(two))} | "
            f"{pct(d(nq), len(nq))} / {pct(d(q), len(q))} | {fa / sh:.4f} ({fa}) / "
            f"{(fab / shb) if shb else float('nan'):.4f} ({fab}) | {mttd} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--events", action="append", default=[])
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    dirs = [d for d in a.dirs if (d / "TRUTH.jsonl").exists()]
    per_events = {e: [score.score_dir(d, e) for d in dirs] for e in a.events}
    base = per_events[a.events[0]] if a.events else [score.score_dir(d, None) for d in dirs]
    print("| detector | DR | 1-lane / 2-lane | no queue / queue | FA per station-hour all / merge-jam days | MTTD mean (median) |")
    print("|---|---|---|---|---|---|")
    print(row("California #7", base, "california7"))
    for e, res in per_events.items():
        print(row(e, res, "zhilu"))
    if a.v:
        for e, res in per_events.items():
            print(f"\n## {e}")
            for r in res:
                zi = r["zhilu"]["incident"]
                for p in zi["per_incident"]:
                    print(f"  {r['scenario']:14s} {p['stake_m']:>6} lanes={p['lanes']} q={p['queue_formed']!s:5} "
                          f"{p['start'][11:19]} ttd={p['ttd_s']}")
                if zi["false_alarms"]:
                    truth = score.read_jsonl(Path(r["zhilu"]["events_file"]).parent.parent / "TRUTH.jsonl") or []
                    evs = score.read_jsonl(Path(r["zhilu"]["events_file"])) or []
                    for ev in evs:
                        if ev.get("kind") != "incident":
                            continue
                        hit = any(t["kind"] == "incident" and
                                  min(ev["from_m"], ev["to_m"]) - 1000 <= t["stake_m"] <= max(ev["from_m"], ev["to_m"]) + 1000 and
                                  score.ts(t["start"]) <= score.ts(ev["detected_at"]) <= score.ts(t["end"]) + score.LATE_S
                                  for t in truth)
                        if not hit:
                            print(f"  {r['scenario']:14s} FALSE {ev['from_m']}-{ev['to_m']} at {ev['detected_at'][11:19]} "
                                  f"{ev.get('rule') or ev.get('evidence', {}).get('rule')}")


if __name__ == "__main__":
    main()
