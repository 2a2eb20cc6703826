#!/bin/sh
# kit_test.sh: the kit's own test, run by `make test` (and by CI).
#
#   1. the harness self-tests (safetensors/JSON reader, comparison);
#   2. the solutions pass every lesson's tests;
#   3. the untouched skeletons compile, fail every test as "todo", and nothing crashes;
#   4. every catalogued mistake (harness/mistakes/*.diff) applied to the solutions is
#      caught, with its named diagnosis;
#   5. solutions/ holds the lesson sources (.c, .h) and nothing else;
#   6. build/moekit, the CLI `make` and `make run` build, is left as it was: mutants and
#      test builds live in their own build/ directories.
# Environment: CC, SANITIZE, FIXTURES, MAKE (set by the Makefile).
set -u
MAKE=${MAKE:-make}
FIXTURES=${FIXTURES:-data/fixtures}
OPTS="CC=${CC:-cc} SANITIZE=${SANITIZE:-} WERROR=1 FIXTURES=$FIXTURES"
LOG=build/kit_test
rm -rf "$LOG" && mkdir -p "$LOG"
passed=0
failed=0
# build/moekit is what `make` and `make run` built; on a fresh clone, build it first so
# that section 6 has something to hold.
[ -f build/moekit ] || $MAKE -s --no-print-directory $OPTS SRC=solutions cli >"$LOG/cli.txt" 2>&1
cli_before=$(cksum build/moekit 2>/dev/null || echo absent)

ok() { passed=$((passed + 1)); printf '  ok      %s\n' "$1"; }
bad() {
    failed=$((failed + 1))
    printf '  FAIL    %s\n' "$1"
    [ -n "${2:-}" ] && [ -f "$2" ] && sed -n '1,40p' "$2" | sed 's/^/          /'
    return 0
}

# build SRC LOGFILE: builds the check binary of a lesson tree, prints its path
build() {
    $MAKE -s --no-print-directory $OPTS SRC="$1" check-build >"$2" 2>&1 || return 1
    $MAKE -s --no-print-directory $OPTS SRC="$1" print-check-bin
}

# mutant TREE DIFF LOGFILE: TREE = solutions/ with DIFF applied, its build directory
# seeded with the solutions' objects (their dependency lists renamed to TREE), so that
# building it compiles only the files DIFF touched (patch makes them newer than the
# objects; cp -p keeps the rest older). Needs the solutions built ($sol_objs). 1 when the
# diff does not apply.
mutant() {
    rm -rf "$1" && mkdir -p "$1" && cp -Rp solutions/. "$1/"
    patch -s -p1 -d "$1" <"$2" >"$3" 2>&1 || return 1
    [ -d "${sol_objs:-}" ] || return 0
    objs=$(dirname "$($MAKE -s --no-print-directory $OPTS SRC="$1" print-check-bin)")
    rm -rf "$objs" && mkdir -p "$objs" && cp -Rp "$sol_objs/." "$objs/"
    find "$objs" -type f ! -name '*.o' ! -name '*.d' -exec rm -f {} +
    id=$(echo "$1" | tr / _)
    find "$objs" -name '*.d' -exec sed -i "s|tree-solutions/|tree-$id/|g; s|^solutions/|$1/|; s| solutions/| $1/|g" {} +
}

echo "harness self-tests"
if $MAKE -s --no-print-directory $OPTS selftest >"$LOG/selftest.txt" 2>&1; then
    ok "$(tail -1 "$LOG/selftest.txt") (safetensors, JSON, comparison)"
else
    bad "harness self-test" "$LOG/selftest.txt"
fi

echo "solutions pass"
bin=$(build solutions "$LOG/build-solutions.txt") || bin=
sol_objs=${bin:+$(dirname "$bin")}
if [ -z "$bin" ]; then
    bad "solutions do not build" "$LOG/build-solutions.txt"
elif "$bin" --tree solutions --fixtures "$FIXTURES" >"$LOG/solutions.txt" 2>&1; then
    ok "solutions: $(tail -1 "$LOG/solutions.txt")"
else
    bad "solutions: $(tail -1 "$LOG/solutions.txt")" "$LOG/solutions.txt"
fi

echo "skeletons fail cleanly"
bin=$(build lessons "$LOG/build-lessons.txt") || bin=
if [ -z "$bin" ]; then
    bad "skeletons do not build" "$LOG/build-lessons.txt"
else
    "$bin" --tree lessons --fixtures "$FIXTURES" --full >"$LOG/lessons.txt" 2>&1
    rc=$?
    results=$(grep -cE '^  (ok|FAIL|todo|ERROR|CRASH) ' "$LOG/lessons.txt")
    todos=$(grep -cE '^  todo ' "$LOG/lessons.txt")
    if [ "$rc" -eq 1 ] && [ "$results" -gt 0 ] && [ "$todos" -eq "$results" ] &&
        grep -qE '^0 done, [1-9][0-9]* todo, 0 failing$' "$LOG/lessons.txt"; then
        ok "skeletons: all $todos tests report todo, exit 1, no crash"
    else
        bad "skeletons: exit $rc, $todos of $results tests todo" "$LOG/lessons.txt"
    fi
fi

echo "catalogued mistakes are diagnosed"
for diff in harness/mistakes/*.diff; do
    name=$(sed -n 's/^mistake: //p' "$diff")
    lesson=$(sed -n 's/^lesson: //p' "$diff")
    expect=$(sed -n 's/^expect: //p' "$diff")
    tree=build/mutants/$name
    if ! mutant "$tree" "$diff" "$LOG/$name.txt"; then
        bad "$name: the diff no longer applies to solutions/$lesson" "$LOG/$name.txt"
        continue
    fi
    bin=$(build "$tree" "$LOG/$name.txt") || { bad "$name: does not build" "$LOG/$name.txt"; continue; }
    "$bin" --tree solutions --fixtures "$FIXTURES" --lesson "$lesson" >"$LOG/$name.txt" 2>&1
    rc=$?
    skipped=$(sed -n 's/^ *skip  *//p' "$LOG/$name.txt" | head -1)
    if [ "$rc" -eq 1 ] && grep 'looks like:' "$LOG/$name.txt" | grep -qF "$expect"; then
        ok "$name: caught, \"$expect\""
    elif [ "$rc" -eq 0 ] && [ -n "$skipped" ]; then # lesson 12 without MPI
        echo "  skip    $name: lesson $lesson is skipped here: $skipped"
    else
        bad "$name: exit $rc, diagnosis \"$expect\" not found" "$LOG/$name.txt"
    fi
done

echo "Hugging Face checkpoints match the PyTorch reference (data/models)"
if $MAKE -s --no-print-directory $OPTS SRC=solutions model-test-build >"$LOG/model_test.txt" 2>&1; then
    "$($MAKE -s --no-print-directory $OPTS SRC=solutions print-model-test)" data/models/*/ \
        >"$LOG/model_test.txt" 2>&1
    while IFS= read -r line; do
        case "$line" in
        "  ok "*) ok "${line#  ok      }" ;;
        "  FAIL "*) bad "${line#  FAIL    }" ;;
        esac
    done <"$LOG/model_test.txt"
else
    bad "model_test does not build" "$LOG/model_test.txt"
fi

echo "the moekit command line"
if $MAKE -s --no-print-directory $OPTS SRC=solutions cli-build >"$LOG/cli_build.txt" 2>&1; then
    CLI=$($MAKE -s --no-print-directory $OPTS SRC=solutions print-cli-bin)
    . harness/test/cli_test.sh
else
    bad "the CLI does not build" "$LOG/cli_build.txt"
fi

echo "a wrong earlier lesson is named where the model breaks"
tree=build/mutants/lesson08-with-rope_interleaved
mutant "$tree" harness/mistakes/03-rope_interleaved.diff "$LOG/lesson08-rope.txt"
bin=$(build "$tree" "$LOG/lesson08-rope.txt") && "$bin" --tree solutions --fixtures "$FIXTURES" \
    >"$LOG/lesson08-rope.txt" 2>&1
if grep -q "finish lesson 03 first" "$LOG/lesson08-rope.txt" &&
    grep -q "attn_block, layer 0" "$LOG/lesson08-rope.txt"; then
    ok "lesson 08 with a wrong rope: \"attn_block, layer 0\" and \"finish lesson 03 first\""
else
    bad "lesson 08 does not point at the wrong lesson 03" "$LOG/lesson08-rope.txt"
fi

# Further sections, one file per area, sourced here: they use ok, bad, build, $LOG, $OPTS.
for part in harness/test/kit_test.d/*.sh; do
    [ -f "$part" ] && . "$part"
done

echo "solutions/ holds the lesson sources, once"
# The lesson READMEs and Makefiles live in lessons/ only; solutions/NN-name/ has exactly
# the .c and .h files of lessons/NN-name/, complete.
a=$(cd lessons && find . -type f \( -name '*.c' -o -name '*.h' \) | sort)
b=$(cd solutions && find . -type f | sort)
if [ "$a" = "$b" ]; then ok "same $(echo "$a" | wc -l) source files, nothing else in solutions/"
else bad "lessons/ sources and solutions/ differ: $(printf '%s\n%s\n' "$a" "$b" | sort | uniq -u | tr '\n' ' ')"; fi

echo "build/moekit is the CLI make built, untouched by the test builds"
cli_after=$(cksum build/moekit 2>/dev/null || echo absent)
if [ "$cli_before" = "$cli_after" ]; then ok "build/moekit unchanged (${cli_after%% *})"
else bad "build/moekit was replaced during make test: before '$cli_before', after '$cli_after'"; fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
