#!/usr/bin/env bash
# Generates N simulated days (40 stations, all files) and scores detector
# faults, the fog plan and the vehicle rules on each.
# usage: scripts/score_days.sh [N] [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5}; out=${2:-out/score-days}
bin=./target/release/zhilu
[ -x "$bin" ] || cargo build --release
for seed in $(seq 1 "$n"); do
  d="$out/seed$seed"
  "$bin" gen-day --out "$d" --stations 40 --seed "$seed" 2>/dev/null
  "$bin" replay --road "$d/ROAD.toml" --observations "$d/OBS.csv" --weather "$d/WEATHER.csv" \
    --positions "$d/POS.csv" --camera-events "$d/CAM.csv" --events-out "$d/EVENTS.jsonl" --actions-out "$d/ACTIONS.jsonl" 2>/dev/null
  echo "== seed $seed"
  python3 scripts/score_faults.py "$d/TRUTH.jsonl" "$d/EVENTS.jsonl" | head -2
  python3 scripts/score_fog.py "$d/ROAD.toml" "$d/WEATHER.csv" "$d/ACTIONS.jsonl" "$d/EVENTS.jsonl" | head -2
  python3 scripts/score_vehicles.py "$d/TRUTH.jsonl" "$d/EVENTS.jsonl" | head -3
  echo "incidents raised (none staged): $(grep -c '"kind":"incident"' "$d/EVENTS.jsonl" || true)"
done
