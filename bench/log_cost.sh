#!/usr/bin/env bash
# What the access log costs on the check path: getAvailableReleases throughput of one release
# build at the default log level (INFO: one access line per request) against the same build at
# VYPUSK_LOG=warn (no access lines), in alternating rounds of one run. Results in
# bench/RESULTS.md ("Access log").
#
#   bench/log_cost.sh     20 distributions × 8 releases, 2 000 licenses, 3 rounds of 10 s each
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
: "${BENCH_DURATION:=10}" "${BENCH_ROUNDS:=3}" "${BENCH_CONNECTIONS:=64}" "${BENCH_THREADS:=2}"

log() { printf '[log-cost %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/vypusk-log-cost.XXXXXX")"
cleanup() {
    local rc=$?
    [[ -s "$tmp/pid" ]] && kill "$(cat "$tmp/pid")" 2>/dev/null || true
    rm -rf "$tmp"
    exit $rc
}
trap cleanup EXIT

log "cargo build --release --bin vypusk"
(cd "$root" && cargo build --release --bin vypusk --quiet)
cp "$root/target/release/vypusk" "$tmp/vypusk"
password="bench-$RANDOM$RANDOM"

start() { # start LOG_LEVEL: runs vypusk on the seeded data dir, prints its address
    # (called in $(…), a subshell: the pid goes through a file)
    rm -f "$tmp/out"
    VYPUSK_ADMIN_PASSWORD="$password" VYPUSK_LOG="$1" "$tmp/vypusk" --data-dir "$tmp/data" \
        --listen 127.0.0.1:0 serve >"$tmp/out" 2>"$tmp/err-$1" &
    echo $! >"$tmp/pid"
    local addr=""
    for _ in $(seq 1 300); do
        addr="$(grep -o 'listening on http://[0-9.:]*' "$tmp/out" 2>/dev/null | sed 's|listening on ||' || true)"
        [[ -n "$addr" ]] && break
        sleep 0.1
    done
    [[ -n "$addr" ]] || die "vypusk did not start"
    echo "$addr"
}
stop() { # SIGTERM and wait until the process is gone
    local pid
    pid="$(cat "$tmp/pid")"
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    : >"$tmp/pid"
}

url="$(start info)"
python3 "$here/seed.py" seed --url "$url" --password "$password" --out "$tmp" \
    --dists 20 --releases 8 --licenses 2000 >/dev/null
python3 "$here/seed.py" checks --url "$url" --out "$tmp" --count 500 >/dev/null
stop

declare -A rps
for round in $(seq 1 "$BENCH_ROUNDS"); do
    for level in info warn; do
        url="$(start "$level")"
        env BENCH_CHECKS="$tmp/checks.txt" wrk -t"$BENCH_THREADS" -c"$BENCH_CONNECTIONS" -d3s \
            -s "$here/check.lua" "$url" >/dev/null
        env BENCH_CHECKS="$tmp/checks.txt" timeout $((BENCH_DURATION + 60)) wrk -t"$BENCH_THREADS" \
            -c"$BENCH_CONNECTIONS" -d"${BENCH_DURATION}s" -s "$here/check.lua" "$url" >"$tmp/wrk"
        r="$(sed -n 's/^BENCH_RESULT //p' "$tmp/wrk" | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["err_status"]==0, r; print(round(r["rps"]))')"
        lines="$(grep -c '"access"\| access:' "$tmp/err-$level" || true)"
        log "round $round $level: $r req/s ($lines access lines written)"
        rps[$level]+="$r "
        stop
    done
done
python3 - "${rps[info]}" "${rps[warn]}" <<'EOF'
import statistics, sys
info, warn = ([float(x) for x in a.split()] for a in sys.argv[1:3])
pairs = [i / w for i, w in zip(info, warn)]
print(f"| level | req/s median | rounds |\n|---|---:|---|")
print(f"| INFO (access lines) | {statistics.median(info):,.0f} | {' '.join(f'{x:,.0f}' for x in info)} |")
print(f"| WARN (none) | {statistics.median(warn):,.0f} | {' '.join(f'{x:,.0f}' for x in warn)} |")
print(f"\nINFO / WARN, pair by pair: {' '.join(f'{p:.2f}' for p in pairs)}; median {statistics.median(pairs):.2f}")
EOF
