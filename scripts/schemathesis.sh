#!/usr/bin/env bash
# Fuzzes the running server's API from its own OpenAPI document with
# schemathesis (PyPI): every operation, generated bodies and parameters,
# as an admin; the run fails on any 5xx answer.
set -euo pipefail
cd "$(dirname "$0")/.."
ST="${ZHILU_SCHEMATHESIS:-$(command -v schemathesis || true)}"
if [[ -z "$ST" || ! -x "$ST" ]]; then
    if [[ "${ZHILU_REQUIRE_SERVICES:-0}" == 1 ]]; then
        echo "schemathesis: not installed (set ZHILU_SCHEMATHESIS)" >&2
        exit 1
    fi
    echo "schemathesis: skipped (not installed; pip install schemathesis)" >&2
    exit 0
fi
cargo build --locked -q -p zhilu
BIN=target/debug/zhilu
WORK=$(mktemp -d)
trap 'kill ${PID:-} 2>/dev/null || true; rm -rf "$WORK"' EXIT
$BIN gen-day --out "$WORK/day" --stations 16 --from-hour 5 --hours 2 --vehicles 20 >/dev/null 2>&1
DB="sqlite://$WORK/zhilu.db"
echo "fuzz-Root-pw7 zhilu" | $BIN user add admin --role admin --database "$DB" 2>/dev/null
PORT=$((20000 + RANDOM % 20000))
$BIN serve --road "$WORK/day/ROAD.toml" --database "$DB" --listen "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
PID=$!
up=0
for _ in $(seq 300); do
    if curl -sf "http://127.0.0.1:$PORT/api/health" >/dev/null; then up=1; break; fi
    sleep 0.1
done
if [[ $up != 1 ]]; then
    echo "schemathesis: the server did not come up:" >&2
    cat "$WORK/serve.log" >&2
    exit 1
fi
LOGIN=$(curl -s -X POST "http://127.0.0.1:$PORT/api/login" -H 'content-type: application/json' \
    -d '{"username":"admin","password":"fuzz-Root-pw7 zhilu"}')
TOKEN=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["token"])' "$LOGIN") || {
    echo "schemathesis: login failed: $LOGIN" >&2
    cat "$WORK/serve.log" >&2
    exit 1
}
# Feed the day so that events, proposals and device states exist.
for f in WEATHER:weather POS:positions OBS:observations; do
    curl -sf -X POST "http://127.0.0.1:$PORT/api/ingest/${f#*:}" -H "authorization: Bearer $TOKEN" \
        -H 'content-type: text/csv' --data-binary @"$WORK/day/${f%%:*}.csv" >/dev/null
done
"$ST" run "http://127.0.0.1:$PORT/api/openapi.json" \
    --checks not_a_server_error \
    --header "Authorization: Bearer $TOKEN" \
    --exclude-path /api/logout --exclude-path /api/stream \
    --max-examples 60 \
    --workers 2
echo "schemathesis: no 5xx"
