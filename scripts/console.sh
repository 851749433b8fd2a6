#!/usr/bin/env bash
# The operators' console (web/): build it, or run its browser tests.
#
#   scripts/console.sh build   npm ci + Vite build into web/dist, then checks
#                              that the committed web/dist is exactly what the
#                              sources build (the binary embeds web/dist, so a
#                              stale copy would ship an old console)
#   scripts/console.sh e2e     the end-to-end tests in Debian's chromium
#                              (playwright-core) against target/debug/zhilu;
#                              screenshots and perf.json in web/e2e/artifacts/
#
# Without chromium the e2e step is skipped, unless ZHILU_REQUIRE_SERVICES=1.
set -euo pipefail
cd "$(dirname "$0")/../web"
case "${1:-}" in
build)
    npm ci --no-audit --no-fund --loglevel=error
    npm run build
    if [[ -n "$(git status --porcelain -- dist)" ]]; then
        git status --short -- dist >&2
        echo "console: web/dist differs from what web/src builds; run 'scripts/console.sh build' and commit web/dist" >&2
        exit 1
    fi
    ;;
e2e)
    chromium="${ZHILU_CHROMIUM:-/usr/bin/chromium}"
    if [[ ! -x "$chromium" ]]; then
        if [[ "${ZHILU_REQUIRE_SERVICES:-0}" == 1 ]]; then
            echo "console: no chromium at $chromium (apt-get install chromium)" >&2
            exit 1
        fi
        echo "console: no chromium, browser tests skipped" >&2
        exit 0
    fi
    [[ -d node_modules/playwright-core ]] || npm ci --no-audit --no-fund --loglevel=error
    ZHILU_BIN="${ZHILU_BIN:-../target/debug/zhilu}" ZHILU_CHROMIUM="$chromium" \
        node --test --test-concurrency=1 e2e/
    ;;
*)
    echo "usage: scripts/console.sh build|e2e" >&2
    exit 2
    ;;
esac
