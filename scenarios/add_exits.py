#!/usr/bin/env python3
"""Adds the `[[exit]]` tables (zhilu's off-ramp extension) to ROAD.toml files
written by sumo_suite.py before it wrote them: the off-ramps' stakes follow
from the day's length (SCENARIO.json `length_m`), as in sumo_suite.Layout.

  scenarios/add_exits.py DAY_DIR...
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sumo_suite import Layout  # noqa: E402

for d in map(Path, sys.argv[1:]):
    road = d / "ROAD.toml"
    text = road.read_text(encoding="utf-8")
    if "[[exit]]" in text:
        continue
    meta = json.loads((d / "SCENARIO.json").read_text(encoding="utf-8"))
    lay = Layout(int(meta["length_m"]), int(meta["spacing_m"]))
    block = "".join(f'\n[[exit]]\nid = "{xid}"\nstake_m = {s}\ndirections = ["up"]\n' for xid, s in lay.offramps)
    assert "\n[[tunnel]]" in text, road
    road.write_text(text.replace("\n[[tunnel]]", block + "\n[[tunnel]]", 1), encoding="utf-8")
    print(f"{road}: {len(lay.offramps)} exits")
