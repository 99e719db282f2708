#!/usr/bin/env bash
# Check throughput through nginx (the deployment guide's proxy settings) to one vypusk instance
# and to two instances sharing one PostgreSQL database, against the same instance answered
# directly, all in one run. See bench/README.md; results in bench/RESULTS.md ("Proxy path").
#
#   bench/proxy.sh                 100 distributions × 20 releases, 20 000 licenses, 15 s runs
#   BENCH_SMALL=1 bench/proxy.sh   a quick run
#
# nginx speaks plain HTTP here: the guide's site file with its TLS lines left out, so the run
# measures the proxy hop, not RSA handshakes. Needs PostgreSQL at 127.0.0.1:5432 (user
# postgres, trust), nginx and wrk (installed when missing).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
if [[ "${BENCH_SMALL:-0}" == 1 ]]; then
    : "${BENCH_DISTS:=20}" "${BENCH_RELEASES:=5}" "${BENCH_LICENSES:=2000}" "${BENCH_DURATION:=5}"
else
    : "${BENCH_DISTS:=100}" "${BENCH_RELEASES:=20}" "${BENCH_LICENSES:=20000}" "${BENCH_DURATION:=15}"
fi
: "${BENCH_CONNECTIONS:=64}" "${BENCH_THREADS:=2}" "${BENCH_CHECK_BODIES:=1000}"

log() { printf '[proxy-bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
if ((${#need[@]})); then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
pg_isready -h 127.0.0.1 -p 5432 -q || die "PostgreSQL must run at 127.0.0.1:5432"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/vypusk-proxy-bench.XXXXXX")"
chmod 755 "$tmp"
db="vypusk_bench_$RANDOM$RANDOM"
pids=()
cleanup() {
    local rc=$?
    [[ -f "$tmp/pids" ]] && pids+=($(cat "$tmp/pids"))
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    done
    psql -h 127.0.0.1 -U postgres -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$tmp"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "cargo build --release --bin vypusk"
(cd "$root" && cargo build --release --bin vypusk --quiet)
cp "$root/target/release/vypusk" "$tmp/vypusk"
psql -h 127.0.0.1 -U postgres -q -c "CREATE DATABASE $db" >/dev/null
export VYPUSK_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export VYPUSK_STORAGE_URL="file://$tmp/objects"
mkdir -p "$tmp/objects"
password="bench-$RANDOM$RANDOM"

start_instance() { # start_instance NAME: prints the instance's host:port
    # (called in $(…), a subshell: the pid reaches cleanup through a file)
    local name=$1
    VYPUSK_ADMIN_PASSWORD="$password" VYPUSK_LOG=warn "$tmp/vypusk" --data-dir "$tmp/$name" \
        --listen 127.0.0.1:0 serve >"$tmp/$name.out" 2>"$tmp/$name.err" &
    echo $! >>"$tmp/pids"
    local pid=$! addr=""
    for _ in $(seq 1 300); do
        addr="$(grep -o 'listening on http://[0-9.:]*' "$tmp/$name.out" 2>/dev/null | sed 's|listening on http://||' || true)"
        [[ -n "$addr" ]] && break
        kill -0 "$pid" 2>/dev/null || { cat "$tmp/$name.err" >&2; die "$name exited"; }
        sleep 0.1
    done
    [[ -n "$addr" ]] || die "$name did not start"
    echo "$addr"
}
a="$(start_instance a)"
b="$(start_instance b)"
log "instances at $a and $b"

log "seeding $BENCH_DISTS × $BENCH_RELEASES releases, $BENCH_LICENSES licenses through A"
python3 "$here/seed.py" seed --url "http://$a" --password "$password" --out "$tmp" \
    --dists "$BENCH_DISTS" --releases "$BENCH_RELEASES" --licenses "$BENCH_LICENSES" >/dev/null
python3 "$here/seed.py" checks --url "http://$a" --out "$tmp" --count "$BENCH_CHECK_BODIES" >/dev/null
# B answers the same bodies once it has caught up with A's catalog (within a second).
mkdir -p "$tmp/b" && cp "$tmp/catalog.json" "$tmp/b/"
python3 "$here/seed.py" checks --url "http://$b" --out "$tmp/b" --count "$BENCH_CHECK_BODIES" >/dev/null

nginx_conf() { # nginx_conf PORT UPSTREAM...: the guide's site over plain HTTP
    local port=$1
    shift
    local servers=""
    for u in "$@"; do servers+="    server $u max_fails=3 fail_timeout=10s;\n"; done
    awk -v port="$port" -v servers="$servers" '
        /^ *server 127\.0\.0\.1:808[01]/ { next }
        /^ *keepalive / { printf "%s", servers }
        /ssl_certificate|ssl_protocols/ { next }
        /listen 443 ssl;/ { print "    listen 127.0.0.1:" port ";"; next }
        { print }' "$root/docs/deploy/nginx-vypusk.conf" | sed 's/\\n/\n/g'
}
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
p1="$(free_port)"
p2="$(free_port)"
mkdir -p "$tmp/nginx"
{
    echo "worker_processes auto; pid $tmp/nginx/nginx.pid; error_log $tmp/nginx/error.log warn;"
    [[ $EUID -eq 0 ]] && echo "user root;"
    echo "events { worker_connections 4096; }"
    echo "http { access_log off; client_body_temp_path $tmp/nginx/body; proxy_temp_path $tmp/nginx/proxy;"
    echo "fastcgi_temp_path $tmp/nginx/f; uwsgi_temp_path $tmp/nginx/u; scgi_temp_path $tmp/nginx/s;"
    nginx_conf "$p1" "$a" | sed 's/upstream vypusk/upstream vypusk_one/; s|proxy_pass http://vypusk;|proxy_pass http://vypusk_one;|'
    nginx_conf "$p2" "$a" "$b" | sed 's/upstream vypusk/upstream vypusk_two/; s|proxy_pass http://vypusk;|proxy_pass http://vypusk_two;|'
    echo "}"
} >"$tmp/nginx/nginx.conf"
"$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' 2>>"$tmp/nginx/error.log" &
pids+=($!)
for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$p2") 2>/dev/null && break; sleep 0.1; done

run_wrk() { # run_wrk NAME URL: requests per second of the check mix
    local name=$1 url=$2
    env BENCH_CHECKS="$tmp/checks.txt" timeout $((BENCH_DURATION + 60)) wrk -t"$BENCH_THREADS" \
        -c"$BENCH_CONNECTIONS" -d"${BENCH_DURATION}s" --timeout 10s -s "$here/check.lua" "$url" \
        >"$tmp/wrk-$name.txt"
    local line
    line="$(sed -n 's/^BENCH_RESULT //p' "$tmp/wrk-$name.txt")"
    [[ -n "$line" ]] || { cat "$tmp/wrk-$name.txt" >&2; die "wrk $name printed no result"; }
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["err_status"]==0, r; print(round(r["rps"]), r["lat_p99_ms"])' "$line"
}
log "warm-up"
BENCH_DURATION=3 run_wrk warmup "http://$a" >/dev/null
declare -A rps p99
for round in 1 2; do
    for name in direct one two; do
        case $name in
            direct) url="http://$a" ;;
            one) url="http://127.0.0.1:$p1" ;;
            two) url="http://127.0.0.1:$p2" ;;
        esac
        read -r r l <<<"$(run_wrk "$name-$round" "$url")"
        log "round $round $name: $r req/s, p99 $l ms (load $(cut -d' ' -f1 /proc/loadavg))"
        rps[$name]+="$r "
        p99[$name]+="$l "
    done
done
python3 - "${rps[direct]}" "${rps[one]}" "${rps[two]}" "${p99[direct]}" "${p99[one]}" "${p99[two]}" <<'EOF'
import statistics, sys
d, one, two = ([float(x) for x in a.split()] for a in sys.argv[1:4])
pd, p1, p2 = ([float(x) for x in a.split()] for a in sys.argv[4:7])
m = statistics.median
print("| path | req/s (median of 2) | ratio to direct | p99 ms |")
print("|---|---:|---:|---:|")
print(f"| direct to one instance | {m(d):,.0f} | 1.00 | {m(pd):.1f} |")
print(f"| nginx → one instance | {m(one):,.0f} | {m(one)/m(d):.2f} | {m(p1):.1f} |")
print(f"| nginx → two instances | {m(two):,.0f} | {m(two)/m(d):.2f} | {m(p2):.1f} |")
print(f"\ntwo instances / one instance through nginx: {m(two)/m(one):.2f}")
EOF
