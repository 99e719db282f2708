#!/usr/bin/env bash
# The long runs recorded in fuzz/README.md: each target (or those named) for FUZZ_SECONDS
# (default 300) with one job, growing a working corpus in fuzz/work/<target> from the
# committed one, then merging what adds coverage back into fuzz/corpus/<target> (libFuzzer -merge=1).
# Prints target, seconds, executions, corpus files and crashes per target.
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1 # cargo-fuzz's -Z flags on the stable toolchain; see ci.sh
FLAGS=(--sanitizer none --debug-assertions)
FUZZ_SECONDS=${FUZZ_SECONDS:-300}
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
cargo fuzz build "${FLAGS[@]}"
mkdir -p work
for target in "${targets[@]}"; do
    mkdir -p "work/$target"
    cp -r "corpus/$target/." "work/$target/"
    log="work/$target.log"
    status=0
    cargo fuzz run "${FLAGS[@]}" "$target" "work/$target" -- \
        -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    executions=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1)
    crashes=$(find "artifacts/$target" -type f 2>/dev/null | wc -l)
    if [ "$status" -eq 0 ]; then
        rm -rf "corpus/$target.min" && mkdir "corpus/$target.min"
        # Keep the hand-written seeds; merge in only the inputs that add coverage.
        cp corpus/"$target"/seed-* "corpus/$target.min/"
        cargo fuzz run "${FLAGS[@]}" "$target" "corpus/$target.min" "work/$target" -- -merge=1 \
            >"work/$target.merge.log" 2>&1
        rm -rf "corpus/$target" && mv "corpus/$target.min" "corpus/$target"
    fi
    printf '%-22s %6ss %12s executions %6s corpus files %3s crashes (exit %s)\n' \
        "$target" "$FUZZ_SECONDS" "${executions:-?}" "$(find "corpus/$target" -type f | wc -l)" "$crashes" "$status"
done
