#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for the store's tests (never for production).
#
#   scripts/pg-start.sh        start it (or reuse the running one); the last
#                              line printed is its URL, so
#                              export ZHILU_TEST_PG_URL=$(scripts/pg-start.sh | tail -n1)
#   scripts/pg-start.sh stop   stop it (the data directory is kept)
#   scripts/pg-start.sh url    print the URL only
#
# Uses Debian's package binaries (/usr/lib/postgresql/<version>/bin, e.g. the
# postgresql-15 package). PostgreSQL refuses to run as root, so when run as
# root initdb and pg_ctl run as the `postgres` user. Listens on 127.0.0.1 only,
# trust authentication (test data only). Overridable: ZHILU_PG_DIR (data
# directory, default /tmp/zhilu-pg), ZHILU_PG_PORT (default 55432).
set -euo pipefail

DATA_DIR="${ZHILU_PG_DIR:-/tmp/zhilu-pg}"
PORT="${ZHILU_PG_PORT:-55432}"
URL="postgres://postgres@127.0.0.1:${PORT}/postgres"
LOG="${DATA_DIR}.log"

die() { echo "pg-start: $*" >&2; exit 1; }

bin_dir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
    [[ -n "$dir" && -x "$dir/pg_ctl" ]] \
        || die "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql-15)"
    echo "$dir"
}

# Runs a command as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

BIN=$(bin_dir)

ready() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres; }

case "${1:-start}" in
    stop)
        if [[ -f "$DATA_DIR/postmaster.pid" ]]; then
            as_owner "$BIN/pg_ctl" -D "$DATA_DIR" -m fast -w stop >&2
        else
            echo "pg-start: not running ($DATA_DIR)" >&2
        fi
        exit 0
        ;;
    url)
        echo "$URL"
        exit 0
        ;;
    start) ;;
    *) die "usage: $0 [start|stop|url]" ;;
esac

if ready; then
    echo "pg-start: reusing the server on 127.0.0.1:$PORT" >&2
    echo "$URL"
    exit 0
fi

# A data directory from another major version (or a half-made one) is
# useless to these binaries: start over, it only ever holds test data.
major=$("$BIN/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')
if [[ -e "$DATA_DIR" && "$(cat "$DATA_DIR/PG_VERSION" 2>/dev/null)" != "$major" ]]; then
    echo "pg-start: $DATA_DIR is not a PostgreSQL $major cluster; recreating it" >&2
    rm -rf "$DATA_DIR"
fi

if [[ ! -s "$DATA_DIR/PG_VERSION" ]]; then
    echo "pg-start: initdb $DATA_DIR" >&2
    mkdir -p "$DATA_DIR"
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres: "$DATA_DIR"
    fi
    chmod 700 "$DATA_DIR"
    as_owner "$BIN/initdb" -D "$DATA_DIR" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 >&2
fi

# A postmaster.pid left by a killed server is cleaned up by pg_ctl itself;
# the socket goes to the data directory, not /var/run/postgresql. Durability
# is off (fsync, synchronous_commit, full_page_writes): test data only, and
# CREATE DATABASE per test stays cheap.
touch "$LOG"
if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$LOG"
fi
# Retried: right after a crash the old server's children may still be exiting.
started=0
for attempt in 1 2 3; do
    if as_owner "$BIN/pg_ctl" -D "$DATA_DIR" -l "$LOG" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA_DIR -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >&2; then
        started=1
        break
    fi
    echo "pg-start: start attempt $attempt failed; retrying" >&2
    sleep 2
done
if ((started == 0)); then
    tail -n 20 "$LOG" >&2
    die "could not start (log: $LOG)"
fi

for _ in $(seq 1 60); do
    if ready; then
        echo "$URL"
        exit 0
    fi
    sleep 0.5
done
tail -n 20 "$LOG" >&2
die "server did not become ready on 127.0.0.1:$PORT (log: $LOG)"
