# reliability.sh: malformed inputs and leaks, sourced by kit_test.sh (which defines ok, bad,
# build, $LOG, $OPTS and $MAKE).
#
#   - every case of the malformed-input corpus (harness/test/malformed/cases/, written by
#     harness/test/malformed/make_corpus.py; its README gives the format) is rejected:
#     exit 1 or 2, the expected text in a message of one line, no sanitizer report;
#   - the CLI's load/generate/free cycle (and its failures) and the harness run leak
#     nothing under LeakSanitizer (ASan's with SANITIZE=1, else a -fsanitize=leak build).

MALFORMED=harness/test/malformed
SANITIZER_REPORT='Sanitizer|runtime error:'

echo "malformed models, configs, fixtures and command lines are rejected"
# (one make call per question: each reads every dependency file under build/)
rel_bins=$($MAKE -s --no-print-directory $OPTS SRC=solutions print-cli-bin print-check-bin)
rel_cli=$(echo "$rel_bins" | sed -n 1p)
rel_check=$(echo "$rel_bins" | sed -n 2p)
if ! $MAKE -s --no-print-directory $OPTS SRC=solutions "$rel_cli" "$rel_check" \
    >"$LOG/reliability_build.txt" 2>&1; then
    bad "the CLI and check do not build" "$LOG/reliability_build.txt"
    rel_cli=
fi

# rel_case DIR: lays the case over a copy of base/, runs it, checks the message
rel_case() {
    cdir=$1
    name=$(basename "$cdir")
    work=$LOG/malformed/$name
    rm -rf "$work" && mkdir -p "$work"
    set --
    if [ -f "$cdir/args" ]; then
        while IFS= read -r line || [ -n "$line" ]; do
            line=$(printf '%s\n' "$line" | sed "s|@MODEL@|$work|g")
            set -- "$@" "$(printf '%b' "$line")"
        done <"$cdir/args"
    else
        set -- generate --model "$work" --ids "1 2" -n 2 --greedy
    fi
    [ "$1" = check ] || cp "$MALFORMED"/base/* "$work/"
    if [ -f "$cdir/remove" ]; then
        while IFS= read -r f; do rm -rf "${work:?}/$f"; done <"$cdir/remove"
    fi
    (cd "$cdir" && find . -type f ! -name expect ! -name args ! -name remove) |
        while IFS= read -r f; do
            mkdir -p "$work/$(dirname "$f")" && cp "$cdir/$f" "$work/$f"
        done
    want=$(sed "s|@MODEL@|$work|g" "$cdir/expect")
    if [ "$1" = check ]; then
        shift
        "$rel_check" "$@" >"$work.out" 2>&1
        rc=$?
        msg=$(grep -F -- "$want" "$work.out" | head -1 | sed 's/^ *//')
        lines_ok=1
    else
        "$rel_cli" "$@" >"$work.out" 2>"$work.err"
        rc=$?
        cat "$work.err" >>"$work.out"
        msg=$(head -1 "$work.err")
        if [ "$(wc -l <"$work.err")" -eq 1 ]; then lines_ok=1; else lines_ok=0; fi
    fi
    if { [ $rc -eq 1 ] || [ $rc -eq 2 ]; } && [ $lines_ok -eq 1 ] &&
        grep -qF -- "$want" "$work.out" && ! grep -qE "$SANITIZER_REPORT" "$work.out"; then
        rel_passed=$((rel_passed + 1))
        printf '  ok      %-28s %s\n' "$name" "$(echo "$msg" | sed "s|$work|DIR|g" | cut -c1-150)" \
            >>"$LOG/malformed.txt"
    else
        bad "malformed $name: exit $rc, expected one line containing \"$want\"" "$work.out"
    fi
}

if [ -n "$rel_cli" ]; then
    # the base model itself is fine: what the cases break is what they change
    if "$rel_cli" generate --model "$MALFORMED/base" --prompt "hi" -n 4 >"$LOG/malformed_base.txt" 2>&1
    then ok "the malformed corpus's base model runs"
    else bad "the malformed corpus's base model does not run" "$LOG/malformed_base.txt"; fi
    rel_passed=0
    rel_total=0
    : >"$LOG/malformed.txt"
    for dir in "$MALFORMED"/cases/*/; do
        rel_total=$((rel_total + 1))
        rel_case "${dir%/}"
    done
    if [ "$rel_passed" -eq "$rel_total" ] && [ "$rel_total" -ge 30 ]; then
        ok "all $rel_total malformed cases rejected with their message (list: $LOG/malformed.txt)"
    else
        bad "$rel_passed of $rel_total malformed cases rejected as expected (at least 30 expected)"
    fi
fi

echo "no leaks in the CLI's load/generate/free cycle and the harness run"
# LeakSanitizer: part of ASan in the SANITIZE=1 build; otherwise a build of its own with
# -fsanitize=leak only (same compiler, same -march and OpenMP flags as the tested build;
# valgrind cannot run -march=native code on AVX-512 machines).
if [ -n "${SANITIZE:-}" ]; then
    leak_cli=$rel_cli
    leak_check=$rel_check
    leak_tool="LeakSanitizer, with ASan"
else
    leak_build=build/$(basename "${CC:-cc}")-lsan
    leak_opts="BUILD=$leak_build SANITIZE=1 SANFLAGS=-fsanitize=leak"
    # shellcheck disable=SC2086
    leak_bins=$($MAKE -s --no-print-directory $OPTS $leak_opts SRC=solutions print-cli-bin \
        print-check-bin)
    leak_cli=$(echo "$leak_bins" | sed -n 1p)
    leak_check=$(echo "$leak_bins" | sed -n 2p)
    leak_tool="LeakSanitizer, -fsanitize=leak"
    # shellcheck disable=SC2086
    if ! $MAKE -s --no-print-directory $OPTS $leak_opts SRC=solutions "$leak_cli" "$leak_check" \
        >"$LOG/leak_build.txt" 2>&1; then
        bad "the -fsanitize=leak build of the CLI and check fails" "$LOG/leak_build.txt"
        leak_cli=
    fi
fi

# rel_leak NAME EXPECTED-EXIT CMD...: the command exits as expected, LeakSanitizer is silent
rel_leak() {
    name=$1 want_rc=$2
    shift 2
    ASAN_OPTIONS=detect_leaks=1:${ASAN_OPTIONS:-} LSAN_OPTIONS=exitcode=23:${LSAN_OPTIONS:-} \
        "$@" >"$LOG/leak.txt" 2>&1
    rc=$?
    if [ $rc -eq "$want_rc" ] && ! grep -qE "$SANITIZER_REPORT" "$LOG/leak.txt"; then
        ok "$name: no leak ($leak_tool)"
    else
        bad "$name: exit $rc (expected $want_rc) under $leak_tool" "$LOG/leak.txt"
    fi
}

if [ -n "$rel_cli" ] && [ -n "$leak_cli" ]; then
    M=data/models/qwen3-moe-tiny
    printf '%%\nA fortune, to be scored.\n%%\nAnother one.\n' >"$LOG/fortunes.txt"
    rel_leak "cli generate (sampling, routing dump)" 0 "$leak_cli" generate --model "$M" \
        --prompt "Hello" -n 16 --temperature 0.9 --top-p 0.9 --dump-routing "$LOG/leak_r.tsv"
    rel_leak "cli generate (sharded 5.x checkpoint, greedy ids)" 0 "$leak_cli" generate \
        --model data/models/qwen3-moe-sharded-v5 --ids "1 2 3" -n 4 --greedy --print-ids
    rel_leak "cli logits (bf16, --top-k 1, --disable-expert)" 0 "$leak_cli" logits \
        --model data/models/qwen3-moe-tiny-bf16 --ids "1 2 3 4" --out "$LOG/leak.bin" \
        --top-k 1 --disable-expert 1:0
    rel_leak "cli perplexity" 0 "$leak_cli" perplexity --model "$M" --file "$LOG/fortunes.txt"
    # loads that fail half-way free what they built
    rel_leak "cli load failing after the weights (--top-k 9)" 1 "$leak_cli" generate \
        --model "$M" --ids 1 --top-k 9
    rel_leak "cli load failing in a shard (malformed index-tensor-in-two-shards)" 1 "$leak_cli" \
        generate --model "$LOG/malformed/index-tensor-in-two-shards" --ids 1
    rel_leak "cli generate stopping on NaN logits (malformed model-nan-dense-matrix)" 1 \
        "$leak_cli" generate --model "$LOG/malformed/model-nan-dense-matrix" --ids 1 -n 2
    rel_leak "check --tree solutions --no-fork (every lesson)" 0 "$leak_check" --tree solutions \
        --fixtures "$FIXTURES" --no-fork
    rel_leak "check on a malformed fixture (fixture-missing-tensor)" 1 "$leak_check" \
        --tree solutions --fixtures "$LOG/malformed/fixture-missing-tensor" --lesson 01 --no-fork
fi
