# fast.sh (kit test section): lesson 09 beyond `make check`: the scalar and AVX2 fallbacks
# pass too, the model on the fast kernel still matches every fixture and checkpoint, and a
# student who has not done lesson 09 still runs everything on lesson 01's matmul.
# Sourced by kit_test.sh (ok, bad, build, $LOG, $OPTS, $MAKE, $FIXTURES).

echo "lesson 09: other vector units, the model on the fast kernel"

# fast_check NAME BUILD-DIR MAKE-ARGS...: lesson 09's tests on the solutions, built apart
fast_check() {
    name=$1 dir=$2
    shift 2
    if $MAKE -s --no-print-directory $OPTS SRC=solutions BUILD="$dir" "$@" check-build \
        >"$LOG/fast-$name.txt" 2>&1; then
        bin=$($MAKE -s --no-print-directory $OPTS SRC=solutions BUILD="$dir" "$@" print-check-bin)
        if "$bin" --tree solutions --fixtures "$FIXTURES" --lesson 09 >"$LOG/fast-$name.txt" 2>&1; then
            ok "lesson 09, $name: $(tail -1 "$LOG/fast-$name.txt")"
        else
            bad "lesson 09, $name: $(tail -1 "$LOG/fast-$name.txt")" "$LOG/fast-$name.txt"
        fi
    else
        bad "lesson 09, $name: does not build" "$LOG/fast-$name.txt"
    fi
}

flavor=$(basename "${CC:-cc}")${SANITIZE:+-san}
case "$(uname -m)" in
x86_64 | amd64)
    fast_check "scalar fallback (NATIVE=0 OPENMP=0)" "build/$flavor-scalar" NATIVE=0 OPENMP=0
    if grep -q avx2 /proc/cpuinfo 2>/dev/null && grep -q fma /proc/cpuinfo 2>/dev/null; then
        fast_check "AVX2+FMA (ARCH_FLAGS=\"-mavx2 -mfma\")" "build/$flavor-avx2" NATIVE=0 \
            ARCH_FLAGS="-mavx2 -mfma"
    fi
    ;;
*) fast_check "without -march=native (NATIVE=0)" "build/$flavor-base" NATIVE=0 ;;
esac
# every product threaded: the model's products and most test cases are under
# PARALLEL_MIN_WORK, so this build sends them all down the threaded path
fast_check "every product on threads (-DPARALLEL_MIN_WORK=0)" "build/$flavor-threads" \
    ARCH_FLAGS="$($MAKE -s --no-print-directory $OPTS print-arch-flags) -DPARALLEL_MIN_WORK=0"

# lessons 01-08 and 10 as `make run` runs them: every linear() of the model on lesson 09
if $MAKE -s --no-print-directory $OPTS SRC=solutions check-build model-test-build \
    >"$LOG/fast-build.txt" 2>&1; then
    check_bin=$($MAKE -s --no-print-directory $OPTS SRC=solutions print-check-bin)
    model_bin=$($MAKE -s --no-print-directory $OPTS SRC=solutions print-model-test)
    "$check_bin" --matmul fast --tree solutions --fixtures "$FIXTURES" \
        >"$LOG/fast-lessons.txt" 2>&1
    if [ $? -eq 0 ]; then ok "lessons 01-10 on the fast kernel: $(tail -1 "$LOG/fast-lessons.txt")"
    else bad "lessons on the fast kernel: $(tail -1 "$LOG/fast-lessons.txt")" "$LOG/fast-lessons.txt"; fi
    "$model_bin" --matmul fast data/models/*/ >"$LOG/fast-models.txt" 2>&1
    rc=$?
    n=$(grep -c '^  ok ' "$LOG/fast-models.txt")
    if [ $rc -eq 0 ] && [ "$n" -gt 0 ] && ! grep -q '^  FAIL ' "$LOG/fast-models.txt"; then
        ok "$n Hugging Face checkpoints match PyTorch on the fast kernel (prefill, decode, greedy)"
    else
        bad "checkpoints on the fast kernel" "$LOG/fast-models.txt"
    fi
else
    bad "the fast test binaries do not build" "$LOG/fast-build.txt"
fi

# a student with lessons 01-08 done and lesson 09 untouched: 09 reports todo, the rest
# passes, and the CLI says so once and runs on lesson 01's matmul with the reference's
# greedy output; told --matmul fast, it stops at lesson 09's TODO instead
tree=build/mutants/lesson09-untouched
rm -rf "$tree" && mkdir -p "$tree" && cp -R solutions/. "$tree/"
cp lessons/09-fast-matmul/fast_matmul.c "$tree/09-fast-matmul/"
if bin=$(build "$tree" "$LOG/lesson09-todo.txt"); then
    "$bin" --tree "$tree" --fixtures "$FIXTURES" >"$LOG/lesson09-todo.txt" 2>&1
    # a lesson not started may show as one line, "todo    N tests, not started yet"
    todos=$(awk '/^  todo +[0-9]+ tests, not started yet$/ { n += $2; next } /^  todo / { n++ }
                 END { print n + 0 }' "$LOG/lesson09-todo.txt")
    fails=$(grep -cE '^  (FAIL|ERROR|CRASH) ' "$LOG/lesson09-todo.txt")
    # an optional lesson not started is not counted as failed (check_main.c, working_on)
    if [ "$todos" -gt 0 ] && [ "$fails" -eq 0 ] &&
        grep -q '^[1-9][0-9]* done, 0 todo, 0 failing$' "$LOG/lesson09-todo.txt"; then
        ok "lesson 09 untouched: its $todos tests report todo (not counted), every other lesson passes"
    else
        bad "lesson 09 untouched: $todos todo, $fails failed or crashed" "$LOG/lesson09-todo.txt"
    fi
else
    bad "lessons 01-08 with lesson 09 untouched do not build" "$LOG/lesson09-todo.txt"
fi
M=data/models/qwen3-moe-tiny
if $MAKE -s --no-print-directory $OPTS SRC="$tree" cli-build >"$LOG/lesson09-cli.txt" 2>&1; then
    cli09=$($MAKE -s --no-print-directory $OPTS SRC="$tree" print-cli-bin)
    want=$(cat "$M/expected_greedy.txt")
    got=$("$cli09" generate --model "$M" --ids "$(cat "$M/prompt_ids.txt")" --greedy \
        -n "$(echo "$want" | wc -w)" --print-ids 2>"$LOG/lesson09-cli.txt")
    if [ "$got" = "$want" ] && [ "$(grep -c 'lesson 09 is not written yet' "$LOG/lesson09-cli.txt")" = 1 ] &&
        ! grep -q "TODO at" "$LOG/lesson09-cli.txt"; then
        ok "lesson 09 untouched: the CLI says so once, runs on lesson 01's matmul, greedy output as PyTorch's"
    else
        bad "lesson 09 untouched: the CLI says '$got', expected '$want'" "$LOG/lesson09-cli.txt"
    fi
    if "$cli09" generate --model "$M" --ids 1 -n 1 --matmul fast >"$LOG/lesson09-forced.txt" 2>&1; then
        bad "lesson 09 untouched, --matmul fast: the CLI ran anyway" "$LOG/lesson09-forced.txt"
    elif grep -q "fast_matmul.*is not written yet" "$LOG/lesson09-forced.txt"; then
        ok "lesson 09 untouched, --matmul fast: the CLI stops and names lesson 09's TODO"
    else
        bad "lesson 09 untouched, --matmul fast: no clear error" "$LOG/lesson09-forced.txt"
    fi
else
    bad "the CLI with lesson 09 untouched does not build" "$LOG/lesson09-cli.txt"
fi
