#!/usr/bin/env python3
"""Exports what a zhilu server stored in its SQLite database (the demo's
`--database sqlite:///tmp/demo.db`, or a live centre's) as the replay
contract's OBS.csv, WEATHER.csv and POS.csv, so that the day can be
replayed offline, deterministically:

  scripts/export_day.py /tmp/demo.db /tmp/day
  zhilu replay --road examples/demo/ROAD.toml --observations /tmp/day/OBS.csv \\
      --weather /tmp/day/WEATHER.csv --positions /tmp/day/POS.csv \\
      --events-out /tmp/day/EVENTS.jsonl --actions-out /tmp/day/ACTIONS.jsonl

Times are written in the offset given by --tz (default +08:00).
"""
import argparse
import datetime as dt
import os
import sqlite3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("database")
    p.add_argument("out")
    p.add_argument("--tz", default="+08:00")
    a = p.parse_args()
    sign = -1 if a.tz.startswith("-") else 1
    hh, mm = a.tz.lstrip("+-").split(":")
    tz = dt.timezone(sign * dt.timedelta(hours=int(hh), minutes=int(mm)))
    os.makedirs(a.out, exist_ok=True)
    db = sqlite3.connect(f"file:{a.database}?mode=ro", uri=True)

    def iso(ms: int) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, tz).isoformat()

    def num(x) -> str:
        return "" if x is None else (f"{x:.1f}" if isinstance(x, float) else str(x))

    tables = [
        ("OBS.csv", "time,detector,lane,interval_s,volume,speed_kmh,occupancy_pct",
         "select ts_ms, detector, lane, interval_s, volume, speed_kmh, occupancy_pct from obs order by ts_ms, seq"),
        ("WEATHER.csv", "time,station,visibility_m,surface_temp_c,air_temp_c,humidity_pct,surface_state",
         "select ts_ms, station, visibility_m, surface_temp_c, air_temp_c, humidity_pct, surface_state from weather order by ts_ms, seq"),
        ("POS.csv", "time,vehicle,class,lat,lon,speed_kmh,heading_deg",
         "select ts_ms, vehicle, class, lat, lon, speed_kmh, heading_deg from positions order by ts_ms, seq"),
    ]
    for name, header, query in tables:
        n = 0
        with open(os.path.join(a.out, name), "w", encoding="utf-8") as f:
            f.write(header + "\n")
            for row in db.execute(query):
                cells = [iso(row[0])] + [num(x) if not isinstance(x, str) else x for x in row[1:]]
                f.write(",".join(cells) + "\n")
                n += 1
        print(f"{name}: {n} rows")


if __name__ == "__main__":
    main()
