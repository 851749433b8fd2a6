#!/usr/bin/env bash
# Runs every test of the workspace. `.ci/run` calls exactly this.
#
# Tests that need a real service use it when it is there: PostgreSQL from
# ZHILU_TEST_PG_URL (scripts/pg-start.sh starts one), mosquitto from PATH,
# schemathesis from ZHILU_SCHEMATHESIS, chromium at /usr/bin/chromium. With ZHILU_REQUIRE_SERVICES=1 (CI)
# a missing service fails the run instead of skipping. With
# ZHILU_FUZZ_SECONDS=N every fuzz target also runs N seconds (CI: 15).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
# The console first: the binary embeds web/dist.
./scripts/console.sh build
cargo test --workspace --locked
./scripts/schemathesis.sh
# The console in a real browser against the demo (needs target/debug/zhilu,
# built by the tests above).
./scripts/console.sh e2e
# Every fuzz target for a bounded time (CI sets ZHILU_FUZZ_SECONDS).
if [[ "${ZHILU_FUZZ_SECONDS:-0}" != 0 ]]; then
    FUZZ_SECONDS="$ZHILU_FUZZ_SECONDS" ./scripts/fuzz-ci.sh
fi
