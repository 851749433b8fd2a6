#!/usr/bin/env bash
# Helper worktrees for parallel work, and their cleanup.
#   scripts/worktree.sh add NAME     # /work/wt-NAME on branch h-NAME from main, target/ seeded
#   scripts/worktree.sh remove NAME  # remove the worktree and (if merged) its branch
#   scripts/worktree.sh clean        # remove every wt-* worktree whose branch is merged
# The seed copies only main's registry-dependency artifacts (~2 GB): the
# workspace's own crates rebuild anyway in another folder, and main's whole
# target/ (often > 15 GB of stale test binaries) once filled the disk CI shares.
set -euo pipefail
main=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
root=$(dirname "$main")
seed() {
    local wt=$1
    mkdir -p "$wt/target/debug"
    (cd "$main/target/debug" 2>/dev/null && tar cf - --exclude=./incremental \
        --exclude='./deps/zhilu*' --exclude='./deps/libzhilu*' \
        --exclude='./.fingerprint/zhilu*' --exclude='./build/zhilu*' \
        --exclude=./examples --exclude='./zhilu*' .) | tar xf - -C "$wt/target/debug"
    find "$wt/target/debug/deps" -maxdepth 1 -type f ! -name '*.*' -delete 2>/dev/null || true
}
remove() {
    local n=$1
    git -C "$main" worktree remove --force "$root/wt-$n"
    if git -C "$main" merge-base --is-ancestor "h-$n" main; then
        git -C "$main" branch -D "h-$n"
    else
        echo "branch h-$n is not merged into main: kept" >&2
    fi
}
case "${1:-}" in
add)
    git -C "$main" worktree add -q -b "h-$2" "$root/wt-$2" main
    seed "$root/wt-$2"
    du -sh "$root/wt-$2/target"
    ;;
remove) remove "$2" ;;
clean)
    for wt in "$root"/wt-*; do
        [[ -d $wt ]] || continue
        n=${wt##*/wt-}
        if git -C "$main" merge-base --is-ancestor "h-$n" main 2>/dev/null; then remove "$n"; else echo "kept $wt (h-$n not merged)"; fi
    done
    df -h "$root" | tail -1
    ;;
*) sed -n 2,8p "$0"; exit 2 ;;
esac
