#!/usr/bin/env bash
# Regenerate the small committed fixtures (need SUMO in scenarios/.venv).
# Each is one simulated hour on a 10-km corridor with 9 stations, well under 1.5 MB (40 % of ordinary trucks report positions; all hazmat do).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="$HERE/.venv/bin/python"
F="$HERE/fixtures"
rm -rf "$F/incident-small" "$F/bottleneck-small"
"$PY" "$HERE/sumo_suite.py" --kind incident --seed 11 --demand heavy --length 10000 --hours 1 \
  --incidents 1 --lanes-blocked 2 --min-incident-min 15 --max-incident-min 20 --camera-share 1 \
  --pos-share 0.4 --no-keep-sumo --out "$F/incident-small"
"$PY" "$HERE/sumo_suite.py" --kind bottleneck --seed 12 --length 10000 --hours 1 \
  --pos-share 0.4 --no-keep-sumo --out "$F/bottleneck-small"
# California #7 reference alarms (CAL7_EVENTS.jsonl) next to each fixture
"$PY" "$HERE/score.py" "$F/incident-small" "$F/bottleneck-small" > /dev/null
du -sh "$F"/*
