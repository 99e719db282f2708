#!/usr/bin/env bash
# Benchmark of vypusk-update (issue 3, item 8): `vypusk-update download` of a 1 GiB release vs
# `curl -s -o f URL && md5sum f && sha256sum f` in the same run, alternating; peak RSS of the
# updater; size of the release binary. Appends (or replaces) the "## vypusk-update" section of
# bench/RESULTS.md.
#
#   bench/updater.sh                  full run (1 GiB, 3 rounds); writes bench/RESULTS.md
#   UPD_MIB=64 bench/updater.sh       a quick run; prints the section, writes nothing in the repo
#
# Knobs: UPD_MIB (1024), UPD_REPEAT (3), UPD_OUT (report path; default bench/RESULTS.md for a
# 1 GiB run, none otherwise), UPD_NO_BUILD=1 (use target/release as it is), UPD_KEEP=1 (keep
# the temp dir).
#
# Everything runs in a temp dir that is removed at the end (server stopped, 1 GiB files deleted).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

: "${UPD_MIB:=1024}" "${UPD_REPEAT:=3}"
if [[ -z "${UPD_OUT+x}" ]]; then
    if [[ "$UPD_MIB" == 1024 ]]; then UPD_OUT="$here/RESULTS.md"; else UPD_OUT=""; fi
fi

log() { printf '[updater-bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- tools -------------------------------------------------------------------------------
need=()
[[ -x /usr/bin/time ]] || need+=(time)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
    log "installing ${need[*]}"
    sudo=""; [[ $EUID -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- temp dir, cleanup -------------------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/vypusk-updater-bench.XXXXXX")"
vypusk_pid=""
cleanup() {
    local rc=$?
    if [[ -n "$vypusk_pid" ]]; then
        kill "$vypusk_pid" 2>/dev/null || true
        wait "$vypusk_pid" 2>/dev/null || true
    fi
    if [[ "${UPD_KEEP:-0}" == 1 ]]; then log "kept $tmp"; else rm -rf "$tmp"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build -------------------------------------------------------------------------------
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' || echo "$root/target")"
if [[ "${UPD_NO_BUILD:-0}" != 1 ]]; then
    log "cargo build --release --bin vypusk --bin vypusk-update (the shared target dir may be locked for a while)"
    (cd "$root" && cargo build --release --bin vypusk --bin vypusk-update --quiet)
fi
for b in vypusk vypusk-update; do
    [[ -x "$target_dir/release/$b" ]] || die "no $target_dir/release/$b"
done
binary_bytes="$(stat -c %s "$target_dir/release/vypusk-update")"
# Private copies: another build in the shared target dir cannot swap them mid-run.
cp "$target_dir/release/vypusk" "$target_dir/release/vypusk-update" "$tmp/"
VYPUSK="$tmp/vypusk" UPDATER="$tmp/vypusk-update"
commit="$(cd "$root" && git rev-parse --short HEAD)$(cd "$root" && git diff --quiet HEAD -- updater protocol server storage 2>/dev/null || echo '+uncommitted')"

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
load_start="$(loadavg)"
date_start="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

# --- server ------------------------------------------------------------------------------
password="bench-$RANDOM$RANDOM"
port="$(free_port)"
url="http://127.0.0.1:$port"
log "starting vypusk at $url"
VYPUSK_ADMIN_PASSWORD="$password" "$VYPUSK" --data-dir "$tmp/data" serve --listen "127.0.0.1:$port" \
    >"$tmp/vypusk.out" 2>"$tmp/vypusk.err" &
vypusk_pid=$!
for _ in $(seq 1 300); do
    curl -sf -o /dev/null "$url/healthz" && break
    kill -0 "$vypusk_pid" 2>/dev/null || { cat "$tmp/vypusk.err" >&2; die "vypusk exited"; }
    sleep 0.1
done
curl -sf -o /dev/null "$url/healthz" || die "vypusk did not start"

api() { # api METHOD PATH [JSON]: vendor API call as admin; prints the answer, fails on non-2xx
    local out code
    out="$(curl -s -u "admin:$password" -X "$1" -H 'Content-Type: application/json' \
        ${3:+--data-binary "$3"} -w '\n%{http_code}' "$url$2")"
    code="${out##*$'\n'}"
    [[ "$code" == 2* ]] || die "$1 $2 -> $code: ${out%$'\n'*}"
    printf '%s\n' "${out%$'\n'*}"
}
jget() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1:]: v=v[int(k) if k.isdigit() else k]
print(v)' "$@"; }

code="UPD_BENCH"
conf="X"
size_label="$([[ $((UPD_MIB % 1024)) == 0 ]] && echo "$((UPD_MIB / 1024)) GiB" || echo "$UPD_MIB MiB")"
big_bytes=$((UPD_MIB << 20))
log "writing a $size_label random file"
head -c "$big_bytes" /dev/urandom >"$tmp/big.bin"
api POST /api/v1/distributions "{\"code\":\"$code\",\"name\":\"Updater bench\",\"description\":\"bench\",\"developer\":\"bench\",\"label\":\"bench\",\"promo_link\":\"https://example.com\",\"published\":true}" >/dev/null
release_id="$(api POST "/api/v1/distributions/$code/releases" \
    '{"version":"1.0.0.1","compatibility":[{"conf":"*","min_1c_version":"0"}]}' | jget id)"
log "uploading it as release $release_id"
up="$(curl -s -u "admin:$password" -T "$tmp/big.bin" -H 'Content-Type: application/octet-stream' \
    -w '\n%{http_code}' "$url/api/v1/releases/$release_id/files/big.bin")"
[[ "${up##*$'\n'}" == 2* ]] || die "upload -> $up"
api POST "/api/v1/releases/$release_id/publish" '{}' >/dev/null
rm -f "$tmp/big.bin"   # the server has its own copy; keep one 1 GiB file on disk, not two
curl -sf "$url/releases/v1/signing-key" >"$tmp/key.pem" || die "no signing key"

answer="$(curl -sf "$url/releases/v1/1c/getAvailableReleases" -H 'Content-Type: application/json' \
    -d "{\"TYPE\":\"$code\",\"CONF\":\"$conf\",\"CONF_VERSION\":\"1\"}")" || die "getAvailableReleases failed"
link="$(jget modules 0 download_link <<<"$answer")"
want_md5="$(jget modules 0 files 0 md5 <<<"$answer")"
want_sha="$(jget modules 0 files 0 sha256 <<<"$answer")"
[[ -n "$link" && ${#want_sha} == 64 ]] || die "unexpected answer: $answer"
log "download link $link"

# The object in the page cache first, so both sides read it from memory on the server side.
curl -s -o /dev/null "$link"

# --- measurements ------------------------------------------------------------------------
# /usr/bin/time -v: "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:05.12", "Maximum resident
# set size (kbytes): 1234". For the pipeline, the maximum RSS is that of its largest process.
wall_s() { python3 -c '
import sys
for line in open(sys.argv[1]):
    if "Elapsed (wall clock)" in line:
        parts = [float(p) for p in line.rsplit(" ", 1)[1].split(":")]
        s = 0.0
        for p in parts: s = s * 60 + p
        print(s)' "$1"; }
maxrss_kib() { awk -F': ' '/Maximum resident set size/{print $2}' "$1"; }
now() { date +%s.%N; }

updater_run() { # updater_run I: one download into a fresh dir; appends to u_* arrays
    local i=$1 dir="$tmp/u$1"
    env -u VYPUSK_CONFIG -u VYPUSK_KEY -u VYPUSK_INSTALLED_VERSION \
        /usr/bin/time -v -o "$tmp/time-u$i.txt" \
        "$UPDATER" --server "$url" --type "$code" --conf "$conf" --conf-version 1 \
        --dir "$dir" --public-key "$tmp/key.pem" download --json >"$tmp/u$i.json" 2>"$tmp/u$i.err" ||
        { cat "$tmp/u$i.err" "$tmp/u$i.json" >&2; die "vypusk-update download failed"; }
    local got
    got="$(jget files 0 sha256 <"$tmp/u$i.json")"
    [[ "$got" == "$want_sha" ]] || die "updater reported sha256 $got"
    [[ "$(stat -c %s "$dir/releases/1.0.0.1/big.bin")" == "$big_bytes" ]] || die "updater file size"
    u_wall+=("$(wall_s "$tmp/time-u$i.txt")")
    u_rss+=("$(maxrss_kib "$tmp/time-u$i.txt")")
    rm -rf "$dir"
}

curl_run() { # curl_run I: the reference pipeline; appends to c_* arrays
    local i=$1 f="$tmp/c$i.bin"
    # Each stage stamps its end, so the report can say where the pipeline's time goes.
    /usr/bin/time -v -o "$tmp/time-c$i.txt" bash -c '
        set -e
        date +%s.%N >"$2.t0"
        curl -s -o "$1" "$3"; date +%s.%N >"$2.t1"
        md5sum "$1" >"$2.md5"; date +%s.%N >"$2.t2"
        sha256sum "$1" >"$2.sha"; date +%s.%N >"$2.t3"
    ' _ "$f" "$tmp/c$i" "$link" || die "curl pipeline failed"
    [[ "$(cut -d' ' -f1 "$tmp/c$i.md5")" == "$want_md5" ]] || die "curl pipeline: md5 differs"
    [[ "$(cut -d' ' -f1 "$tmp/c$i.sha")" == "$want_sha" ]] || die "curl pipeline: sha256 differs"
    c_wall+=("$(wall_s "$tmp/time-c$i.txt")")
    c_rss+=("$(maxrss_kib "$tmp/time-c$i.txt")")
    c_stages+=("$(python3 -c 'import sys; t=[float(open(sys.argv[1]+".t%d" % k).read()) for k in range(4)]
print("%.3f,%.3f,%.3f" % (t[1]-t[0], t[2]-t[1], t[3]-t[2]))' "$tmp/c$i")")
    rm -f "$f"
}

settle() { # written pages of the previous round go to disk before the next one is timed
    sync -f "$tmp" 2>/dev/null || sync
}

u_wall=() u_rss=() c_wall=() c_rss=() c_stages=() loads=()
for i in $(seq 1 "$UPD_REPEAT"); do
    loads+=("$(loadavg)")
    log "round $i/$UPD_REPEAT (load $(loadavg))"
    settle
    updater_run "$i"
    log "  vypusk-update: ${u_wall[-1]} s, max RSS ${u_rss[-1]} KiB"
    settle
    curl_run "$i"
    log "  curl + md5sum + sha256sum: ${c_wall[-1]} s (curl, md5sum, sha256sum: ${c_stages[-1]}), max RSS ${c_rss[-1]} KiB"
done
load_end="$(loadavg)"

# --- report ------------------------------------------------------------------------------
coreutils="$(sha256sum --version | head -1 | sed 's/^sha256sum (GNU \(.*\))/GNU \1/')"
if ldd "$(command -v sha256sum)" 2>/dev/null | grep -q libcrypto; then
    sha256sum_crypto="linked to libcrypto"
else
    sha256sum_crypto="not linked to a crypto library"
fi
if grep -qw sha_ni /proc/cpuinfo; then sha_ni="has them (sha_ni)"; else sha_ni="has none"; fi
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
section="$tmp/section.md"
python3 - "$section" <<EOF
import statistics, sys
u_wall = [float(x) for x in "${u_wall[*]}".split()]
u_rss = [int(x) for x in "${u_rss[*]}".split()]
c_wall = [float(x) for x in "${c_wall[*]}".split()]
c_rss = [int(x) for x in "${c_rss[*]}".split()]
stages = [[float(v) for v in s.split(",")] for s in "${c_stages[*]}".split()]
binary = $binary_bytes
size_label, n = "$size_label", len(u_wall)
mib = $big_bytes / 2**20
u_med, c_med = statistics.median(u_wall), statistics.median(c_wall)
ratio = u_med / c_med
peak_mb = max(u_rss) * 1024 / 1e6
bin_mb = binary / 1e6
yes = lambda ok: "**yes**" if ok else "**no**"
med_stage = [statistics.median(s[k] for s in stages) for k in range(3)]
out = []
w = out.append
w("## vypusk-update\n")
w(f"Measured by \`bench/updater.sh\` on $date_start (one run; all figures below come from it).\n")
w("| figure | vypusk-update | reference | ratio | target | met? |")
w("|---|---:|---:|---:|---|---|")
w(f"| {size_label} download, verified (md5 + sha256), wall time, s (median of {n}); reference: "
  f"\`curl -s -o f URL && md5sum f && sha256sum f\` | {u_med:.2f} | {c_med:.2f} | {ratio:.2f} | ≤ 1.0× | {yes(ratio <= 1.0)} |")
w(f"| peak RSS of the updater during the download (max of {n}) | {peak_mb:.1f} MB | "
  f"{max(c_rss) * 1024 / 1e6:.1f} MB (largest process of the pipeline) | — | < 30 MB | {yes(peak_mb < 30)} |")
w(f"| size of \`target/release/vypusk-update\` | {binary:,} B ({bin_mb:.2f} MB) | — | — | ≤ 6 MB | {yes(bin_mb <= 6)} |")
w("")
w("| round | vypusk-update, s | max RSS, KiB | curl pipeline, s | of which curl / md5sum / sha256sum, s |")
w("|---|---:|---:|---:|---|")
for i in range(n):
    w(f"| {i + 1} | {u_wall[i]:.2f} | {u_rss[i]:,} | {c_wall[i]:.2f} | "
      f"{stages[i][0]:.2f} / {stages[i][1]:.2f} / {stages[i][2]:.2f} |")
w("")
w(f"- Throughput (medians): vypusk-update {mib / u_med:,.0f} MiB/s end to end; the pipeline "
  f"{mib / c_med:,.0f} MiB/s end to end, curl alone {mib / med_stage[0]:,.0f} MiB/s, md5sum "
  f"{mib / med_stage[1]:,.0f} MiB/s, sha256sum {mib / med_stage[2]:,.0f} MiB/s (both from the page cache).")
w(f"- Method: a free distribution with one release of one {size_label} random file, uploaded "
  f"through the vendor API to \`vypusk serve\` on loopback (SQLite + local object store, default "
  f"settings), in the page cache before the first round. Each round runs \`vypusk-update "
  f"--server … --type … --conf X --conf-version 1 --dir <fresh> --public-key <pinned> download "
  f"--json\` (signed check + download + md5/sha256 while streaming + fsync + rename), then the "
  f"pipeline on the \`download_link\` of a \`getAvailableReleases\` answer; both under "
  f"\`/usr/bin/time -v\` (wall clock, maximum RSS), both outputs checked against the declared "
  f"sha256, files deleted and the file system synced (\`sync -f\`, untimed) between runs. "
  f"1 MB = 10⁶ bytes.")
w(f"- Machine: {'$cpu'}, $(nproc) cores, $(free -h | awk '/^Mem:/{print $2}') RAM, "
  f"$(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r); vypusk $commit release build. "
  f"Load average at start $load_start, at end $load_end (the machine is shared; server, client and "
  f"other work share its cores).")
w(f"- Reading the figures: the pipeline writes the file, then reads it twice more (md5sum "
  f"{med_stage[1]:.2f} s, sha256sum {med_stage[2]:.2f} s; {'$coreutils'}'s sha256sum is "
  f"{'$sha256sum_crypto'} and runs at {mib / med_stage[2]:,.0f} MiB/s here). vypusk-update "
  f"hashes md5 and sha256 while streaming, in one pass and one thread (the sha2 crate uses the "
  f"CPU's SHA extensions when present; this CPU {'$sha_ni'}), and its time includes an fsync "
  f"of the file that the pipeline does not do.")
missed = []
if ratio > 1.0:
    missed.append(f"wall time: the updater downloads, hashes and writes in one thread, so its "
                  f"{u_med:.2f} s is the sum of the three, where curl alone took {med_stage[0]:.2f} s")
if peak_mb >= 30:
    missed.append(f"peak RSS {peak_mb:.1f} MB")
if bin_mb > 6:
    missed.append(f"binary size {bin_mb:.2f} MB")
if missed:
    w("- **Missed**: " + "; ".join(missed) + ".")
open(sys.argv[1], "w").write("\n".join(out) + "\n")
EOF
if [[ -n "${UPD_NOTE:-}" ]]; then printf '\n%s\n' "$UPD_NOTE" >>"$section"; fi

if [[ -n "$UPD_OUT" ]]; then
    # Replace an earlier "## vypusk-update" section (up to the next "## " heading), or append.
    # A new RESULTS.md gets report.py's "<!-- analysis -->" mark before the section, so a later
    # bench/run.sh (which re-renders everything above the mark) keeps it.
    python3 - "$UPD_OUT" "$section" <<'EOF'
import os, re, sys
dst, section = sys.argv[1], open(sys.argv[2]).read()
if os.path.exists(dst):
    old = open(dst).read()
    m = re.search(r"^## vypusk-update\n", old, re.M)
    if m:
        nxt = re.search(r"^## ", old[m.end():], re.M)
        end = m.end() + nxt.start() if nxt else len(old)
        text = old[:m.start()] + section + ("\n" + old[end:] if nxt else "")
    else:
        text = old.rstrip("\n") + "\n\n" + section
else:
    text = ("# vypusk benchmarks — results\n\n"
            "The server figures (`bench/run.sh`) are rendered above the mark below.\n\n"
            "<!-- analysis -->\n\n" + section)
open(dst, "w").write(text)
EOF
    log "wrote the vypusk-update section of $UPD_OUT"
fi
cat "$section"
