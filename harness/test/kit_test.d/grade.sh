# grade.sh (kit test section): grading and the student release, as docs/instructors.md
# promises them. Sourced by kit_test.sh (ok, bad, build, $LOG, $OPTS, $MAKE, $FIXTURES).
#
#   - the points table names every test there is, and only those;
#   - the solutions get full marks, the untouched skeletons 0, and a submission where one
#     lesson segfaults, one loops and one leaks loses exactly those items, with the
#     reason in results.json; every results.json validates;
#   - lesson 12 (its ranks under mpirun, in the sandbox): full marks for the solutions, 0
#     for the skeleton, a catalogued mistake loses exactly the test that catches it; a
#     machine without MPI leaves it out and says so;
#   - make grade-all writes one CSV row per student;
#   - private fixtures (make fixtures SEED=...): the solutions pass them, and a "solution"
#     that returns the public fixture's answers fails them (needs python3-torch);
#   - make student-release: no solution in it; unpacked alone it builds, make check fails
#     as skeletons do, make test runs make check, make hint and make watch work;
#   - make gradescope: the bundle grades a submission into a valid results.json, with
#     portable flags (NATIVE=0), and a .tar.gz upload too;
#   - what a submission must not get away with: a leak behind an out-of-bounds read keeps
#     no leaks point; reports show paths relative to the submission; grading compiles with
#     make check's flags; #include of a solution is rejected; control characters from the
#     student's output are stripped; compile errors stay visible with VISIBILITY=hidden;
#     unsafe archives (../, absolute, links, bombs) are refused.

echo "grading (make grade, grade-all, gradescope, student-release, hint, watch)"
grade_failed_before=$failed
G=$LOG/grade
rm -rf "$G" && mkdir -p "$G"
GCC=$(echo "$OPTS" | sed -n 's/^CC=\([^ ]*\).*/\1/p')
GCC=${GCC:-cc}
points=harness/grade/points.tsv

# grade NAME SUBMISSION [VAR=value ...]: make grade into $G/NAME; the table in $G/NAME.txt
grade() {
    name=$1 sub=$2
    shift 2
    $MAKE -s --no-print-directory grade CC="$GCC" SUBMISSION="$sub" STUDENT="kit-test-$name" \
        RESULTS="$G/$name" "$@" >"$G/$name.txt" 2>&1
}
# total FILE: "score max" from a grade table's last line
total() { awk '/^Total / { print $2, $4 }' "$1"; }
# item NAME LESSON TEST: the score of one row of a grade table
item() {
    awk -v lesson="$2" -v test="$3" '
        /^ *[0-9.]+ +[0-9.]+  / {
            if ($3 ~ /^[0-9][0-9]$/) cur = $3
            # the Test column on (a long lesson name pushes it right)
            line = $0; sub(/^ *[0-9.]+ +[0-9.]+  /, "", line)
            if ($3 ~ /^[0-9][0-9]$/) sub(/^[0-9][0-9] [^ ]+ +/, "", line)
            sub(/^ +/, "", line)
            if (cur == lesson && index(line, test " ") == 1) print $1
        }' "$G/$1/table.txt"
}
# points_of LESSON [EXCEPT]: the points of a lesson's rows, all but EXCEPT
# points_item LESSON TEST: the points of one row, as %.2f
points_of() { awk -v l="$1" -v x="${2:-}" '$1 == l && NF >= 3 { t = $0; sub(/^[^ \t]+[ \t]+[^ \t]+[ \t]+/, "", t); if (t != x) s += $2 } END { print s + 0 }' "$points"; }
points_item() { awk -v l="$1" -v x="$2" '$1 == l && NF >= 3 { t = $0; sub(/^[^ \t]+[ \t]+[^ \t]+[ \t]+/, "", t); if (t == x) s += $2 } END { printf "%.2f", s }' "$points"; }
validate() { "$REPORT" --validate "$1" >"$G/validate.txt" 2>&1; }
# lesson_sum NAME LESSON: the points a grade table gives a lesson
lesson_sum() {
    awk -v lesson="$2" '/^ *[0-9.]+ +[0-9.]+  / { if ($3 ~ /^[0-9][0-9]$/) cur = $3; if (cur == lesson) s += $1 }
        END { printf "%.2f", s }' "$G/$1/table.txt"
}

if ! $MAKE -s --no-print-directory CC="$GCC" SRC=solutions check-build grade-tools >"$G/tools.txt" 2>&1; then
    bad "the grader does not build" "$G/tools.txt"
    return 0 2>/dev/null || exit 1
fi
REPORT=$($MAKE -s --no-print-directory CC="$GCC" SRC=solutions grade-vars | sed -n "s/^G_REPORT='\(.*\)'$/\1/p")
CHECK=$($MAKE -s --no-print-directory CC="$GCC" SRC=solutions print-check-bin)

# ---- the points table and the tests agree ----------------------------------------------------
# (a lesson the table marks "# not graded: NN" has no rows)
ungraded=$(sed -n 's/^# not graded: \([0-9][0-9]\).*/\1/p' "$points" | paste -sd' ' -)
"$CHECK" --list | awk -v skip=" $ungraded " '/^[0-9]/ { id = substr($0, 1, 2); next }
    index(skip, " " id " ") { next }
    { t = $0; sub(/^ +/, "", t); sub(/ \(cases [^)]*\)$/, "", t); print id "\t" t }' | sort >"$G/tests.txt"
awk '$1 ~ /^[0-9][0-9]$/ && NF >= 3 { t = $0; sub(/^[^ \t]+[ \t]+[^ \t]+[ \t]+/, "", t)
    if (t != "memory" && t != "leaks") print $1 "\t" t }' "$points" | sort >"$G/rows.txt"
missing=$(comm -23 "$G/tests.txt" "$G/rows.txt" | tr '\t' ' ' | paste -sd, -)
extra=$(comm -13 "$G/tests.txt" "$G/rows.txt" | tr '\t' ' ' | paste -sd, -)
if [ -z "$missing$extra" ]; then
    ok "$points gives points to all $(wc -l <"$G/tests.txt" | tr -d ' ') tests, and names no other"
else
    bad "$points and the tests differ: no row for [$missing]; rows for no test [$extra] (add or fix rows: LESSON POINTS TEST)"
fi

# ---- the solutions: full marks ---------------------------------------------------------------
# (lesson 12 needs MPI: without it the grader leaves it out, points and maximum)
have_mpi='' no_mpi=12
command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1 && have_mpi=1 no_mpi=none
max=$(awk -v skip="$no_mpi" '$1 == "bonus" { b[$2] = 1 } $1 ~ /^[0-9][0-9]$/ && NF >= 3 && $1 != skip { p[$1] += $2 }
    END { for (l in p) if (!(l in b)) s += p[l]; print s }' "$points")
all=$(awk -v skip="$no_mpi" '$1 ~ /^[0-9][0-9]$/ && NF >= 3 && $1 != skip { s += $2 } END { print s }' "$points")
grade solutions solutions
# shellcheck disable=SC2046 # "score max": two words
set -- $(total "$G/solutions.txt")
if [ "${1:-}" = "$(printf '%.2f' "$all")" ] && [ "${2:-}" = "$max" ] && validate "$G/solutions/results.json"; then
    ok "make grade on solutions/: $1 of $2 (bonus included), results.json valid"
else
    bad "make grade on solutions/: ${1:-?} of ${2:-?}, expected $all of $max" "$G/solutions.txt"
    sed 's/^/          /' "$G/validate.txt"
fi

# ---- the untouched skeletons: 0 ----------------------------------------------------------------
grade skeletons lessons
# shellcheck disable=SC2046 # "score max": two words
set -- $(total "$G/skeletons.txt")
if [ "${1:-}" = "0.00" ] && validate "$G/skeletons/results.json" &&
    [ "$(grep -c '"status": "passed"' "$G/skeletons/results.json")" -eq 0 ]; then
    ok "make grade on lessons/ as shipped: 0 of $2, every item failed, results.json valid"
else
    bad "make grade on the skeletons: ${1:-?} of ${2:-?}, expected 0" "$G/skeletons.txt"
fi

# ---- segfault, endless loop, leak: only those items lose points ---------------------------------
# inject FILE FUNCTION CODE: CODE as the first statement of FUNCTION's body
inject() {
    awk -v fn="$2" -v code="$3" '{ print }
        !done && $0 ~ ("^[a-z].*[ *]" fn "\\(") { sig = 1 }
        sig && !done && /\{[ \t]*$/ { print "    " code; done = 1 }' "$1" >"$1.new" &&
        ! cmp -s "$1" "$1.new" && mv "$1.new" "$1"
}
bad_sub=$G/sub-bad
mkdir -p "$bad_sub" && cp -R solutions/01-* solutions/02-* solutions/03-* solutions/04-* "$bad_sub/"
if inject "$bad_sub"/01-*/matmul.c matmul '{ volatile float *volatile nowhere = 0; *nowhere = 1.0f; }' &&
    inject "$bad_sub"/03-*/rope.c rope 'for (volatile int spin = 1; spin;) {}' &&
    inject "$bad_sub"/02-*/rmsnorm.c rmsnorm \
        '{ float *volatile scratch = malloc(sizeof(float) * 16); scratch[0] = 1.0f; }' &&
    { echo '#include <stdlib.h>'; cat "$bad_sub"/02-*/rmsnorm.c; } >"$G/rmsnorm.c" &&
    mv "$G/rmsnorm.c" "$bad_sub"/02-*/rmsnorm.c; then
    start=$(date +%s)
    grade bad "$bad_sub" LESSONS="01 02 03 04" TIMEOUT=2 MAX_TIMEOUTS=1
    secs=$(($(date +%s) - start))
    J=$G/bad/results.json
    want=$(($(points_of 02 leaks) + $(points_of 04)))
    # shellcheck disable=SC2046 # "score max": two words
    set -- $(total "$G/bad.txt")
    # 01 and 03: nothing; 02: all but leaks; 04 (untouched): everything
    if [ "${1:-}" = "$(printf '%.2f' "$want")" ] && validate "$J" &&
        [ "$(lesson_sum bad 01)" = 0.00 ] && [ "$(lesson_sum bad 03)" = 0.00 ] &&
        [ "$(item bad 02 leaks)" = 0.00 ] &&
        [ "$(lesson_sum bad 02)" = "$(printf '%.2f' "$(points_of 02 leaks)")" ] &&
        [ "$(lesson_sum bad 04)" = "$(printf '%.2f' "$(points_of 04)")" ] &&
        grep -q 'Segmentation fault' "$J" && grep -qE '(UndefinedBehavior|Address)Sanitizer.*matmul\.c:[0-9]' "$J" &&
        grep -q 'timed out after 2 s' "$J" && grep -q 'LeakSanitizer: memory allocated in rmsnorm (rmsnorm.c:' "$J"; then
        ok "segfault (01), endless loop (03), leak (02): $1 of $2, only their items lost, reasons in results.json (${secs} s)"
    else
        bad "a submission with a segfault, a loop and a leak: ${1:-?} of ${2:-?}, expected $want" "$G/bad/table.txt"
    fi
else
    bad "could not make the segfault/loop/leak submission from solutions/ (did a function name change?)"
fi

# ---- lesson 12: the ranks under mpirun, in the sandbox -----------------------------------------
if [ -n "$have_mpi" ]; then
    ep_all=$(printf '%.2f' "$(points_of 12)")
    ep_tests=$(awk '$1 == "12" && NF >= 3' "$points" | wc -l | tr -d ' ')
    if [ "$(lesson_sum solutions 12)" = "$ep_all" ] && [ "$ep_tests" -ge 2 ] &&
        grep -q '12 expert-parallel' "$G/solutions/table.txt"; then
        ok "lesson 12 graded: the solutions get its $ep_all points ($ep_tests tests, ranks under mpirun in the sandbox)"
    else
        bad "lesson 12 on solutions/: $(lesson_sum solutions 12) of $ep_all" "$G/solutions/table.txt"
    fi
    if [ "$(lesson_sum skeletons 12)" = 0.00 ] && grep -q '12 expert-parallel.*not written yet' "$G/skeletons/table.txt" &&
        ! grep -A1 '12 expert-parallel' "$G/skeletons/table.txt" | grep -qE 'CRASH|TIMEOUT|did not compile'; then
        ok "lesson 12's skeleton: 0 points, reported as not written yet (a TODO), no crash"
    else
        bad "lesson 12's skeleton: $(lesson_sum skeletons 12) points, or not reported as a TODO" "$G/skeletons/table.txt"
    fi
    # a catalogued mistake in the layer (the weight applied twice): the exchange test keeps
    # its points, the layer's test loses all of its cases
    ep=$G/sub-ep-mistake
    mkdir -p "$ep" && cp -R solutions/12-* "$ep/"
    if patch -s -p1 -d "$ep" <harness/mistakes/12-ep_weights_twice.diff; then
        grade ep-mistake "$ep" LESSONS=12
        if [ "$(item ep-mistake 12 'ep exchange')" = "$(points_item 12 'ep exchange')" ] &&
            [ "$(item ep-mistake 12 ep_moe_forward)" = 0.00 ] &&
            [ "$(lesson_sum ep-mistake 12)" = "$(points_item 12 'ep exchange')" ] &&
            grep -q 'routing weight applied twice' "$G/ep-mistake/results.json" && validate "$G/ep-mistake/results.json"; then
            ok "lesson 12 with mistake ep_weights_twice: only ep_moe_forward's $(points_item 12 ep_moe_forward) points lost, the mistake named"
        else
            bad "lesson 12 with mistake ep_weights_twice: exchange $(item ep-mistake 12 'ep exchange'), layer $(item ep-mistake 12 ep_moe_forward) (expected $(points_item 12 'ep exchange') and 0.00)" "$G/ep-mistake/table.txt"
        fi
    else
        bad "harness/mistakes/12-ep_weights_twice.diff does not apply to solutions/"
    fi
fi
# without MPI (MPICC= stands for a machine without it): lesson 12 left out, and said so
grade nompi solutions LESSONS="01 12" MPICC=
# shellcheck disable=SC2046 # "score max": two words
set -- $(total "$G/nompi.txt")
if [ "${1:-}" = "$(printf '%.2f' "$(points_of 01)")" ] && ! grep -q '12 expert-parallel' "$G/nompi/table.txt" &&
    grep -q 'lesson 12 is skipped.*apt-get install -y openmpi-bin libopenmpi-dev' "$G/nompi.txt"; then
    ok "without MPI, lesson 12 is skipped (its points count neither way) with the install line"
else
    bad "without MPI: ${1:-?} of ${2:-?} for lessons 01 and 12, or no install line" "$G/nompi.txt"
fi

# ---- what a submission must not get away with (issue 13, first part) --------------------------
# a leak plus an out-of-bounds read: ASan stops every case before its leak check, so the
# lesson is run again with LeakSanitizer alone, and the leaks point goes. The submission is
# named by its absolute path: no report may show it, nor the kit's.
oob=$PWD/$G/sub-oobleak
mkdir -p "$oob" && cp -R solutions/02-* "$oob/"
if inject "$oob"/02-*/rmsnorm.c rmsnorm \
    '{ float *volatile scratch = malloc(sizeof(float) * 16); scratch[0] = 1.0f; volatile float past = scratch[16]; (void)past; }' &&
    { echo '#include <stdlib.h>'; cat "$oob"/02-*/rmsnorm.c; } >"$G/rmsnorm.c" && mv "$G/rmsnorm.c" "$oob"/02-*/rmsnorm.c; then
    grade oobleak "$oob" LESSONS=02
    J=$G/oobleak/results.json
    want=$(awk -v a="$(points_of 02)" -v m="$(points_item 02 memory)" -v l="$(points_item 02 leaks)" 'BEGIN { printf "%.2f", a - m - l }')
    if [ "$(item oobleak 02 memory)" = 0.00 ] && [ "$(item oobleak 02 leaks)" = 0.00 ] &&
        [ "$(lesson_sum oobleak 02)" = "$want" ] && validate "$J" &&
        grep -q 'leaks .*LeakSanitizer: memory allocated in rmsnorm (rmsnorm.c:' "$G/oobleak/table.txt"; then
        ok "a leak behind an out-of-bounds read: memory and leaks both lost ($want of $(points_of 02)), the leak found by a LeakSanitizer-only rerun"
    else
        bad "a leak + out-of-bounds read submission keeps points (expected $want for lesson 02, memory and leaks 0)" "$G/oobleak/table.txt"
    fi
    if grep -q '02-rmsnorm/rmsnorm\.c:[0-9]' "$J" && ! grep -qF "$oob" "$J" && ! grep -qF "$PWD/" "$J" &&
        ! grep -qF "$PWD/" "$G/oobleak/table.txt"; then
        ok "sanitizer reports name 02-rmsnorm/rmsnorm.c:N, not the grader's absolute paths"
    else
        bad "absolute paths in the reports: $(grep -oF "$PWD/" "$J" | head -1)" "$G/oobleak/table.txt"
    fi
else
    bad "could not make the leak + out-of-bounds submission from solutions/"
fi

# a leak, and a stop wherever LeakSanitizer is linked in (ASan's build and the rerun's):
# the leak check never runs on a case the plain build finishes, so no leaks point
hide=$G/sub-hideleak
mkdir -p "$hide" && cp -R solutions/02-* "$hide/"
if inject "$hide"/02-*/rmsnorm.c rmsnorm \
    '{ float *volatile scratch = malloc(sizeof(float) * 16); scratch[0] = 1.0f; if (__lsan_do_leak_check) abort(); }' &&
    { printf '#include <stdlib.h>\nextern void __lsan_do_leak_check(void) __attribute__((weak));\n'; cat "$hide"/02-*/rmsnorm.c; } >"$G/rmsnorm.c" &&
    mv "$G/rmsnorm.c" "$hide"/02-*/rmsnorm.c; then
    grade hideleak "$hide" LESSONS=02
    if [ "$(item hideleak 02 leaks)" = 0.00 ] && [ "$(lesson_sum hideleak 02)" = "$(awk -v a="$(points_of 02)" -v l="$(points_item 02 leaks)" 'BEGIN { printf "%.2f", a - l }')" ] &&
        grep -q 'leaks .*the leak check did not run in 10 of 10 cases' "$G/hideleak/table.txt"; then
        ok "a leak in code that stops whenever LeakSanitizer is there: no leaks point (\"the leak check did not run\")"
    else
        bad "a submission that stops under LeakSanitizer keeps the leaks point" "$G/hideleak/table.txt"
    fi
else
    bad "could not make the hidden-leak submission from solutions/"
fi

# make check's flags: lesson 02 at -O3 -fassociative-math (mk/fast.mk), lesson 01 at plain -O2;
# each file refuses to compile under the other's flags
if echo | $GCC -O3 -fno-signed-zeros -dM -E - 2>/dev/null | grep -q __NO_SIGNED_ZEROS__; then
    fl=$G/sub-flags
    mkdir -p "$fl" && cp -R solutions/01-* solutions/02-* "$fl/"
    { printf '#ifdef __NO_SIGNED_ZEROS__\n#error "lesson 01 graded with other flags than make check (-fno-signed-zeros)"\n#endif\n'
        cat solutions/01-*/matmul.c; } >"$fl"/01-matmul/matmul.c
    { printf '#ifndef __NO_SIGNED_ZEROS__\n#error "lesson 02 graded without make check'"'"'s -O3 -fassociative-math -fno-signed-zeros"\n#endif\n'
        cat solutions/02-*/rmsnorm.c; } >"$fl"/02-rmsnorm/rmsnorm.c
    grade flags "$fl" LESSONS="01 02"
    if [ "$(lesson_sum flags 01)" = "$(printf '%.2f' "$(points_of 01)")" ] &&
        [ "$(lesson_sum flags 02)" = "$(printf '%.2f' "$(points_of 02)")" ]; then
        ok "grading compiles with make check's flags: lesson 01 without, lesson 02 with -fno-signed-zeros (mk/fast.mk)"
    else
        bad "grading and make check compile with different flags" "$G/flags/table.txt"
    fi
else
    echo "  skip    make check's flags: $GCC does not define __NO_SIGNED_ZEROS__"
fi

# the instructor's solution, #included: the sandbox's compiler sees no solutions/ (its own
# header next to it is fine)
inc=$G/sub-include
mkdir -p "$inc/03-rope" "$inc/02-rmsnorm"
echo '#include "../../solutions/03-rope/rope.c"' >"$inc/03-rope/rope.c"
printf '#define MY_EPS_NOTE 1\n' >"$inc/02-rmsnorm/mine.h"
{ echo '#include "mine.h"'; cat solutions/02-*/rmsnorm.c; } >"$inc/02-rmsnorm/rmsnorm.c"
grade include "$inc" LESSONS="02 03"
if [ "$(lesson_sum include 03)" = 0.00 ] &&
    [ "$(lesson_sum include 02)" = "$(printf '%.2f' "$(points_of 02)")" ] &&
    grep -qE "solutions/03-rope/rope.c(: No such file|' file not found)" "$G/include/results.json" &&
    grep -q ',03 did not compile$' "$G/include/grade.csv" && validate "$G/include/results.json"; then
    ok "rope.c = #include \"../../solutions/03-rope/rope.c\": 0, \"did not compile\" (no solutions/ in the sandbox; a header of its own is fine)"
else
    bad "a submission that includes the solution is not refused" "$G/include/table.txt"
fi

# control characters from the student's code, and VISIBILITY=hidden: its compile errors show
esc=$G/sub-escape
mkdir -p "$esc" && cp -R solutions/01-* solutions/02-* "$esc/"
# (inject passes CODE through awk -v, which reads backslash escapes: hence \\033)
inject "$esc"/01-*/matmul.c matmul 'fputs("\\033[2J\\033[31mgotcha\\r\\a\\033]0;title\\007\\n", stderr); fflush(stderr); abort();' &&
    { printf '#include <stdio.h>\n#include <stdlib.h>\n'; cat "$esc"/01-*/matmul.c; } >"$G/matmul.c" && mv "$G/matmul.c" "$esc"/01-*/matmul.c
echo "this is not C;" >>"$esc/02-rmsnorm/rmsnorm.c" # (a redirection does not expand a glob)
grade escape "$esc" LESSONS="01 02" VISIBILITY=hidden
J=$G/escape/results.json
ctl=$(cat "$J" "$G/escape/table.txt" "$G/escape.txt" | tr -d '\n\t' | tr -dc '\000-\037\177' | wc -c)
if grep -q 'gotcha' "$J" && [ "$ctl" -eq 0 ] && ! grep -q '\\u00' "$J" && validate "$J"; then
    ok "what the student's code prints reaches results.json and the table without control characters (ESC, \\r, BEL)"
else
    bad "control characters from the student's output: $ctl bytes, $(grep -c '\\u00' "$J") \\u00XX escapes" "$J"
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "  skip    VISIBILITY=hidden and compile errors: no python3 to read results.json"
elif python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
v = {}
for t in d["tests"]:
    v.setdefault(t["name"].split()[0], []).append(t)
ok = all(t["visibility"] == "hidden" for t in v["01"])
ok = ok and all(t["visibility"] == "visible" and "error" in t["output"] for t in v["02"])
sys.exit(not ok)' "$J" 2>"$G/visibility.txt"; then
    ok "VISIBILITY=hidden: the items of a lesson that does not compile stay visible, with the compiler's errors"
else
    bad "compile errors hidden by VISIBILITY=hidden" "$G/escape/table.txt"
fi

# archives: only plain files inside the archive, and not too many or too big
arch=$G/archives
mkdir -p "$arch/in/01-matmul" "$arch/links/01-matmul" "$arch/hard" "$arch/bomb/01-matmul"
cp solutions/01-matmul/matmul.c "$arch/in/01-matmul/"
ln -s "$PWD/solutions/01-matmul/matmul.c" "$arch/links/01-matmul/matmul.c"
cp solutions/01-matmul/matmul.c "$arch/hard/matmul.c" && ln "$arch/hard/matmul.c" "$arch/hard/copy.c"
head -c 20000000 /dev/zero >"$arch/bomb/01-matmul/matmul.c"
tar -czf "$arch/dotdot.tar.gz" -P -C "$arch/in" --transform='s|^01-matmul|../../escaped|' 01-matmul 2>/dev/null
tar -czf "$arch/absolute.tar.gz" -P "$PWD/$arch/in/01-matmul/matmul.c" 2>/dev/null
tar -czf "$arch/symlink.tar.gz" -C "$arch/links" 01-matmul
tar -czf "$arch/hardlink.tar.gz" -C "$arch/hard" matmul.c copy.c
tar -czf "$arch/tarbomb.tar.gz" -C "$arch/bomb" 01-matmul
zips=
if command -v zip >/dev/null 2>&1 && command -v unzip >/dev/null 2>&1; then
    (cd "$arch/bomb" && zip -q -r ../zipbomb.zip 01-matmul) && (cd "$arch/in" && zip -q -r ../good.zip 01-matmul) &&
        zips="zipbomb:more_than_8_MiB goodzip:"
fi
tar -czf "$arch/good.tar.gz" -C "$arch/in" 01-matmul
arch_ok=0
arch_n=0
for a in dotdot:outside_the_submission absolute:outside_the_submission symlink:something_else_than_files \
    hardlink:something_else_than_files tarbomb:more_than_8_MiB good: $zips; do
    an=${a%%:*} want=$(echo "${a#*:}" | tr _ ' ')
    file=$arch/$an.tar.gz
    [ "$an" = zipbomb ] && file=$arch/zipbomb.zip
    [ "$an" = goodzip ] && file=$arch/good.zip
    arch_n=$((arch_n + 1))
    grade "arch-$an" "$file" LESSONS=01 ARCHIVE_MAX_MB=8
    score=$(total "$G/arch-$an.txt" | cut -d' ' -f1)
    if [ -z "$want" ]; then
        [ "$score" = "$(printf '%.2f' "$(points_of 01)")" ] && arch_ok=$((arch_ok + 1)) ||
            bad "the archive $an was not graded in full ($score)" "$G/arch-$an.txt"
    elif [ "$score" = 0.00 ] && grep -q "^make grade: .*$an.*: not unpacked: .*$want" "$G/arch-$an.txt" &&
        grep -q "not unpacked: .*$want" "$G/arch-$an/results.json" && [ ! -e "$G/escaped" ] &&
        [ ! -e "build/grade/escaped" ]; then
        arch_ok=$((arch_ok + 1))
    else
        bad "the archive $an: score ${score:-?}, expected 0 and \"$want\"" "$G/arch-$an.txt"
    fi
done
[ "$arch_ok" -eq "$arch_n" ] &&
    ok "archives: ../, absolute, symlink, hard link, tar${zips:+ and zip} bombs refused with a message, 0 points; a good .tar.gz${zips:+ and .zip} graded"

# ---- a second reader: Python's json module, on the results.json files above ---------------------
if command -v python3 >/dev/null 2>&1; then
    if python3 - "$G"/solutions/results.json "$G"/skeletons/results.json "$G"/bad/results.json \
        >"$G/python-json.txt" 2>&1 <<'EOF'
import json, sys
for path in sys.argv[1:]:
    d = json.load(open(path, encoding="utf-8"))
    assert isinstance(d["score"], (int, float)) and isinstance(d["tests"], list), path
    for t in d["tests"]:
        assert {"name", "number", "score", "max_score", "status", "output", "visibility"} <= set(t), t
        assert t["status"] in ("passed", "failed") and 0 <= t["score"] <= t["max_score"], t
    assert abs(sum(t["score"] for t in d["tests"]) - d["score"]) < 0.01 * len(d["tests"]) + 0.01, path
EOF
    then
        ok "Python's json reads the same 3 results.json files: fields, types, score = sum of the tests"
    else
        bad "Python's json and results.json disagree" "$G/python-json.txt"
    fi
fi

# ---- a bad points table is named, not half-read ---------------------------------------------------
printf '01 five matmul\n' >"$G/bad-points.tsv"
if ! grade badpoints solutions LESSONS=01 POINTS="$G/bad-points.tsv" &&
    grep -q 'the points must be a number' "$G/badpoints.txt"; then
    ok "a points table with a bad row: $(grep -m1 'points must' "$G/badpoints.txt" | cut -c1-90)"
else
    bad "a bad points table is not rejected with a message" "$G/badpoints.txt"
fi

# ---- the validator rejects what Gradescope would not take ----------------------------------------
printf '{"score": 5, "tests": [{"name": "a", "number": "1.1", "score": 2, "max_score": 1, "status": "ok", "output": "", "visibility": "public"}]}' >"$G/broken.json"
if ! validate "$G/broken.json" && [ "$(wc -l <"$G/validate.txt")" -ge 4 ]; then
    ok "results.json validator rejects a broken file ($(wc -l <"$G/validate.txt" | tr -d ' ') problems named)"
else
    bad "the results.json validator accepts a broken file" "$G/validate.txt"
fi

# ---- grade-all: one row per student ---------------------------------------------------------------
class=$G/class # names that cannot be a real student's grade in build/grade/
mkdir -p "$class/kit-test-alice/lessons/01-matmul" "$G/kit-test-bob"
cp solutions/01-matmul/*.c "$class/kit-test-alice/lessons/01-matmul/"
cp lessons/01-matmul/*.c "$G/kit-test-bob/" && tar -czf "$class/kit-test-bob.tar.gz" -C "$G" kit-test-bob
: >"$class/notes.txt" # not a submission: skipped
if $MAKE -s --no-print-directory grade-all CC="$GCC" DIR="$class" CSV="$G/class.csv" LESSONS=01 \
    >"$G/grade-all.txt" 2>&1 && [ "$(wc -l <"$G/class.csv")" -eq 3 ] &&
    grep -q '^kit-test-alice,8.00,8,' "$G/class.csv" && grep -q '^kit-test-bob,0.00,8,' "$G/class.csv"; then
    ok "make grade-all: $(head -1 "$G/class.csv" | cut -c1-60)... a row each for a directory and a tarball"
else
    bad "make grade-all" "$G/grade-all.txt"
    sed 's/^/          /' "$G/class.csv" 2>/dev/null
fi

# ---- private fixtures beat hard-coded answers -----------------------------------------------------
if /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then
    hidden=$G/fixtures-4242
    if $MAKE -s --no-print-directory fixtures SEED=4242 OUT="$hidden" >"$G/fixtures.txt" 2>&1 &&
        $MAKE -s --no-print-directory $OPTS check SRC=solutions FIXTURES="$hidden" >"$G/hidden-check.txt" 2>&1; then
        ok "make fixtures SEED=4242 + make check FIXTURES=...: solutions $(tail -1 "$G/hidden-check.txt")"
    else
        bad "solutions on private fixtures (SEED=4242)" "$G/hidden-check.txt"
        hidden=
    fi
    # the cheat: matmul that returns the public fixture's y, picked by the shapes
    cheat=$G/sub-cheat/01-matmul
    mkdir -p "$cheat"
    /usr/bin/python3 - "$FIXTURES/01-matmul.safetensors" >"$cheat/matmul.c" 2>"$G/cheat.txt" <<'EOF'
import sys
sys.path.insert(0, "harness/pytorch")
from safetensors_io import load

tensors, meta = load(sys.argv[1])
print("/* A cheat, for the kit's test: it computes nothing and returns the public fixture's")
print(" * expected y, chosen by the shapes. Each test runs in a fresh process: call k is token k. */")
print('#include "moekit.h"')
print("typedef struct { int T, in, out; const float *y; } Answer;")
rows = []
for i, case in enumerate(meta["cases"].split()):
    y = tensors[case + "/y"].flatten().tolist()
    print(f"static const float Y{i}[] = {{" + ", ".join(f"{v:.9g}f" for v in y) + "};")
    rows.append(f"{{{meta[case + '/T']}, {meta[case + '/in_features']}, {meta[case + '/out_features']}, Y{i}}}")
print("static const Answer ANSWERS[] = {" + ", ".join(rows) + "};")
print("static int calls;")
print("""static const Answer *lookup(int in, int out) {
    for (unsigned i = 0; i < sizeof ANSWERS / sizeof ANSWERS[0]; i++)
        if (ANSWERS[i].in == in && ANSWERS[i].out == out) return &ANSWERS[i];
    return 0;
}
void matmul(float *y, const float *x, const float *w, int in, int out) {
    const Answer *a = lookup(in, out);
    (void)x, (void)w;
    if (!a) return;
    int t = calls++ % a->T;
    for (int o = 0; o < out; o++) y[o] = a->y[t * out + o];
}
void matmul_tokens(float *y, const float *x, const float *w, int T, int in, int out) {
    const Answer *a = lookup(in, out);
    (void)x, (void)w;
    if (!a || a->T != T) return;
    for (long i = 0; i < (long)T * out; i++) y[i] = a->y[i];
}""")
EOF
    grade cheat-public "$G/sub-cheat" LESSONS=01
    grade cheat-hidden "$G/sub-cheat" LESSONS=01 FIXTURES="${hidden:-/nonexistent}"
    pub=$(item cheat-public 01 matmul)/$(item cheat-public 01 matmul_tokens)
    hid=$(item cheat-hidden 01 matmul)/$(item cheat-hidden 01 matmul_tokens)
    if [ "$pub" = "$(points_item 01 matmul)/$(points_item 01 matmul_tokens)" ] &&
        [ "$hid" = "0.00/0.00" ] && validate "$G/cheat-hidden/results.json"; then
        ok "hard-coded answers: full marks on the public fixtures ($pub), none on SEED=4242 ($hid)"
    else
        bad "the hard-coded-answers submission: public $pub, private $hid (expected full, then 0.00/0.00)" "$G/cheat-hidden.txt"
    fi
else
    echo "  skip    private fixtures: /usr/bin/python3 with python3-torch is not installed"
fi

# ---- the student release ----------------------------------------------------------------------------
rel=$G/release
if $MAKE -s --no-print-directory student-release RELEASE="$G/moekit-student.tar.gz" >"$G/release.txt" 2>&1; then
    list=$(tar -tzf "$G/moekit-student.tar.gz")
    leaked=$(echo "$list" | grep -E '^moekit/(solutions|harness/mistakes|harness/grade|build|\.git)/' | head -3)
    if [ -z "$leaked" ]; then
        ok "make student-release: $(echo "$list" | grep -c '[^/]$') files, no solutions/, mistakes, grader or build/"
    else
        bad "the student release holds: $leaked"
    fi
    mkdir -p "$rel" && tar -xzf "$G/moekit-student.tar.gz" -C "$rel"
    # a machine with nothing but a compiler: no environment, no build/
    ( cd "$rel/moekit" && env -i PATH=/usr/bin:/bin HOME="$rel" make -s check CC="$GCC" ) \
        >"$G/release-check.txt" 2>&1
    todos=$(grep -cE '^  todo ' "$G/release-check.txt")
    if grep -q '^0 done, [1-9][0-9]* todo, 0 failing$' "$G/release-check.txt" && [ "$todos" -gt 0 ] &&
        ! grep -qiE 'solution|CRASH|error:' "$G/release-check.txt"; then
        ok "the release, unpacked alone (env -i, no build/): builds; make check: $(grep '^0 done' "$G/release-check.txt"), all todo, no word of solutions"
    else
        bad "make check in the unpacked release" "$G/release-check.txt"
    fi
    ( cd "$rel/moekit" && env -i PATH=/usr/bin:/bin HOME="$rel" make -s test CC="$GCC" ) >"$G/release-test.txt" 2>&1
    if grep -q 'student release' "$G/release-test.txt" && grep -q '^0 done' "$G/release-test.txt"; then
        ok "make test in the release runs make check: \"$(head -1 "$G/release-test.txt" | cut -c1-70)...\""
    else
        bad "make test in the release" "$G/release-test.txt"
    fi
    ( cd "$rel/moekit" && make -s grade SUBMISSION=lessons ) >"$G/release-grade.txt" 2>&1
    if grep -q 'is for instructors' "$G/release-grade.txt"; then
        ok "make grade in the release: \"$(head -1 "$G/release-grade.txt" | cut -c1-70)...\""
    else
        bad "make grade in the release" "$G/release-grade.txt"
    fi
    # hints: one more each time, the state in a file the student can delete
    ( cd "$rel/moekit" && make -s hint CC="$GCC" SANITIZE= LESSON=03 && make -s hint LESSON=rope &&
        cat .moekit-hints && rm .moekit-hints && make -s hint CC="$GCC" SANITIZE= ) >"$G/hint.txt" 2>&1
    if grep -q '^lesson 03 rope: hint 1 of ' "$G/hint.txt" && grep -q '^lesson 03 rope: hint 2 of ' "$G/hint.txt" &&
        grep -q '^03 2$' "$G/hint.txt" && grep -q '^lesson 01 matmul: hint 1 of ' "$G/hint.txt"; then
        ok "make hint: hint 1, then 2 of lesson 03; after rm .moekit-hints, lesson 01 (where make check says you are)"
    else
        bad "make hint" "$G/hint.txt"
    fi
    # watch: a save of a finished lesson 01 re-runs the tests, which move on to lesson 02
    for mode in inotify poll; do
        command -v inotifywait >/dev/null 2>&1 || [ $mode = poll ] || continue
        cp lessons/01-matmul/matmul.c "$rel/moekit/lessons/01-matmul/matmul.c"
        poll=
        [ $mode = poll ] && poll=1
        ( cd "$rel/moekit" && MOEKIT_WATCH_POLL=$poll MOEKIT_WATCH_RUNS=2 timeout 60 make -s watch CC="$GCC" SANITIZE= ) \
            >"$G/watch-$mode.txt" 2>&1 &
        wpid=$!
        n=0 # the save, once the first run is over and it waits
        while ! grep -q '^watching lessons/' "$G/watch-$mode.txt" && [ $n -lt 60 ]; do sleep 1; n=$((n + 1)); done
        sleep 1
        cp solutions/01-matmul/matmul.c "$rel/moekit/lessons/01-matmul/matmul.c"
        wait $wpid
        if grep -q '^lesson 01 matmul ' "$G/watch-$mode.txt" && grep -q 'lesson 01 matmul passes now' "$G/watch-$mode.txt" &&
            grep -q '^lesson 02 rmsnorm ' "$G/watch-$mode.txt"; then
            ok "make watch ($mode): a save re-runs the tests; lesson 01 passes, on to lesson 02"
        else
            bad "make watch ($mode)" "$G/watch-$mode.txt"
        fi
    done
else
    bad "make student-release" "$G/release.txt"
fi

# ---- the Gradescope bundle ------------------------------------------------------------------------
gs=$G/gradescope
fx=${hidden:-$FIXTURES}
if ! command -v zip >/dev/null 2>&1 || ! command -v unzip >/dev/null 2>&1; then
    echo "  skip    make gradescope: zip and unzip are not installed (apt-get install zip unzip)"
elif $MAKE -s --no-print-directory gradescope LESSONS="01 02" FIXTURES="$fx" TIMEOUT=5 >"$G/gradescope.txt" 2>&1 &&
    mkdir -p "$gs/source" "$gs/submission" && unzip -q build/gradescope/moekit-autograder.zip -d "$gs/source"; then
    # what setup.sh builds on Gradescope (the kit's objects), taken from here
    for f in "$(basename "$GCC")" "$(basename "$GCC")-san"; do
        mkdir -p "$gs/source/moekit/build/$f"
        cp -R "build/$f/harness" "build/$f/tree-solutions" "$gs/source/moekit/build/$f/" 2>/dev/null
    done
    # the student's files, flat, as Gradescope's upload leaves them
    cp solutions/01-matmul/matmul.c lessons/02-rmsnorm/rmsnorm.c "$gs/submission/"
    cp "$gs/source/run_autograder" "$gs/run_autograder"
    ( cd / && AUTOGRADER_ROOT="$OLDPWD/$gs" CC="$GCC" sh "$OLDPWD/$gs/run_autograder" ) >"$G/gradescope-run.txt" 2>&1
    J=$gs/results/results.json
    private=yes
    [ "$fx" = "$FIXTURES" ] || [ ! -d "$gs/source/moekit/data/fixtures" ] || private=no
    # every item of lesson 01 passes: its rows in points.tsv (tests, memory, leaks)
    items01=$(awk '$1 == "01" { n++ } END { print n + 0 }' harness/grade/points.tsv)
    if [ -x "$gs/source/setup.sh" ] && validate "$J" && grep -q '"score": 8.00' "$J" &&
        [ "$(grep -c '"status": "passed"' "$J")" -eq "$items01" ] && [ $private = yes ]; then
        ok "make gradescope: the bundle grades matmul.c (done) + rmsnorm.c (todo): 8 of 16, results.json valid$([ "$fx" != "$FIXTURES" ] && echo ', private fixtures only')"
    else
        bad "the Gradescope bundle (private fixtures only: $private)" "$G/gradescope-run.txt"
    fi
    # portable flags: setup.sh builds and run_autograder grades with NATIVE=0
    gflags=$gs/source/moekit/build/grade/submission/flags.normal
    if grep -q 'make -s NATIVE=0 ' "$gs/source/setup.sh" && [ -s "$gflags" ] && ! grep -q -- '-march=native' "$gflags"; then
        ok "make gradescope: setup.sh builds and run_autograder grades with NATIVE=0 (no -march=native)"
    else
        bad "the Gradescope bundle compiles with -march=native: $(head -1 "$gflags" 2>/dev/null | cut -f2 | cut -c1-80)"
    fi
    # the same files uploaded as one .tar.gz
    rm -rf "$gs/submission" "$gs/results" && mkdir -p "$gs/submission" "$G/gs-tar/lessons/01-matmul" "$G/gs-tar/lessons/02-rmsnorm"
    cp solutions/01-matmul/matmul.c "$G/gs-tar/lessons/01-matmul/" && cp lessons/02-rmsnorm/rmsnorm.c "$G/gs-tar/lessons/02-rmsnorm/"
    tar -czf "$gs/submission/my-lessons.tar.gz" -C "$G/gs-tar" lessons
    ( cd / && AUTOGRADER_ROOT="$OLDPWD/$gs" CC="$GCC" sh "$OLDPWD/$gs/run_autograder" ) >"$G/gradescope-tar.txt" 2>&1
    if validate "$J" && grep -q '"score": 8.00' "$J"; then
        ok "make gradescope: a .tar.gz upload is unpacked and graded the same: 8 of 16"
    else
        bad "the Gradescope bundle and a .tar.gz upload" "$G/gradescope-tar.txt"
    fi
else
    bad "make gradescope" "$G/gradescope.txt"
fi

# the graders' work directories (objects, logs) are kept only when something failed
[ "$failed" -eq "$grade_failed_before" ] && rm -rf build/grade/kit-test-*
