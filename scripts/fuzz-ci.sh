#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a bounded time each and fails on a crash.
#
#   FUZZ_SECONDS=20 ./scripts/fuzz-ci.sh            # all targets, 20 s each (default)
#   FUZZ_SECONDS=60 ./scripts/fuzz-ci.sh jt808_frame # one target
#
# Installs cargo-fuzz (pinned) when it is missing. Uses `-s none` (no
# sanitizer) so it builds on the stable toolchain. Crash inputs land in
# fuzz/artifacts/<target>/; the corpus grows in fuzz/corpus/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-20}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-ci: installing cargo-fuzz 0.13.2" >&2
    cargo install cargo-fuzz --version 0.13.2 --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

failed=()
for t in "${targets[@]}"; do
    echo "fuzz-ci: ${t} for ${seconds}s" >&2
    mkdir -p "corpus/${t}"
    log="$(mktemp)"
    if cargo fuzz run -s none "${t}" -- -max_total_time="${seconds}" -rss_limit_mb=2048 >"${log}" 2>&1; then
        grep -E "^(#[0-9]+\s+DONE|Done [0-9]+ runs)" "${log}" | tail -1 >&2 || true
    else
        tail -40 "${log}" >&2
        failed+=("${t}")
    fi
    rm -f "${log}"
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz-ci: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz-ci: ${#targets[@]} targets, no crash" >&2
