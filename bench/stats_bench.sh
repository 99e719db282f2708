#!/usr/bin/env bash
# Statistics benchmark (issues 4 and 13): report latency over 10 million synthetic events in SQLite,
# and getAvailableReleases throughput with COUNT_DOWNLOADS=Y vs =N in the same run.
#
#   bench/stats_bench.sh                   full run (~9.5 M checks + 0.5 M downloads); prints a
#                                          Markdown section and puts it in bench/RESULTS.md
#   STATS_SMALL=1 bench/stats_bench.sh     quick run at 200 000 events
#
# Steps: build vypusk --release; create 20 distributions × 10 releases (one in four free) and a
# license through the vendor API; stop the server; generate the raw events and the daily
# roll-ups with bench/stats_gen.sql (direct SQL); start the server on that database; time each
# report endpoint (JSON API and HTML pages) sequentially, STATS_SAMPLES times each; run wrk
# against getAvailableReleases alternating N, Y, N, Y. Everything lives in a temp dir that is
# removed at the end.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

if [[ "${STATS_SMALL:-0}" == 1 ]]; then
    : "${STATS_CHECKS:=190000}" "${STATS_DOWNLOADS:=10000}"
else
    : "${STATS_CHECKS:=9500000}" "${STATS_DOWNLOADS:=500000}"
fi
: "${STATS_DAYS:=400}" "${STATS_INSTALLATIONS:=25000}" "${STATS_SAMPLES:=40}"
: "${STATS_WRK_SECS:=15}" "${STATS_WRK_CONNECTIONS:=32}"

log() { printf '[stats-bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

command -v wrk >/dev/null && command -v sqlite3 >/dev/null && command -v jq >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk sqlite3 jq curl >/dev/null
}

tmp="$(mktemp -d "${TMPDIR:-/tmp}/vypusk-stats-bench.XXXXXX")"
pid=""
cleanup() {
    local rc=$?
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    if [[ "${STATS_KEEP:-0}" == 1 ]]; then log "kept $tmp"; else rm -rf "$tmp"; fi
    exit $rc
}
trap cleanup EXIT

log "building vypusk --release"
(cd "$root" && cargo build --release --quiet --bin vypusk)
bin="$root/target/release/vypusk"
data="$tmp/data"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
pass="stats-bench-password"

start_server() {
    VYPUSK_ADMIN_PASSWORD="$pass" VYPUSK_LOG=warn "$bin" --data-dir "$data" serve --listen "127.0.0.1:$port" \
        >"$tmp/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do curl -fs "$base/healthz" >/dev/null && return; sleep 0.1; done
    cat "$tmp/server.log" >&2; exit 1
}
stop_server() { kill "$pid"; wait "$pid" || true; pid=""; }
api() { curl -fsS -u "admin:$pass" -H 'Content-Type: application/json' "$@"; }

start_server
log "creating the catalog through the API"
for d in $(seq 0 19); do
    code="BENCH_$d"
    if (( d % 4 == 3 )); then gate=''; else gate=',"lic_product_id":100,"lic_feature_id":'"$d"; fi
    api -X POST "$base/api/v1/distributions" -d '{"code":"'"$code"'","name":"Расширение № '"$d"'","description":"","developer":"Bench","label":"BENCH","promo_link":"","published":true'"$gate"'}' >/dev/null
    for r in $(seq 1 10); do
        id="$(api -X POST "$base/api/v1/distributions/$code/releases" \
            -d '{"version":"1.0.'"$r"'","compatibility":[{"conf":"*","min_1c_version":"0"}]}' | jq -r .id)"
        head -c $((100000 + r * 1000)) /dev/urandom >"$tmp/file"
        api -X PUT --data-binary @"$tmp/file" -H 'Content-Type: application/octet-stream' \
            "$base/api/v1/releases/$id/files/bench_${d}_$r.zip" >/dev/null
        api -X POST "$base/api/v1/releases/$id/publish" >/dev/null
    done
done
features="$(for d in $(seq 0 19); do (( d % 4 == 3 )) || printf '{"product":100,"feature":%d,"active_until":null},' "$d"; done)"
api -X POST "$base/api/v1/licenses" -d '{"key":"BENCH-1","customer":"ООО Бенч","itn":"7700000000","beta":false,"features":['"${features%,}"']}' >/dev/null
stop_server

total=$((STATS_CHECKS + STATS_DOWNLOADS))
log "generating $STATS_CHECKS checks + $STATS_DOWNLOADS downloads over $STATS_DAYS days, and the roll-ups"
startday=$(( ($(date +%s) / 86400 - STATS_DAYS + 1) * 86400 ))
gen_start=$(date +%s)
{
    echo "CREATE TEMP TABLE p AS SELECT $STATS_CHECKS AS checks, $STATS_DOWNLOADS AS downloads, $STATS_DAYS AS days, $STATS_INSTALLATIONS AS installations, $startday AS start;"
    cat "$here/stats_gen.sql"
} | sqlite3 "$data/vypusk.db"
gen_secs=$(( $(date +%s) - gen_start ))
counts="$(sqlite3 "$data/vypusk.db" "SELECT (SELECT COUNT(*) FROM check_events), (SELECT COUNT(*) FROM download_events), (SELECT COUNT(*) FROM stats_daily_downloads), (SELECT COUNT(*) FROM stats_daily_license_downloads), (SELECT COUNT(*) FROM stats_daily_upgrades), (SELECT COUNT(*) FROM stats_daily_checks), (SELECT COUNT(*) FROM stats_installations), (SELECT COUNT(*) FROM stats_daily_active), (SELECT COUNT(*) FROM stats_daily_unknown_keys), (SELECT COUNT(*) FROM licenses), (SELECT COUNT(*) FROM license_features);")"
dbsize="$(du -m "$data/vypusk.db" | cut -f1)"
log "generated in ${gen_secs}s: $counts (checks|downloads|daily_downloads|license|upgrades|checks|installations|active|unknown_keys|licenses|features), ${dbsize} MB"

start_server
today="$(date -u +%F)"
year_ago="$(date -u -d "-364 days" +%F)"
month_ago="$(date -u -d "-29 days" +%F)"
endpoints=(
    "/api/v1/stats/downloads?group_by=day"
    "/api/v1/stats/downloads?group_by=day&from=$year_ago&to=$today"
    "/api/v1/stats/downloads?group_by=release&from=$year_ago&to=$today"
    "/api/v1/stats/downloads?group_by=distribution&from=$year_ago&to=$today"
    "/api/v1/stats/downloads?group_by=conf&from=$year_ago&to=$today"
    "/api/v1/stats/downloads?group_by=license"
    "/api/v1/stats/downloads?group_by=license&from=$year_ago&to=$today"
    "/api/v1/stats/downloads?group_by=day&distribution=BENCH_1&from=$year_ago&to=$today&format=csv"
    "/api/v1/stats/upgrade-paths?from=$year_ago&to=$today"
    "/api/v1/stats/upgrade-paths?distribution=BENCH_1&from=$year_ago&to=$today"
    "/api/v1/stats/installed-base?days=30"
    "/api/v1/stats/installed-base?distribution=BENCH_1&days=30"
    "/api/v1/stats/installed-base?days=365&group_by=conf"
    "/reports"
    "/reports?from=$year_ago&to=$today"
    "/reports/distributions/BENCH_1"
    "/reports/distributions/BENCH_1?from=$year_ago&to=$today&days=365"
    # Issue 13: who runs what.
    "/api/v1/stats/active-installations?from=$year_ago&to=$today"
    "/api/v1/stats/active-installations?distribution=BENCH_1&from=$year_ago&to=$today"
    "/api/v1/stats/customers"
    "/api/v1/stats/customers?limit=1000&offset=10000"
    "/api/v1/stats/customers?behind=true&limit=1000"
    "/api/v1/stats/customers?behind=true&search=%D0%9A%D0%BB%D0%B8%D0%B5%D0%BD%D1%82%20%E2%84%96%2012"
    "/api/v1/stats/customers?search=7700001"
    "/api/v1/stats/customers?distribution=BENCH_1&format=csv"
    "/api/v1/stats/customers?format=csv"
    "/api/v1/stats/expiring-subscriptions?days=30"
    "/api/v1/stats/expiring-subscriptions?days=365"
    "/api/v1/stats/newest-share?days=30"
    "/api/v1/stats/newest-share?days=365"
    "/api/v1/stats/unknown-keys?from=$year_ago&to=$today"
    "/api/v1/stats/unknown-keys?group_by=key&from=$year_ago&to=$today"
    "/reports/active?from=$year_ago&to=$today"
    "/reports/customers"
    "/reports/customers?behind=true&offset=2000"
    "/reports/expiring?days=90"
    "/reports/newest?days=365"
    "/reports/unknown-keys?from=$year_ago&to=$today"
)
report="$tmp/report.md"
{
    echo "## Statistics reports over $((total / 1000000)).$(( (total % 1000000) / 100000 )) M events (issues 4 and 13)"
    echo
    echo "\`bench/stats_bench.sh\`, $(date -u +'%F %H:%M') UTC, $(nproc) cores shared with other builds, SQLite (WAL),"
    echo "release build. Data: $STATS_CHECKS check events + $STATS_DOWNLOADS download events over $STATS_DAYS days,"
    echo "$STATS_INSTALLATIONS installations in 20 distributions × 10 releases, 12 configurations; generated with direct"
    echo "SQL (\`bench/stats_gen.sql\`, ${gen_secs} s, database ${dbsize} MB). Roll-up rows: $(echo "$counts" | awk -F'|' '{printf "daily_downloads %s, license_downloads %s, upgrades %s, daily_checks %s, installations %s, daily_active %s, unknown_keys %s; licenses %s with %s features", $3, $4, $5, $6, $7, $8, $9, $10, $11}')."
    echo "Each endpoint is requested $STATS_SAMPLES times in a row as admin (curl, keep-alive not reused); times in ms."
    echo "Target: p95 < 300 ms."
    echo
    echo "| endpoint | rows | p50 ms | p95 ms | max ms |"
    echo "|---|---:|---:|---:|---:|"
} >"$report"
for ep in "${endpoints[@]}"; do
    api -o "$tmp/body" "$base$ep"
    if [[ "$ep" == /api/* && "$ep" != *format=csv* ]]; then rows="$(jq '.rows | length' "$tmp/body")"; else rows="—"; fi
    : >"$tmp/times"
    for _ in $(seq 1 "$STATS_SAMPLES"); do
        api -o /dev/null -w '%{time_total}\n' "$base$ep" >>"$tmp/times"
    done
    python3 - "$ep" "$rows" "$tmp/times" >>"$report" <<'PY'
import sys
ep, rows, path = sys.argv[1:4]
t = sorted(float(x) * 1000 for x in open(path) if x.strip())
p = lambda q: t[min(len(t) - 1, int(round(q * (len(t) - 1))))]
print(f"| `{ep}` | {rows} | {p(0.5):.1f} | {p(0.95):.1f} | {t[-1]:.1f} |")
PY
done
log "report timings done"

# --- COUNT_DOWNLOADS=Y vs =N ---------------------------------------------------------------
cat >"$tmp/check.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("STATS_BODY")
function done(summary, latency, requests)
   io.write(string.format("STATS_RESULT %.1f %.3f %d\n", summary.requests / (summary.duration / 1e6),
      latency:percentile(99) / 1000, summary.errors.status + summary.errors.connect + summary.errors.read))
end
LUA
body() { printf '{"TYPE":"BENCH_1","INSTALLED_VERSION":"1.0.3","CONF":"УправлениеТорговлей","CONF_VERSION":"11.5.1.1","KEY":"BENCH-1","COUNT_DOWNLOADS":"%s"}' "$1"; }
before="$(api "$base/api/v1/stats/pipeline")"
declare -A rps
for round in 1 2; do
    for flag in N Y; do
        out="$(STATS_BODY="$(body $flag)" wrk -t2 -c"$STATS_WRK_CONNECTIONS" -d"${STATS_WRK_SECS}s" -s "$tmp/check.lua" \
            "$base/releases/v1/1c/getAvailableReleases" | grep STATS_RESULT)"
        log "COUNT_DOWNLOADS=$flag round $round: $out"
        rps[$flag]="${rps[$flag]:-} $(echo "$out" | awk '{print $2}')"
        read -r _ r p99 errs <<<"$out"
        echo "$flag $round $r $p99 $errs" >>"$tmp/wrk"
    done
done
sleep 2
after="$(api "$base/api/v1/stats/pipeline")"
{
    echo
    echo "getAvailableReleases throughput, COUNT_DOWNLOADS=N vs =Y in the same run (wrk -t2 -c$STATS_WRK_CONNECTIONS,"
    echo "${STATS_WRK_SECS} s each, alternating N, Y, N, Y; one paid distribution, 7 releases offered with links;"
    echo "every answer records a check event either way). Target: Y ≥ 0.9 × N."
    echo
    echo "| COUNT_DOWNLOADS | round | req/s | p99 ms | errors |"
    echo "|---|---:|---:|---:|---:|"
    while read -r flag round r p99 errs; do echo "| $flag | $round | $r | $p99 | $errs |"; done <"$tmp/wrk"
    python3 - "${rps[N]}" "${rps[Y]}" <<'PY'
import sys
n = [float(x) for x in sys.argv[1].split()]
y = [float(x) for x in sys.argv[2].split()]
mn, my = sum(n) / len(n), sum(y) / len(y)
print(f"\nMean N {mn:.0f} req/s, mean Y {my:.0f} req/s: **Y/N = {my / mn:.3f}**.")
PY
    echo
    echo "Capture pipeline before the wrk runs: \`$before\`; after: \`$after\` (written = events in the database;"
    echo "dropped = lost to a full queue)."
} >>"$report"
cat "$report"
# The full run replaces the "## Statistics reports" section of bench/RESULTS.md (below the
# "<!-- analysis -->" mark that bench/run.sh keeps), or appends it; STATS_OUT names another file.
if [[ -z "${STATS_OUT+x}" ]]; then
    if [[ "${STATS_SMALL:-0}" == 1 ]]; then STATS_OUT=""; else STATS_OUT="$here/RESULTS.md"; fi
fi
if [[ -n "$STATS_OUT" ]]; then
    python3 - "$STATS_OUT" "$report" <<'EOF'
import os, re, sys
dst, section = sys.argv[1], open(sys.argv[2]).read()
old = open(dst).read() if os.path.exists(dst) else ""
m = re.search(r"^## Statistics reports over .*\n", old, re.M)
if m:
    nxt = re.search(r"^## ", old[m.end():], re.M)
    end = m.end() + nxt.start() if nxt else len(old)
    text = old[:m.start()] + section + ("\n" + old[end:] if nxt else "")
else:
    text = old.rstrip("\n") + "\n\n" + section
open(dst, "w").write(text)
EOF
    log "wrote the statistics section of $STATS_OUT"
fi
