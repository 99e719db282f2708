#!/usr/bin/env bash
# Benchmark of vypusk-update (issue 3, item 8; issue 10, item 7): `vypusk-update download` of a
# 1 GiB release (verified: md5 + sha256, fsynced) against the larger of `curl -s -o f URL` alone
# and `md5sum f` alone on the same file (md5 cannot be parallelised, so md5sum is the floor;
# goal ≤ 1.1×), `sha256sum f` alone for information, all in the same rounds, alternating; the
# CPU the updater and the server spend; peak RSS of the updater; size of the release binary.
# Appends (or replaces) the "## vypusk-update" section of bench/RESULTS.md.
#
#   bench/updater.sh                  full run (1 GiB, 3 rounds); writes bench/RESULTS.md
#   UPD_MIB=64 bench/updater.sh       a quick run; prints the section, writes nothing in the repo
#
# Knobs: UPD_MIB (1024), UPD_REPEAT (3), UPD_OUT (report path; default bench/RESULTS.md for a
# 1 GiB run, none otherwise), UPD_NO_BUILD=1 (use the release binaries as they are), UPD_KEEP=1
# (keep the temp dir), UPD_NOTE (a paragraph appended to the section). The binaries are built
# in and taken from cargo's target dir (CARGO_TARGET_DIR is honoured).
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
# set size (kbytes): 1234", "User time (seconds): 1.23", "System time (seconds): 0.45".
wall_s() { python3 -c '
import sys
for line in open(sys.argv[1]):
    if "Elapsed (wall clock)" in line:
        parts = [float(p) for p in line.rsplit(" ", 1)[1].split(":")]
        s = 0.0
        for p in parts: s = s * 60 + p
        print(s)' "$1"; }
maxrss_kib() { awk -F': ' '/Maximum resident set size/{print $2}' "$1"; }
cpu_s() { awk -F': ' '/User time \(seconds\)|System time \(seconds\)/{s+=$2} END{printf "%.2f\n", s}' "$1"; }
clk_tck="$(getconf CLK_TCK)"
server_ticks() { awk '{print $14 + $15}' "/proc/$vypusk_pid/stat"; }  # utime + stime
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }  # all cores, not idle
ticks_s() { python3 -c "print(round(($1) / $clk_tck, 2))"; }

updater_run() { # updater_run I: one download into a fresh dir; appends to u_* and s_cpu
    local i=$1 dir="$tmp/u$1" t0 b0
    t0="$(server_ticks)" b0="$(busy_ticks)"
    env -u VYPUSK_CONFIG -u VYPUSK_KEY -u VYPUSK_INSTALLED_VERSION \
        /usr/bin/time -v -o "$tmp/time-u$i.txt" \
        "$UPDATER" --server "$url" --type "$code" --conf "$conf" --conf-version 1 \
        --dir "$dir" --public-key "$tmp/key.pem" download --json >"$tmp/u$i.json" 2>"$tmp/u$i.err" ||
        { cat "$tmp/u$i.err" "$tmp/u$i.json" >&2; die "vypusk-update download failed"; }
    s_cpu+=("$(ticks_s "$(server_ticks) - $t0")")
    u_busy+=("$(ticks_s "$(busy_ticks) - $b0")")
    local got
    got="$(jget files 0 sha256 <"$tmp/u$i.json")"
    [[ "$got" == "$want_sha" ]] || die "updater reported sha256 $got"
    [[ "$(stat -c %s "$dir/releases/1.0.0.1/big.bin")" == "$big_bytes" ]] || die "updater file size"
    u_wall+=("$(wall_s "$tmp/time-u$i.txt")")
    u_rss+=("$(maxrss_kib "$tmp/time-u$i.txt")")
    u_cpu+=("$(cpu_s "$tmp/time-u$i.txt")")
    rm -rf "$dir"
}

reference_run() { # reference_run I: curl alone, then md5sum alone, then sha256sum alone
    local i=$1 f="$tmp/c$i.bin"
    /usr/bin/time -v -o "$tmp/time-c$i.txt" curl -s -o "$f" "$link" || die "curl failed"
    c_wall+=("$(wall_s "$tmp/time-c$i.txt")")
    c_rss+=("$(maxrss_kib "$tmp/time-c$i.txt")")
    [[ "$(stat -c %s "$f")" == "$big_bytes" ]] || die "curl: file size"
    settle
    local b0
    b0="$(busy_ticks)"
    /usr/bin/time -v -o "$tmp/time-m$i.txt" md5sum "$f" >"$tmp/c$i.md5" || die "md5sum failed"
    m_busy+=("$(ticks_s "$(busy_ticks) - $b0")")
    [[ "$(cut -d' ' -f1 "$tmp/c$i.md5")" == "$want_md5" ]] || die "md5sum: md5 differs"
    m_wall+=("$(wall_s "$tmp/time-m$i.txt")")
    m_cpu+=("$(cpu_s "$tmp/time-m$i.txt")")
    /usr/bin/time -v -o "$tmp/time-s$i.txt" sha256sum "$f" >"$tmp/c$i.sha" || die "sha256sum failed"
    [[ "$(cut -d' ' -f1 "$tmp/c$i.sha")" == "$want_sha" ]] || die "sha256sum: sha256 differs"
    h_wall+=("$(wall_s "$tmp/time-s$i.txt")")
    rm -f "$f"
}

settle() { # written pages of the previous step go to disk before the next one is timed
    sync -f "$tmp" 2>/dev/null || sync
}

u_wall=() u_rss=() u_cpu=() s_cpu=() u_busy=() c_wall=() c_rss=() m_wall=() m_cpu=() m_busy=() h_wall=()
for i in $(seq 1 "$UPD_REPEAT"); do
    log "round $i/$UPD_REPEAT (load $(loadavg))"
    settle
    updater_run "$i"
    log "  vypusk-update: ${u_wall[-1]} s (CPU ${u_cpu[-1]} s; server CPU ${s_cpu[-1]} s), max RSS ${u_rss[-1]} KiB"
    settle
    reference_run "$i"
    log "  curl alone ${c_wall[-1]} s, md5sum alone ${m_wall[-1]} s, sha256sum alone ${h_wall[-1]} s"
done
load_end="$(loadavg)"

# --- report ------------------------------------------------------------------------------
coreutils="$(sha256sum --version | head -1 | sed 's/^sha256sum (GNU \(.*\))/GNU \1/')"
if grep -qw sha_ni /proc/cpuinfo; then sha_ni="with SHA extensions (sha_ni)"; else sha_ni="without SHA extensions"; fi
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
cores="$(nproc)"
autogroup="$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo 0)"
section="$tmp/section.md"
python3 - "$section" <<EOF
import statistics, sys
fl = lambda s: [float(x) for x in s.split()]
u_wall, u_cpu, s_cpu = fl("${u_wall[*]}"), fl("${u_cpu[*]}"), fl("${s_cpu[*]}")
u_busy, m_cpu, m_busy = fl("${u_busy[*]}"), fl("${m_cpu[*]}"), fl("${m_busy[*]}")
# The rest of the machine's CPU while each was timed: the kernel's workers (block I/O for the
# updater's writes) and other processes.
u_other = [max(0.0, b - u - s) for b, u, s in zip(u_busy, u_cpu, s_cpu)]
m_other = [max(0.0, b - m) for b, m in zip(m_busy, m_cpu)]
u_rss = [int(x) for x in "${u_rss[*]}".split()]
c_wall, m_wall, h_wall = fl("${c_wall[*]}"), fl("${m_wall[*]}"), fl("${h_wall[*]}")
c_rss = [int(x) for x in "${c_rss[*]}".split()]
binary = $binary_bytes
size_label, n, cores = "$size_label", len(u_wall), $cores
mib = $big_bytes / 2**20
med = statistics.median
u_med, c_med, m_med, h_med = med(u_wall), med(c_wall), med(m_wall), med(h_wall)
ref = max(c_med, m_med)
ref_name = "curl alone" if c_med >= m_med else "md5sum alone"
ratio = u_med / ref
goal = 1.1
peak_mb = max(u_rss) * 1024 / 1e6
bin_mb = binary / 1e6
yes = lambda ok: "**yes**" if ok else "**no**"
# What two cores allow at best: md5 on one core for the whole file (md5sum's time), and the CPU
# that the updater and the server spend together spread over all cores.
cpu_med = med(u + s for u, s in zip(u_cpu, s_cpu))
floor = max(m_med, cpu_med / cores)
out = []
w = out.append
w("## vypusk-update\n")
w(f"Measured by \`bench/updater.sh\` on $date_start (one run; all figures below come from it).\n")
w("| figure | vypusk-update | reference | ratio | goal | met? |")
w("|---|---:|---:|---:|---|---|")
w(f"| {size_label} download, verified (md5 + sha256) and fsynced, wall time, s (median of {n}); "
  f"reference: the larger of \`curl -s -o f URL\` alone and \`md5sum f\` alone (medians) | "
  f"{u_med:.2f} | {ref:.2f} ({ref_name}) | {ratio:.2f} | ≤ {goal}× | {yes(ratio <= goal)} |")
w(f"| peak RSS of the updater during the download (max of {n}) | {peak_mb:.1f} MB | "
  f"{max(c_rss) * 1024 / 1e6:.1f} MB (curl) | — | < 30 MB | {yes(peak_mb < 30)} |")
w(f"| size of \`target/release/vypusk-update\` | {binary:,} B ({bin_mb:.2f} MB) | — | — | ≤ 6 MB | {yes(bin_mb <= 6)} |")
w("")
w("| round | vypusk-update, s | its CPU (user + sys), s | server CPU meanwhile, s | rest of the machine's CPU meanwhile, s | max RSS, KiB | curl alone, s | md5sum alone, s | rest of the machine's CPU meanwhile, s | sha256sum alone, s | ratio |")
w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for i in range(n):
    w(f"| {i + 1} | {u_wall[i]:.2f} | {u_cpu[i]:.2f} | {s_cpu[i]:.2f} | {u_other[i]:.2f} | {u_rss[i]:,} | "
      f"{c_wall[i]:.2f} | {m_wall[i]:.2f} | {m_other[i]:.2f} | {h_wall[i]:.2f} | "
      f"{u_wall[i] / max(c_wall[i], m_wall[i]):.2f} |")
w("")
w(f"- Throughput (medians): vypusk-update {mib / u_med:,.0f} MiB/s end to end (fsync included); "
  f"curl alone {mib / c_med:,.0f} MiB/s (into the page cache, no fsync), md5sum "
  f"{mib / m_med:,.0f} MiB/s, sha256sum {mib / h_med:,.0f} MiB/s (both from the page cache; "
  f"{'$coreutils'}, sha256sum for information only).")
w(f"- Floor on this machine: md5 cannot be split, so one core hashes md5 for at least md5sum's "
  f"{m_med:.2f} s; the updater and the server together used {cpu_med:.2f} CPU-seconds per run "
  f"(median), {cpu_med / cores:.2f} s spread over all {cores} cores. Best case "
  f"{floor:.2f} s, i.e. {floor / ref:.2f}× the reference; measured {u_med:.2f} s is "
  f"{u_med / floor:.2f}× that best case.")
w(f"- Method: a free distribution with one release of one {size_label} random file, uploaded "
  f"through the vendor API to \`vypusk serve\` on loopback (SQLite + local object store, default "
  f"settings), in the page cache before the first round. Each round runs \`vypusk-update "
  f"--server … --type … --conf X --conf-version 1 --dir <fresh> --public-key <pinned> download "
  f"--json\` (signed check + download, md5 and sha256 each on its own thread beside it, fsync, "
  f"rename), then \`curl -s -o f\` of the \`download_link\` of a \`getAvailableReleases\` answer, "
  f"then \`md5sum f\`, then \`sha256sum f\`, each alone under \`/usr/bin/time -v\` (wall clock, "
  f"CPU, maximum RSS); every digest is checked against the declared one. The file system is "
  f"synced (\`sync -f\`, untimed) before the updater, before curl and before md5sum; the server's "
  f"CPU is read from \`/proc/PID/stat\` around each updater run. 1 MB = 10⁶ bytes.")
w(f"- Machine: {'$cpu'}, {cores} cores {'$sha_ni'}, "
  f"$(free -h | awk '/^Mem:/{print $2}') RAM, $(. /etc/os-release && echo "$PRETTY_NAME"), "
  f"kernel $(uname -r); vypusk $commit release build. Load average at start $load_start, at end "
  f"$load_end (the machine is shared; the server, the client and other work share its cores).")
w(f"- The rest of the machine used {min(u_other):.2f} to {max(u_other):.2f} CPU-seconds during "
  f"the updater's runs (the kernel's block-I/O workers writing its file, and any other work) and "
  f"{min(m_other):.2f} to {max(m_other):.2f} during md5sum's (other work only: md5sum reads the "
  f"page cache)."
  + (" The kernel's autogroup scheduling is on: while another session keeps cores busy, this "
     "run's session (server, updater, curl, md5sum alike) gets its fair share of the machine, so "
     "a single-threaded md5sum still gets a whole core while the updater's threads and the "
     "server share what is left; rounds with other work measure the machine's load more than "
     "the updater." if $autogroup == 1 else ""))
missed = []
if ratio > goal:
    missed.append(f"wall time {ratio:.2f}× the reference (goal ≤ {goal}×; this machine's best "
                  f"case is {floor / ref:.2f}×)")
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
    # The replaced section's headline becomes one entry of the new section's "Earlier runs:"
    # line (which carries the older entries along). A new RESULTS.md gets report.py's
    # "<!-- analysis -->" mark before the section, so a later bench/run.sh (which re-renders
    # everything above the mark) keeps it.
    python3 - "$UPD_OUT" "$section" <<'EOF'
import os, re, sys
dst, section = sys.argv[1], open(sys.argv[2]).read()

def history(old):
    """The "Earlier runs:" line: the old section's own entries, then its headline."""
    entries = []
    m = re.search(r"^Earlier runs: (.*)\.$", old, re.M)
    if m:
        entries.append(m.group(1))
    date = re.search(r"^Measured by `bench/updater.sh` on (\d{4}-\d\d-\d\d)", old, re.M)
    commit = re.search(r"vypusk (\S+) release build", old)
    row = re.search(r"^\|---\|.*\n(\|.*\|)$", old, re.M)
    tput = re.search(r"vypusk-update ([\d,]+) MiB/s", old)
    if date and row:
        cells = [c.strip() for c in row.group(1).strip("|").split("|")]
        ref = cells[0].split("reference: ", 1)[-1].replace(" (medians)", "")
        entries.append(
            f"{date.group(1)} ({commit.group(1) if commit else '?'}): {cells[1]} s"
            + (f", {tput.group(1)} MiB/s" if tput else "")
            + f", {cells[3]}× against {ref} (goal then {cells[4]})")
    if not entries:
        return ""
    return "Earlier runs: " + "; ".join(entries) + ".\n\n"

if os.path.exists(dst):
    old = open(dst).read()
    m = re.search(r"^## vypusk-update\n", old, re.M)
    if m:
        nxt = re.search(r"^## ", old[m.end():], re.M)
        end = m.end() + nxt.start() if nxt else len(old)
        # After the "Measured by" paragraph.
        cut = section.index("\n\n", section.index("Measured by")) + 2
        section = section[:cut] + history(old[m.start():end]) + section[cut:]
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
