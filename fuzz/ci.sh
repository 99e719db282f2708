#!/usr/bin/env bash
# Builds every fuzz target and runs each for FUZZ_SECONDS (default 30) on a scratch copy of its
# committed corpus, one job per target, FUZZ_JOBS targets at a time (1; 2 when CI=true). Prints
# each target's executions (a target that returns early shows as a low count) and exits
# non-zero on a crash, a timeout, an out-of-memory or a target that barely ran. Artifacts of a
# failure land in fuzz/artifacts/. See fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")"

CARGO_FUZZ_VERSION=0.13.2
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
# A target that manages fewer executions than this in its time has broken early.
MIN_EXECUTIONS=${MIN_EXECUTIONS:-1000}
# cargo-fuzz passes nightly-only flags (-Z) to cargo and rustc; the stable toolchain accepts
# them under RUSTC_BOOTSTRAP. Set here only, never for the main workspace.
export RUSTC_BOOTSTRAP=1
# No sanitizer: the code under test is safe Rust (unsafe_code = "forbid"), so AddressSanitizer
# would halve the speed for nothing; debug assertions keep overflow checks on.
FLAGS=(--sanitizer none --debug-assertions)

if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
cargo fuzz build "${FLAGS[@]}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# Runs one target; leaves its table row in $scratch/<target>.row and its log beside it.
run_target() {
    local target=$1 log="$scratch/$1.log" status=0 executions corpus result
    mkdir -p "$scratch/$target"
    cp -r "corpus/$target/." "$scratch/$target/"
    cargo fuzz run "${FLAGS[@]}" "$target" "$scratch/$target" -- \
        -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    executions=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1)
    if [ -z "$executions" ]; then
        executions=$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' | tail -n 1)
    fi
    executions=${executions:-0}
    corpus=$(find "$scratch/$target" -type f | wc -l)
    result=ok
    if [ "$status" -ne 0 ]; then
        result="FAILED (exit $status)"
    elif [ "$executions" -lt "$MIN_EXECUTIONS" ]; then
        result="FAILED (fewer than $MIN_EXECUTIONS executions)"
    fi
    printf '%-22s %8s %12s %8s  %s\n' "$target" "$FUZZ_SECONDS" "$executions" "$corpus" "$result" \
        >"$scratch/$target.row"
}

# FUZZ_JOBS targets at a time: 1 by default, as a developer's machine is shared; 2 under CI,
# which has the 2-core machine to itself (keeps the whole script within its 4-minute budget).
FUZZ_JOBS=${FUZZ_JOBS:-$([ "${CI:-}" = true ] && echo 2 || echo 1)}
for target in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$FUZZ_JOBS" ]; do wait -n || true; done
    run_target "$target" &
done
wait

failed=()
printf '%-22s %8s %12s %8s  %s\n' target seconds executions corpus result
for target in "${targets[@]}"; do
    cat "$scratch/$target.row"
    if ! grep -q ' ok$' "$scratch/$target.row"; then
        failed+=("$target")
        grep -E -A 30 'panicked|ERROR: libFuzzer|SUMMARY|deadly signal' "$scratch/$target.log" | head -n 60 >&2 \
            || tail -n 40 "$scratch/$target.log" >&2
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failing targets: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran without a crash"
