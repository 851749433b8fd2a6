#!/usr/bin/env bash
# Generate the SUMO scenario suite, replay it through zhilu, score zhilu and
# California #7.  Usage: scenarios/run_suite.sh [OUT_DIR]   (default scenarios/out)
# Environment: JOBS (parallel SUMO runs, default 2), ZHILU (binary, default
# target/release/zhilu), SKIP_GEN=1 (re-replay and re-score existing output only).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUT="${1:-$HERE/out}"
JOBS="${JOBS:-2}"
ZHILU="${ZHILU:-$ROOT/target/release/zhilu}"
PY="$HERE/.venv/bin/python"
[ -x "$PY" ] || { echo "run_suite: missing $PY — python3 -m venv $HERE/.venv && $HERE/.venv/bin/pip install eclipse-sumo traci libsumo" >&2; exit 2; }
mkdir -p "$OUT"

# name | sumo_suite.py arguments
SUITE=$(cat <<'EOF'
inc01-light|--kind incident --seed 101 --demand light --incidents 2 --lanes-blocked 1
inc02-light|--kind incident --seed 102 --demand light --incidents 2 --lanes-blocked mixed
inc03-light|--kind incident --seed 103 --demand light --incidents 2 --lanes-blocked 2
inc04-medium|--kind incident --seed 104 --demand medium --incidents 2 --lanes-blocked 1
inc05-medium|--kind incident --seed 105 --demand medium --incidents 2 --lanes-blocked mixed
inc06-medium|--kind incident --seed 106 --demand medium --incidents 2 --lanes-blocked 2
inc07-medium|--kind incident --seed 107 --demand medium --incidents 2 --lanes-blocked mixed
inc08-heavy|--kind incident --seed 108 --demand heavy --incidents 2 --lanes-blocked 1
inc09-heavy|--kind incident --seed 109 --demand heavy --incidents 2 --lanes-blocked mixed
inc10-heavy|--kind incident --seed 110 --demand heavy --incidents 2 --lanes-blocked 2
bot01|--kind bottleneck --seed 201
bot02|--kind bottleneck --seed 202
bot03|--kind bottleneck --seed 203 --bottleneck-main 0.9 --bottleneck-ramp 1900
quiet01-medium|--kind quiet --seed 301 --demand medium
quiet02-heavy|--kind quiet --seed 302 --demand heavy
hazmat01|--kind hazmat --seed 401 --demand medium
hazmat02|--kind hazmat --seed 402 --demand light
EOF
)

t0=$(date +%s)
if [ "${SKIP_GEN:-0}" != 1 ]; then
  echo "== generating $(echo "$SUITE" | wc -l) scenarios into $OUT with $JOBS parallel SUMO runs"
  export PY OUT HERE
  echo "$SUITE" | xargs -P "$JOBS" -I{} bash -c '
    line="{}"; name="${line%%|*}"; args="${line#*|}"
    s=$(date +%s)
    rm -rf "$OUT/$name"
    if "$PY" "$HERE/sumo_suite.py" $args --out "$OUT/$name" > "$OUT/$name.gen.log" 2>&1; then
      echo "   $name: $(( $(date +%s) - s )) s"
    else
      echo "   $name: FAILED (see $OUT/$name.gen.log)"; exit 1
    fi'
fi
t1=$(date +%s)

if [ -x "$ZHILU" ]; then
  echo "== replaying with $ZHILU"
  for d in "$OUT"/*/; do
    d="${d%/}"; [ -f "$d/TRUTH.jsonl" ] || continue
    mkdir -p "$d/zhilu"
    if "$ZHILU" replay --road "$d/ROAD.toml" --observations "$d/OBS.csv" --positions "$d/POS.csv" \
        --camera-events "$d/CAM.csv" --events-out "$d/zhilu/EVENTS.jsonl" --actions-out "$d/zhilu/ACTIONS.jsonl" \
        > "$d/zhilu/replay.log" 2>&1; then
      echo "   $(basename "$d"): $(tail -n 1 "$d/zhilu/replay.log")"
    else
      echo "   $(basename "$d"): zhilu replay FAILED: $(tail -n 1 "$d/zhilu/replay.log")"
    fi
    # the same day without camera events: what the loops (and positions) alone find
    mkdir -p "$d/zhilu-nocam"
    "$ZHILU" replay --road "$d/ROAD.toml" --observations "$d/OBS.csv" --positions "$d/POS.csv" \
        --events-out "$d/zhilu-nocam/EVENTS.jsonl" --actions-out "$d/zhilu-nocam/ACTIONS.jsonl" \
        > "$d/zhilu-nocam/replay.log" 2>&1 || echo "   $(basename "$d"): no-camera replay FAILED"
  done
else
  echo "== $ZHILU not found: scoring California #7 only"
fi
t2=$(date +%s)
if [ -x "$ZHILU" ]; then
  bad=$(grep -l -E '\([1-9][0-9]* bad\)' "$OUT"/*/zhilu/replay.log 2>/dev/null || true)
  if [ -n "$bad" ]; then echo "== bad rows reported in: $bad"; else echo "== zhilu reported 0 bad rows in every input file"; fi
fi

echo "== scoring"
"$PY" "$HERE/score.py" --suite "$OUT" --md "$OUT/REPORT.md" --json "$OUT/SUMMARY.json" > /dev/null
if [ -x "$ZHILU" ]; then
  "$PY" "$HERE/score.py" --suite "$OUT" --events zhilu-nocam/EVENTS.jsonl \
    --md "$OUT/REPORT-nocam.md" --json "$OUT/SUMMARY-nocam.json" > /dev/null
fi
cat "$OUT/REPORT.md"
[ -f "$OUT/REPORT-nocam.md" ] && { echo; echo "## zhilu without camera events"; sed -n '/## Summary/,$p' "$OUT/REPORT-nocam.md"; }
echo "== generation $((t1 - t0)) s, replay $((t2 - t1)) s, scoring $(( $(date +%s) - t2 )) s; report: $OUT/REPORT.md, $OUT/SUMMARY.json"
