#!/usr/bin/env bash
# Load benchmarks of vypusk on loopback, each figure against a reference measured in the same
# run (nginx, openssl, md5sum). See bench/README.md.
#
#   bench/run.sh              full run: 500 distributions × 40 releases × 2 files, 100 000
#                             licenses, 1 GiB download and upload; writes bench/RESULTS.md
#   BENCH_SMALL=1 bench/run.sh   a quick run at small sizes; writes to a temp dir only
#
# Everything runs in a temp dir that is removed at the end; every server it starts is stopped.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

if [[ "${BENCH_SMALL:-0}" == 1 ]]; then
    : "${BENCH_DISTS:=20}" "${BENCH_RELEASES:=8}" "${BENCH_LICENSES:=2000}"
    : "${BENCH_BIG_MIB:=64}" "${BENCH_DURATION:=5}" "${BENCH_CHECK_BODIES:=500}"
    : "${BENCH_OPENSSL_SECONDS:=2}"
else
    : "${BENCH_DISTS:=500}" "${BENCH_RELEASES:=40}" "${BENCH_LICENSES:=100000}"
    : "${BENCH_BIG_MIB:=1024}" "${BENCH_DURATION:=15}" "${BENCH_CHECK_BODIES:=2000}"
    : "${BENCH_OPENSSL_SECONDS:=10}"
fi
: "${BENCH_CONNECTIONS:=64}" "${BENCH_THREADS:=2}" "${BENCH_PARALLEL:=8}" "${BENCH_REPEAT:=3}"
: "${BENCH_PERF:=0}"            # 1: perf record vypusk during the check run (perf must exist)
if [[ -z "${BENCH_OUT:-}" ]]; then
    if [[ "${BENCH_SMALL:-0}" == 1 ]]; then BENCH_OUT=""; else BENCH_OUT="$here/RESULTS.md"; fi
fi

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- tools -------------------------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
command -v openssl >/dev/null || need+=(openssl)
command -v md5sum >/dev/null || need+=(coreutils)
if ((${#need[@]})); then
    log "installing ${need[*]}"
    sudo=""; [[ $EUID -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

# --- temp dir, cleanup -------------------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/vypusk-bench.XXXXXX")"
chmod 755 "$tmp"
vypusk_pid="" nginx_pid="" perf_pid="" par_pid=""
cleanup() {
    local rc=$?
    local curls=""
    [[ -f "$tmp/parallel.pids" ]] && curls="$(cat "$tmp/parallel.pids")"
    for pid in $perf_pid $par_pid $curls $nginx_pid $vypusk_pid; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $perf_pid $par_pid $nginx_pid $vypusk_pid; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then log "kept $tmp"; else rm -rf "$tmp"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build -------------------------------------------------------------------------------
# BENCH_REV=<commit> builds that commit (from `git archive`, into the workspace's target dir)
# instead of the work tree, e.g. while the work tree is half-edited.
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' || echo "$root/target")"
src="$root"
if [[ -n "${BENCH_REV:-}" ]]; then
    src="$tmp/src"
    mkdir -p "$src"
    (cd "$root" && git archive "$BENCH_REV") | tar -x -C "$src"
fi
if [[ -z "${BENCH_VYPUSK:-}" ]]; then
    log "cargo build --release --bin vypusk (${BENCH_REV:-work tree})"
    (cd "$src" && CARGO_TARGET_DIR="$target_dir" cargo build --release --bin vypusk --quiet)
fi
VYPUSK="${BENCH_VYPUSK:-$target_dir/release/vypusk}"
[[ -x "$VYPUSK" ]] || die "no $VYPUSK"
# A private copy: another build in the shared target dir cannot swap it mid-run.
cp "$VYPUSK" "$tmp/vypusk"
VYPUSK="$tmp/vypusk"
if [[ -n "${BENCH_VYPUSK:-}" ]]; then
    commit="given binary $BENCH_VYPUSK"
elif [[ -n "${BENCH_REV:-}" ]]; then
    commit="$(cd "$root" && git rev-parse --short "$BENCH_REV")"
else
    commit="$(cd "$root" && git rev-parse --short HEAD)$(cd "$root" && git diff --quiet HEAD -- server storage protocol migrations 2>/dev/null || echo '+uncommitted')"
fi

res="$tmp/results"
mkdir -p "$res" "$tmp/www"
json_set() { # json_set KEY JSON-VALUE: adds a field to results.json
    python3 - "$res/results.json" "$1" "$2" <<'EOF'
import json, os, sys
path, key, value = sys.argv[1:]
data = json.load(open(path)) if os.path.exists(path) else {}
data[key] = json.loads(value)
json.dump(data, open(path, "w"), indent=1, ensure_ascii=False)
EOF
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 3))" "$1" "$2"; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- machine -----------------------------------------------------------------------------
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
json_set machine "$(python3 -c 'import json,sys; print(json.dumps(dict(zip(sys.argv[1::2], sys.argv[2::2]))))' \
    date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    cpu "$cpu" cores "$(nproc)" \
    memory "$(free -h | awk '/^Mem:/{print $2}')" \
    kernel "$(uname -r)" \
    os "$(. /etc/os-release && echo "$PRETTY_NAME")" \
    nginx "$("$NGINX" -v 2>&1 | sed 's/.*: //')" \
    wrk "$(wrk -v 2>&1 | head -1 | awk '{print $1" "$2}')" \
    openssl "$(openssl version | awk '{print $1" "$2}')" \
    md5sum "$(md5sum --version | head -1)" \
    curl "$(curl --version | head -1 | awk '{print $1" "$2}')" \
    vypusk_commit "$commit" \
    loadavg_start "$(loadavg)")"
json_set params "{\"dists\":$BENCH_DISTS,\"releases\":$BENCH_RELEASES,\"licenses\":$BENCH_LICENSES,\"big_mib\":$BENCH_BIG_MIB,\"duration_s\":$BENCH_DURATION,\"connections\":$BENCH_CONNECTIONS,\"wrk_threads\":$BENCH_THREADS,\"parallel\":$BENCH_PARALLEL,\"repeat\":$BENCH_REPEAT,\"openssl_seconds\":$BENCH_OPENSSL_SECONDS,\"small\":$([[ "${BENCH_SMALL:-0}" == 1 ]] && echo true || echo false)}"

# --- vypusk ------------------------------------------------------------------------------
password="bench-$RANDOM$RANDOM"
start_vypusk() { # start_vypusk DATA_DIR LISTEN: starts `vypusk serve`, sets vypusk_pid
    : >"$tmp/vypusk.out"
    VYPUSK_ADMIN_PASSWORD="$password" "$VYPUSK" --data-dir "$1" --listen "$2" serve \
        >"$tmp/vypusk.out" 2>>"$tmp/vypusk.err" &
    vypusk_pid=$!
}
wait_listening() { # sets url once vypusk printed its address (60 s at most)
    url=""
    for _ in $(seq 1 600); do
        url="$(grep -o 'listening on http://[0-9.:]*' "$tmp/vypusk.out" 2>/dev/null | sed 's/listening on //' || true)"
        [[ -n "$url" ]] && break
        kill -0 "$vypusk_pid" 2>/dev/null || { tail -20 "$tmp/vypusk.err" >&2; die "vypusk exited"; }
        sleep 0.1
    done
    [[ -n "$url" ]] || die "vypusk did not start"
}
stop_vypusk() { # SIGTERM, then SIGKILL after 30 s
    [[ -n "$vypusk_pid" ]] || return 0
    kill "$vypusk_pid" 2>/dev/null || true
    for _ in $(seq 1 300); do
        kill -0 "$vypusk_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$vypusk_pid" 2>/dev/null || true
    wait "$vypusk_pid" 2>/dev/null || true
    vypusk_pid=""
}
rss_kib() { awk -v k="$1:" '$1==k{print $2}' "/proc/$vypusk_pid/status"; }
cpu_s() { # user + system CPU seconds of vypusk so far
    awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$vypusk_pid/stat"
}

log "starting vypusk ($VYPUSK)"
start_vypusk "$tmp/data" 127.0.0.1:0
wait_listening
listen="${url#http://}"
log "vypusk at $url (pid $vypusk_pid)"

log "seeding $BENCH_DISTS distributions × $BENCH_RELEASES releases × 2 files, $BENCH_LICENSES licenses × 2 features"
python3 "$here/seed.py" seed --url "$url" --password "$password" --out "$res" \
    --dists "$BENCH_DISTS" --releases "$BENCH_RELEASES" --licenses "$BENCH_LICENSES"
json_set seed "$(cat "$res/catalog.json")"
json_set rss_after_seed_kib "$(rss_kib VmRSS)"

# --- start-up on the seeded data -----------------------------------------------------------
# The rest of the run (checks, downloads) uses this restarted server.
log "restarting vypusk on the seeded data dir"
stop_vypusk
t0="$(now)"
start_vypusk "$tmp/data" "$listen"
ready=""
# The port is bound before the catalog loads and served only after: a probe that connects
# early gets its answer the moment the server is ready. 20 ms between refused probes, 120 s
# at most.
for _ in $(seq 1 6000); do
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url/readyz" || true)"
    if [[ "$code" == 200 ]]; then ready="$(now)"; break; fi
    kill -0 "$vypusk_pid" 2>/dev/null || { tail -20 "$tmp/vypusk.err" >&2; die "vypusk exited"; }
    (( ${EPOCHREALTIME%.*} - ${t0%.*} < 120 )) || break
    sleep 0.02
done
[[ -n "$ready" ]] || die "vypusk was not ready within 120 s"
ready_s="$(elapsed "$t0" "$ready")"
rss_ready="$(rss_kib VmRSS)"
sleep 2
json_set startup "{\"ready_s\":$ready_s,\"rss_at_ready_kib\":$rss_ready,\"rss_kib\":$(rss_kib VmRSS),\"hwm_kib\":$(rss_kib VmHWM)}"
log "  ready in $ready_s s; RSS 2 s later $(( $(rss_kib VmRSS) / 1024 )) MiB"

log "building and verifying $BENCH_CHECK_BODIES check bodies; saving the answers for nginx"
python3 "$here/seed.py" checks --url "$url" --out "$res" --count "$BENCH_CHECK_BODIES" \
    --answers "$tmp/www/answers"
json_set checks "$(cat "$res/checks.json")"

# --- nginx -------------------------------------------------------------------------------
nginx_port="$(free_port)"
nginx_port2="$(free_port)"
user_line=""
[[ $EUID -eq 0 ]] && user_line="user root;"
sed -e "s|@TMP@|$tmp|g" -e "s|@ROOT@|$tmp/www|g" -e "s|@PORT@|$nginx_port|g" \
    -e "s|@PORT_NOSENDFILE@|$nginx_port2|g" -e "s|@USER@|$user_line|g" \
    "$here/nginx.conf.in" >"$tmp/nginx.conf"
"$NGINX" -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/nginx-error.log" 2>>"$tmp/nginx-error.log" &
nginx_pid=$!
nginx_url="http://127.0.0.1:$nginx_port"
nginx_url2="http://127.0.0.1:$nginx_port2"
for _ in $(seq 1 100); do
    curl -sf -o /dev/null "$nginx_url/answers/1.json" && break
    kill -0 "$nginx_pid" 2>/dev/null || { cat "$tmp/nginx-error.log" >&2; die "nginx exited"; }
    sleep 0.1
done
cmp -s <(curl -sf "$nginx_url/answers/1.json") "$tmp/www/answers/1.json" || die "nginx does not serve the answers"
log "nginx at $nginx_url and $nginx_url2 (no sendfile), pid $nginx_pid"

# --- check throughput --------------------------------------------------------------------
run_wrk() { # run_wrk NAME URL [ENV...]: one wrk run, its BENCH_RESULT line into results.json
    local name=$1 target=$2
    shift 2
    log "wrk $name: -t$BENCH_THREADS -c$BENCH_CONNECTIONS -d${BENCH_DURATION}s (load $(loadavg))"
    env BENCH_CHECKS="$res/checks.txt" "$@" \
        timeout $((BENCH_DURATION + 60)) wrk -t"$BENCH_THREADS" -c"$BENCH_CONNECTIONS" \
        -d"${BENCH_DURATION}s" --timeout 10s -s "$here/check.lua" "$target" >"$res/wrk-$name.txt"
    local line
    line="$(sed -n 's/^BENCH_RESULT //p' "$res/wrk-$name.txt")"
    [[ -n "$line" ]] || { cat "$res/wrk-$name.txt" >&2; die "wrk $name printed no result"; }
    json_set "wrk_$name" "$line"
    log "  $(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%.0f req/s, %.0f B/response, p50 %s ms, p99 %s ms, non-2xx %d, socket errors %d" % (r["rps"], r["bytes"] / max(r["requests"], 1), r["lat_p50_ms"], r["lat_p99_ms"], r["err_status"], r["err_connect"]+r["err_read"]+r["err_write"]+r["err_timeout"]))' "$line")"
}

# A short warm-up fills the signature cache for the current minute's bodies (token expiries
# are rounded to the minute, so a body repeats, and is signed once, for a minute).
BENCH_DURATION_SAVED=$BENCH_DURATION
BENCH_DURATION=3 run_wrk warmup "$url"
BENCH_DURATION=$BENCH_DURATION_SAVED
json_set second_of_minute_at_check_start "$((10#$(date +%S)))"
if [[ "$BENCH_PERF" == 1 ]] && command -v perf >/dev/null; then
    perf record -F 499 -g -p "$vypusk_pid" -o "$tmp/perf-check.data" 2>/dev/null &
    perf_pid=$!
fi
run_wrk check "$url"
if [[ -n "$perf_pid" ]]; then
    kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; perf_pid=""
    perf report -i "$tmp/perf-check.data" --no-children --percent-limit 1 --stdio 2>/dev/null \
        | grep -v '^$' | head -150 >"$res/perf-check.txt" || true
    cp "$res/perf-check.txt" "$here/perf-check.txt" 2>/dev/null || true
fi
run_wrk nginx "$nginx_url" BENCH_ANSWERS=/answers
run_wrk check_queryid "$url" BENCH_QUERY_ID=1
json_set rss_after_checks_kib "$(rss_kib VmRSS)"

# --- RSA signing reference -----------------------------------------------------------------
log "openssl speed -seconds $BENCH_OPENSSL_SECONDS -multi 2 rsa2048 (load $(loadavg))"
timeout $((BENCH_OPENSSL_SECONDS * 4 + 120)) openssl speed -seconds "$BENCH_OPENSSL_SECONDS" \
    -multi 2 rsa2048 >"$res/openssl.txt" 2>/dev/null || true
grep -Eq '^rsa +2048 +bits ' "$res/openssl.txt" || die "openssl speed printed no rsa 2048 line"
json_set openssl "$(python3 - "$res/openssl.txt" <<'EOF'
import json, re, sys
# The summary: a header naming the columns ("sign verify sign/s verify/s"; later versions add
# more), then "rsa 2048 bits 0.000239s 0.000015s 4175.7 66640.0", summed over the 2 processes
# of -multi.
text = open(sys.argv[1]).read().splitlines()
for i, line in enumerate(text):
    if re.match(r"^rsa\s+2048\s+bits\s", line):
        header = next(h.split() for h in reversed(text[:i]) if "sign/s" in h)
        values = line.split()[3:]
        col = dict(zip(header, values))
print(json.dumps({"sign_per_s": float(col["sign/s"]), "verify_per_s": float(col["verify/s"]),
                  "processes": 2}))
EOF
)"
log "  $(python3 -c 'import json,sys; print("%.0f signs/s" % json.load(open(sys.argv[1]))["openssl"]["sign_per_s"])' "$res/results.json")"

# --- big file: upload vs md5sum ----------------------------------------------------------
log "writing a $BENCH_BIG_MIB MiB file"
big="$tmp/www/big.bin"
head -c $((BENCH_BIG_MIB << 20)) /dev/urandom >"$big"
big_bytes=$((BENCH_BIG_MIB << 20))
python3 "$here/seed.py" bigdraft --url "$url" --password "$password" --out "$res"
rid="$(cat "$res/bigfile-release.txt")"
cat "$big" >/dev/null   # in the page cache for md5sum and curl alike
md5_want="$(md5sum "$big" | cut -d' ' -f1)"
up_times=() md5_times=() up_cpu=()
for i in 1 2; do
    log "upload round $i/2 (load $(loadavg))"
    t0="$(now)"; md5sum "$big" >/dev/null; t1="$(now)"
    md5_times+=("$(elapsed "$t0" "$t1")")
    c0="$(cpu_s)"
    out="$(curl -s -o "$res/upload.json" -w '%{http_code} %{time_total}' --max-time 900 \
        -u "admin:$password" -H 'Content-Type: application/octet-stream' -H 'Expect:' \
        -T "$big" "$url/api/v1/releases/$rid/files/big.bin")"
    up_cpu+=("$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$c0" "$(cpu_s)")")
    read -r code secs <<<"$out"
    [[ "$code" == 201 ]] || die "upload: $out $(head -c 300 "$res/upload.json")"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d["md5"] != sys.argv[2])' \
        "$res/upload.json" "$md5_want" || die "upload: md5 differs from md5sum's"
    up_times+=("$secs")
done
json_set upload "$(python3 - "$big_bytes" "${up_times[*]}" "${md5_times[*]}" "${up_cpu[*]}" <<'EOF'
import json, statistics, sys
size = int(sys.argv[1])
up = [float(t) for t in sys.argv[2].split()]
md5 = [float(t) for t in sys.argv[3].split()]
cpu = [float(t) for t in sys.argv[4].split()]
print(json.dumps({"bytes": size, "upload_seconds": up, "md5sum_seconds": md5,
                  "upload_median_s": statistics.median(up), "md5sum_median_s": statistics.median(md5),
                  "server_cpu_seconds": cpu}))
EOF
)"
python3 "$here/seed.py" bigpublish --url "$url" --password "$password" --out "$res"
big_url="$(cat "$res/bigfile-url.txt")"

# --- download ------------------------------------------------------------------------------
fetch() { # fetch URL: prints seconds of one download to /dev/null; checks status and size
    local out
    out="$(curl -s -o /dev/null --max-time 600 -w '%{http_code} %{size_download} %{time_total}' "$1")"
    read -r code size secs <<<"$out"
    [[ "$code" == 200 && "$size" == "$big_bytes" ]] || die "download $1: $out"
    echo "$secs"
}
# Both copies in the page cache first: neither server reads from the disk.
fetch "$big_url" >/dev/null
fetch "$nginx_url/big.bin" >/dev/null
v_times=() n_times=() n2_times=()
for i in $(seq 1 "$BENCH_REPEAT"); do
    log "download round $i/$BENCH_REPEAT (load $(loadavg))"
    v_times+=("$(fetch "$big_url")")
    n_times+=("$(fetch "$nginx_url/big.bin")")
    n2_times+=("$(fetch "$nginx_url2/big.bin")")
done
json_set download "$(python3 - "$big_bytes" "${v_times[*]}" "${n_times[*]}" "${n2_times[*]}" <<'EOF'
import json, statistics, sys
size = int(sys.argv[1])
out = {}
for name, arg in zip(["vypusk", "nginx", "nginx_nosendfile"], sys.argv[2:]):
    times = [float(t) for t in arg.split()]
    med = statistics.median(times)
    out[name] = {"seconds": times, "median_s": med, "mb_s": round(size / 1e6 / med, 1)}
print(json.dumps(out))
EOF
)"

# --- RSS during parallel downloads ---------------------------------------------------------
parallel_run() { # parallel_run URL: N downloads at once; prints wall seconds
    local start end pids=()
    start="$(now)"
    for _ in $(seq 1 "$BENCH_PARALLEL"); do
        curl -s -o /dev/null --max-time 900 -w '%{http_code} %{size_download}\n' "$1" >>"$tmp/parallel.txt" &
        pids+=($!)
    done
    echo "${pids[*]}" >"$tmp/parallel.pids"
    wait "${pids[@]}"
    end="$(now)"
    rm -f "$tmp/parallel.pids"
    elapsed "$start" "$end"
}
sleep 1
rss_before="$(rss_kib VmRSS)"
hwm_reset=false
if echo 5 >"/proc/$vypusk_pid/clear_refs" 2>/dev/null; then hwm_reset=true; fi
: >"$tmp/parallel.txt"
log "$BENCH_PARALLEL parallel downloads through vypusk (RSS now $((rss_before / 1024)) MiB)"
(parallel_run "$big_url" >"$tmp/parallel-vypusk.secs") &
par_pid=$!
peak_polled=$rss_before
while kill -0 "$par_pid" 2>/dev/null; do   # ends with the curls (--max-time)
    r="$(rss_kib VmRSS)"
    ((r > peak_polled)) && peak_polled=$r
    sleep 0.05
done
wait "$par_pid"; par_pid=""
hwm="$(rss_kib VmHWM)"
sleep 1
rss_after_par="$(rss_kib VmRSS)"
bad="$(grep -vc "^200 $big_bytes\$" "$tmp/parallel.txt" || true)"
[[ "$bad" == 0 ]] || die "$bad parallel downloads failed: $(sort "$tmp/parallel.txt" | uniq -c)"
: >"$tmp/parallel.txt"
log "$BENCH_PARALLEL parallel downloads through nginx"
parallel_run "$nginx_url/big.bin" >"$tmp/parallel-nginx.secs"
json_set rss "{\"before_kib\":$rss_before,\"peak_polled_kib\":$peak_polled,\"vmhwm_kib\":$hwm,\"vmhwm_reset_before\":$hwm_reset,\"after_kib\":$rss_after_par,\"parallel\":$BENCH_PARALLEL,\"vypusk_wall_s\":$(cat "$tmp/parallel-vypusk.secs"),\"nginx_wall_s\":$(cat "$tmp/parallel-nginx.secs")}"
log "  RSS $((rss_before / 1024)) MiB before, $(( (hwm > peak_polled ? hwm : peak_polled) / 1024 )) MiB peak"
stop_vypusk
kill "$nginx_pid" 2>/dev/null || true   # SIGTERM to the master stops its workers too
wait "$nginx_pid" 2>/dev/null || true
nginx_pid=""

# --- license import into a fresh server ----------------------------------------------------
log "fresh vypusk (empty data dir): importing $BENCH_LICENSES licenses through the API"
start_vypusk "$tmp/data-import" 127.0.0.1:0
wait_listening
import_start="$(rss_kib VmRSS)"
python3 "$here/seed.py" licenses --url "$url" --password "$password" --out "$res" \
    --dists "$BENCH_DISTS" --licenses "$BENCH_LICENSES"
import_after="$(rss_kib VmRSS)"
sleep 2
json_set import "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.update(rss_before_kib=int(sys.argv[2]), rss_after_kib=int(sys.argv[3]), rss_idle_kib=int(sys.argv[4]), hwm_kib=int(sys.argv[5])); print(json.dumps(d))' \
    "$res/licenses.json" "$import_start" "$import_after" "$(rss_kib VmRSS)" "$(rss_kib VmHWM)")"
log "  RSS $((import_start / 1024)) MiB before, $((import_after / 1024)) MiB after the import, $(( $(rss_kib VmRSS) / 1024 )) MiB 2 s later"
stop_vypusk

json_set machine_end "{\"loadavg_end\":\"$(loadavg)\"}"
if [[ -n "$BENCH_OUT" ]]; then
    python3 "$here/report.py" "$res/results.json" "$BENCH_OUT"
    cp "$res/results.json" "$(dirname "$BENCH_OUT")/results.json"
    log "wrote $BENCH_OUT and results.json beside it"
else
    python3 "$here/report.py" "$res/results.json" "$tmp/RESULTS.md"
    cat "$tmp/RESULTS.md"
fi
