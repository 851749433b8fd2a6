#!/usr/bin/env bash
# The issue-3 validation and test sets (scenarios/sets.txt), one SUMO process at a time.
#   scenarios/gen_set.sh val|test|test2|test3 [OUT_DIR] generate a set (default scenarios/out-<set>); existing days are kept
#   scenarios/gen_set.sh replay DIR...            replay every day in DIR... with zhilu (ZHILU, default
#                                                 target/release/zhilu), with CAM.csv → <day>/zhilu/ and
#                                                 without → <day>/zhilu-nocam/; then score with table.py
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PY="$HERE/.venv/bin/python"
if [ "${1:-}" = replay ]; then
  shift
  ZHILU="${ZHILU:-$ROOT/target/release/zhilu}"
  days=()
  for s in "$@"; do
    for d in "$s"/*/; do
      d="${d%/}"; [ -f "$d/TRUTH.jsonl" ] || continue
      days+=("$d")
      mkdir -p "$d/zhilu" "$d/zhilu-nocam"
      "$ZHILU" replay --road "$d/ROAD.toml" --observations "$d/OBS.csv" --positions "$d/POS.csv" \
        --camera-events "$d/CAM.csv" --events-out "$d/zhilu/EVENTS.jsonl" --actions-out "$d/zhilu/ACTIONS.jsonl" \
        > "$d/zhilu/replay.log" 2>&1
      "$ZHILU" replay --road "$d/ROAD.toml" --observations "$d/OBS.csv" --positions "$d/POS.csv" \
        --events-out "$d/zhilu-nocam/EVENTS.jsonl" --actions-out "$d/zhilu-nocam/ACTIONS.jsonl" \
        > "$d/zhilu-nocam/replay.log" 2>&1
    done
  done
  exec "$PY" "$HERE/table.py" --events zhilu-nocam/EVENTS.jsonl --events zhilu/EVENTS.jsonl "${days[@]}"
fi
SET="$1"; OUT="${2:-$HERE/out-$SET}"
mkdir -p "$OUT"
grep -v '^#' "$HERE/sets.txt" | awk -F'|' -v s="$SET" '$1 == s' | while IFS='|' read -r _ name args; do
  [ -f "$OUT/$name/TRUTH.jsonl" ] && { echo "   $name: exists"; continue; }
  s=$(date +%s); rm -rf "$OUT/$name"
  if "$PY" "$HERE/sumo_suite.py" $args --out "$OUT/$name" > "$OUT/$name.gen.log" 2>&1; then
    echo "   $name: $(( $(date +%s) - s )) s"
  else
    echo "   $name: FAILED (see $OUT/$name.gen.log)"
  fi
done
