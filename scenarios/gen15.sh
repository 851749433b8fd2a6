#!/usr/bin/env bash
# Issue 15's evaluation sets: the `set15` template in scenarios/sets.txt, one SUMO process at a time (nice 10).
#
#   scenarios/gen15.sh val15  [OUT]     validation set, SEED15=1500 (default OUT /work/sets/val15)
#   scenarios/gen15.sh test15 [OUT]     test set with fresh seeds: SEED15 from the environment, else drawn now;
#                                       either way written to OUT/MANIFEST.tsv (default OUT /work/sets/test15)
#   ONLY="a1k-light x-quiet" scenarios/gen15.sh ...   only these days (and what they derive from)
#   scenarios/gen15.sh replay DIR [ZHILU [NAME]]   replay every day of DIR with zhilu (default target/release/zhilu,
#                                       else target/debug/zhilu) into DIR/<day>/NAME/ (default zhilu), then
#                                       score15.py → DIR/SCORE-NAME.md, .json, -verbose.md
#                                       (val15's baseline of main is in <day>/zhilu-main/, BASELINE.md)
#
# Days already holding a TRUTH.jsonl are kept. OUT/READY-partial lists the first 6 days as soon as they exist,
# OUT/READY is written when every day exists. OUT/MANIFEST.tsv: day, seconds, the exact command.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PY="$HERE/.venv/bin/python"
[ -x "$PY" ] || { echo "gen15: missing $PY (see scenarios/README.md, Set up)" >&2; exit 2; }

if [ "${1:-}" = replay ]; then
  DIR="$2"
  ZHILU="${3:-${ZHILU:-}}"
  NAME="${4:-zhilu}"
  if [ -z "$ZHILU" ]; then
    ZHILU="$ROOT/target/release/zhilu"; [ -x "$ZHILU" ] || ZHILU="$ROOT/target/debug/zhilu"
  fi
  for d in "$DIR"/*/; do
    d="${d%/}"; [ -f "$d/TRUTH.jsonl" ] || continue
    mkdir -p "$d/$NAME"
    road="$d/ROAD.toml"
    extra=()
    [ -f "$d/WEATHER.csv" ] && extra+=(--weather "$d/WEATHER.csv")
    run() {
      "$ZHILU" replay --road "$1" --observations "$d/OBS.csv" --positions "$d/POS.csv" --camera-events "$d/CAM.csv" \
        "${extra[@]}" --events-out "$d/$NAME/EVENTS.jsonl" --actions-out "$d/$NAME/ACTIONS.jsonl" > "$d/$NAME/replay.log" 2>&1
    }
    if ! run "$road"; then
      if grep -q 'from_m\|to_m\|directions' "$d/$NAME/replay.log" && grep -q '^from_m' "$road"; then
        # a zhilu without the service-area extent (issue 15) rejects the keys: replay the contract road book
        awk '/^\[\[service_area\]\]/{sa=1} /^\[/ && !/^\[\[service_area\]\]/{sa=0} !(sa && /^(from_m|to_m|directions) =/)' \
          "$road" > "$d/$NAME/ROAD-contract.toml"
        run "$d/$NAME/ROAD-contract.toml" || echo "   $(basename "$d"): replay FAILED: $(tail -n 1 "$d/$NAME/replay.log")"
        echo "   $(basename "$d"): replayed without the service-area extent (this zhilu rejects the keys)"
      else
        echo "   $(basename "$d"): replay FAILED: $(tail -n 1 "$d/$NAME/replay.log")"
      fi
    fi
  done
  "$PY" "$HERE/score15.py" --set "$DIR" --events "$NAME/EVENTS.jsonl" --json "$DIR/SCORE-$NAME.json" -v \
    > "$DIR/SCORE-$NAME-verbose.md"
  exec "$PY" "$HERE/score15.py" --set "$DIR" --events "$NAME/EVENTS.jsonl" --md "$DIR/SCORE-$NAME.md"
fi

SET="${1:?usage: gen15.sh val15|test15 [OUT] | replay DIR [ZHILU]}"
case "$SET" in
  val15) BASE=1500 ;;
  test15) BASE="${SEED15:-$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') ))}" ;;
  *) echo "gen15: unknown set $SET (val15 or test15)" >&2; exit 2 ;;
esac
[ "$SET" = val15 ] && [ -n "${SEED15:-}" ] && [ "$SEED15" != 1500 ] && { echo "gen15: val15 is SEED15=1500" >&2; exit 2; }
OUT="${2:-/work/sets/$SET}"
mkdir -p "$OUT/_base"
echo "# $SET SEED15=$BASE generated $(date -u +%FT%TZ) by $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" >> "$OUT/MANIFEST.tsv"
lines=$(grep '^set15|' "$HERE/sets.txt")
want="${ONLY:-}"
if [ -n "$want" ]; then  # the days asked for and what they derive from
  for w in $want; do
    src=$(echo "$lines" | awk -F'|' -v n="$w" '$2 == n && $3 == "inject" {print $4}')
    [ -n "$src" ] && want="$want $src"
  done
fi
t_all=$(date +%s)
timed() {  # run "$@", its CPU seconds (user, system) into $CPUF when /usr/bin/time is there
  if [ -x /usr/bin/time ]; then /usr/bin/time -f '%U %S' -o "$CPUF" "$@"; else "$@"; fi
}
made=()
while IFS='|' read -r _ name how a b; do
  if [ -n "$want" ] && ! echo " $want " | grep -q " $name "; then continue; fi
  expand() { "$PY" -c 'import re, sys; b = int(sys.argv[2]); print(re.sub(r"@(\d+)", lambda m: str(b + int(m.group(1))), sys.argv[1]))' "$1" "$BASE"; }
  d="$OUT/$name"
  if [ -f "$d/TRUTH.jsonl" ]; then
    echo "   $name: exists"
  else
    s=$(date +%s)
    if [ "$how" = sumo ]; then
      args=$(expand "$a")
      cmd="sumo_suite.py $args --no-keep-sumo --out $d"
      CPUF="$d.cpu"
      # shellcheck disable=SC2086
      if timed nice -n 10 "$PY" "$HERE/sumo_suite.py" $args --no-keep-sumo --out "$d" < /dev/null > "$d.gen.log" 2>&1; then ok=1; else ok=0; fi
    else
      args=$(expand "$b")
      cmd="inject.py ${args%% *} $OUT/$a $d ${args#* }"
      CPUF="$d.cpu"
      # shellcheck disable=SC2086
      if timed "$PY" "$HERE/inject.py" ${args%% *} "$OUT/$a" "$d" ${args#* } < /dev/null > "$d.gen.log" 2>&1; then ok=1; else ok=0; fi
    fi
    sec=$(( $(date +%s) - s ))
    cpu=$(awk '{printf "%.0f", $1 + $2}' "$d.cpu" 2>/dev/null || echo '?'); rm -f "$d.cpu"
    if [ $ok = 1 ]; then
      echo "   $name: $sec s (CPU $cpu s)"; printf '%s\t%s\t%s\t%s\n' "$name" "$sec" "$cpu" "$cmd" >> "$OUT/MANIFEST.tsv"
    else
      echo "   $name: FAILED (see $d.gen.log)"; exit 1
    fi
  fi
  case "$name" in _base/*) ;; *) made+=("$name") ;; esac
  if [ -z "$want" ] && [ ${#made[@]} -eq 6 ] && [ ! -f "$OUT/READY-partial" ]; then
    printf '%s\n' "${made[@]}" > "$OUT/READY-partial"
  fi
done <<< "$lines"
if [ -z "$want" ]; then
  printf '%s\n' "${made[@]}" > "$OUT/READY"
fi
echo "== $SET (SEED15=$BASE): ${#made[@]} days in $OUT, $(( $(date +%s) - t_all )) s"
