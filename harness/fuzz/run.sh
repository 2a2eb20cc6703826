#!/bin/sh
# run.sh SECONDS TARGET...: runs each built fuzz target (build/fuzz/fuzz_TARGET) for SECONDS
# from its seeds, one after the other, and stops at the first crash. SECONDS 0 replays the
# seeds and what earlier runs kept, once each, without fuzzing. Used by `make fuzz` and
# `make fuzz-regress` (mk/fuzz.mk).
set -u
seconds=$1
shift
dir=build/fuzz
for t in "$@"; do
    case $t in
    safetensors) max_len=65536 ;;
    config) max_len=8192 ;;
    args) max_len=1024 ;;
    model) max_len=32768 ;;
    tape) max_len=16384 ;;
    tokenizer) max_len=131072 ;;
    *) echo "run.sh: no fuzz target '$t' (safetensors, config, args, model, tape, tokenizer)" >&2; exit 2 ;;
    esac
    mkdir -p "$dir/corpus/$t" "$dir/artifacts/$t"
    # -close_fd_mask=3: the targets' own rejection messages stay out of the log
    opts="-timeout=10 -rss_limit_mb=2048 -max_len=$max_len -close_fd_mask=3 \
          -artifact_prefix=$dir/artifacts/$t/"
    if [ "$seconds" -eq 0 ]; then
        log=$dir/$t-regress.log
        # shellcheck disable=SC2086
        "$dir/fuzz_$t" $opts -runs=0 "harness/fuzz/corpus/$t" "$dir/corpus/$t" >"$log" 2>&1
        rc=$?
        n=$(find "harness/fuzz/corpus/$t" "$dir/corpus/$t" -type f | wc -l)
        [ $rc -eq 0 ] && echo "fuzz-regress $t: $n inputs, no crash"
    else
        log=$dir/$t.log
        echo "== fuzz $t for $seconds s (log: $log)"
        # shellcheck disable=SC2086
        "$dir/fuzz_$t" $opts -dict="harness/fuzz/$t.dict" -max_total_time="$seconds" \
            -print_final_stats=1 "$dir/corpus/$t" "harness/fuzz/corpus/$t" >"$log" 2>&1
        rc=$?
        grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | sed 's/^/   /'
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" |
            sed 's/^/   /'
    fi
    if [ $rc -ne 0 ]; then
        echo "fuzz $t FAILED (exit $rc): see $log and $dir/artifacts/$t/"
        grep -E 'ERROR:|SUMMARY:|runtime error|Test unit written' "$log" | head -5 | sed 's/^/   /'
        exit 1
    fi
done
