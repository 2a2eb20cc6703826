#!/bin/sh
# grade.sh: grades one submission, lesson by lesson (`make grade SUBMISSION=...`).
#
# Each lesson is built on its own: the student's file(s) for that lesson, the solutions
# for every other lesson, and the test runner. So a lesson that does not compile, crashes
# or loops costs its own points only, and a later lesson is not marked down for an earlier
# one. Each is built twice: plainly (-O2), for the tests' points, and with ASan + UBSan,
# for the "memory" and "leaks" items. Every test runs in its own process under a time
# limit (TIMEOUT seconds), and each lesson's run under a wall-clock limit.
#
# Writes RESULTS/results.json (Gradescope), RESULTS/table.txt (the table it prints) and
# RESULTS/grade.csv (a header and the student's row); RESULTS is build/grade/<student>.
# Exit status 0 whatever the student's score; 2 when the grader itself cannot run.
#
# Environment (the make variables of mk/grade.mk): SUBMISSION, FIXTURES, TIMEOUT, POINTS,
# LESSONS, JOBS, VISIBILITY, MAX_TIMEOUTS, STUDENT, RESULTS, MAKE, CC; QUIET=1 prints
# nothing but problems.
set -u
MAKE=${MAKE:-make}
CC=${CC:-cc}
SUBMISSION=${SUBMISSION:-}
FIXTURES=${FIXTURES:-data/fixtures}
TIMEOUT=${TIMEOUT:-10}
POINTS=${POINTS:-harness/grade/points.tsv}
LESSONS=${LESSONS:-}
JOBS=${JOBS:-2}
VISIBILITY=${VISIBILITY:-visible}
MAX_TIMEOUTS=${MAX_TIMEOUTS:-3}
STUDENT=${STUDENT:-}
RESULTS=${RESULTS:-}
QUIET=${QUIET:-}

fail() {
    echo "make grade: $*" >&2
    exit 2
}

[ -n "$SUBMISSION" ] || fail "name what to grade: make grade SUBMISSION=dir (a copy of a student's lessons/) or SUBMISSION=file.tar.gz"
[ -e "$SUBMISSION" ] || fail "$SUBMISSION does not exist"
[ -d solutions ] || fail "grading builds each lesson against solutions/, and there is none here"
[ -f "$POINTS" ] || fail "no points table at $POINTS"
[ -d "$FIXTURES" ] || fail "no fixtures directory $FIXTURES"
case $TIMEOUT in '' | *[!0-9]*) fail "TIMEOUT must be a number of seconds, not '$TIMEOUT'" ;; esac
case $JOBS in '' | *[!0-9]* | 0) JOBS=1 ;; esac

# the student's name: STUDENT, or the submission's name without its extension
if [ -z "$STUDENT" ]; then
    STUDENT=$(basename "$SUBMISSION")
    for ext in .tar.gz .tgz .tar.xz .tar.bz2 .tar .zip; do STUDENT=${STUDENT%"$ext"}; done
fi
slug=$(printf '%s' "$STUDENT" | tr -c 'A-Za-z0-9._@+-' '_')
[ -n "$slug" ] || slug=student
W=build/grade/$slug
RESULTS=${RESULTS:-$W}
rm -rf "$W" && mkdir -p "$W/log" "$W/rec" "$RESULTS" || fail "cannot write $W"
start=$(date +%s)

# ---- the submission: a directory as it is, or an archive unpacked --------------------------
unpack_note=
if [ -d "$SUBMISSION" ]; then
    SUB=$SUBMISSION
else
    SUB=$W/submission
    mkdir -p "$SUB"
    case $SUBMISSION in
    *.tar.gz | *.tgz) tar -xzf "$SUBMISSION" -C "$SUB" ;;
    *.tar.xz) tar -xJf "$SUBMISSION" -C "$SUB" ;;
    *.tar.bz2) tar -xjf "$SUBMISSION" -C "$SUB" ;;
    *.tar) tar -xf "$SUBMISSION" -C "$SUB" ;;
    *.zip) unzip -q "$SUBMISSION" -d "$SUB" ;;
    *) echo "not an archive this grader knows (.tar.gz, .tgz, .tar.xz, .tar.bz2, .tar, .zip)" ;;
    esac >"$W/log/unpack.txt" 2>&1 ||
        unpack_note=" ($(basename "$SUBMISSION") could not be unpacked: $(head -1 "$W/log/unpack.txt"))"
    [ -s "$W/log/unpack.txt" ] && [ -z "$unpack_note" ] &&
        unpack_note=" ($(head -1 "$W/log/unpack.txt"))"
fi

sub_re=$(printf '%s' "$SUB" | sed 's|/*$||; s/[][\.*^$|/]/\\&/g')

# ---- the kit: runner, harness and solutions, plain and with the sanitizers ------------------
for san in "" 1; do
    flavor=${san:+san}
    flavor=${flavor:-normal}
    # one make: build what is missing, then print the variables (the only output on stdout)
    $MAKE -s --no-print-directory CC="$CC" SRC=solutions SANITIZE=$san check-build grade-tools \
        grade-vars >"$W/vars.$flavor" 2>"$W/log/kit-$flavor.txt" && grep -q '^G_REPORT=' "$W/vars.$flavor" ||
        fail "the kit does not build ($flavor): see $W/log/kit-$flavor.txt"
done
. "$W/vars.normal"
REPORT=$G_REPORT
"$REPORT" --points "$POINTS" --check >/dev/null || exit 2

# every case there is: what a lesson that does not build or stops early is missing
"$G_CHECK" --fixtures "$FIXTURES" --cases --results "$W/rec/expect.tsv" --tag expect >/dev/null 2>&1
if [ ! -s "$W/rec/expect.tsv" ] || grep -q '	ERROR	' "$W/rec/expect.tsv"; then
    fail "cannot read the fixtures in $FIXTURES: $(grep '	ERROR	' "$W/rec/expect.tsv" 2>/dev/null | cut -f6 | head -1)"
fi

# ---- which lessons: those with rows in the points table (LESSONS= narrows them) -------------
want=
for l in $LESSONS; do want="$want $(printf '%02d' "$(echo "$l" | sed 's/^0*\([0-9]\)/\1/; s/[^0-9].*//')")"; done
ids=
for id in $(awk '$1 ~ /^[0-9][0-9]$/ && NF >= 3 { print $1 }' "$POINTS" | sort -u); do
    if [ -n "$want" ]; then
        case " $want " in *" $id "*) ;; *) continue ;; esac
    fi
    set -- solutions/"$id"-*/
    [ -d "$1" ] || fail "$POINTS gives points to lesson $id, but there is no solutions/$id-*"
    ids="$ids $id"
done
[ -n "$ids" ] || fail "no lesson to grade (LESSONS='$LESSONS', points in $POINTS)"
for d in solutions/[0-9][0-9]-*/; do
    id=$(basename "$d" | cut -c1-2)
    grep -q "^${id}[ 	]" "$POINTS" || echo "make grade: lesson $(basename "$d") has no rows in $POINTS, so it is not graded" >&2
done

# escape: stdin as one record field (\ -> \\, tab -> \t, newline -> \n), at most 60 lines
escape() {
    head -60 | awk '{ gsub(/\\/, "\\\\"); gsub(/\t/, "\\t"); printf "%s\\n", $0 }'
}

# locate LESSONDIR FILE: the student's copy of FILE, preferring LESSONDIR/FILE, then the
# shortest path, and a copy outside a solutions/ directory
locate() {
    for pattern in "*/$1/$2" "*/$2"; do
        found=$(find "$SUB" -type f -path "$pattern" 2>/dev/null | grep -v '/solutions/' |
            awk '{ print length($0) "\t" $0 }' | sort -n | head -1 | cut -f2-)
        [ -n "$found" ] && { echo "$found"; return; }
    done
}

# the wall-clock limit of one lesson's run: every case at its limit, and a minute more
wall_limit() {
    n=$(awk -F'\t' -v id="$1" '$2 == id' "$W/rec/expect.tsv" | wc -l)
    echo $((n * TIMEOUT + 60))
}
if command -v timeout >/dev/null 2>&1; then have_timeout=1; else have_timeout=; fi

# grade_one ID FLAVOR: builds lesson ID (normal: -O2; san: ASan + UBSan) and runs its
# tests; its records go to $W/rec/ID.FLAVOR.head (lesson, build, run) and .tests
grade_one() {
    id=$1 flavor=$2
    set -- solutions/"$id"-*/
    dir=${1%/}
    lname=$(basename "$dir")
    head=$W/rec/$id.$flavor.head
    files=$(cd "$dir" && ls ./*.c | sed 's|^\./||' | tr '\n' ' ')
    [ "$flavor" = normal ] && printf 'lesson\t%s\t%s\t%s\n' "$id" "${lname#??-}" "$files" >"$head"
    limit=$(wall_limit "$id")
    # shellcheck disable=SC1090 # written above by make grade-vars
    . "$W/vars.$flavor"
    obj=$W/obj/$flavor/$lname
    log=$W/log/$id.$flavor.build.txt
    mkdir -p "$obj" && : >"$log"
    status=ok
    mine=
    for f in $files; do
        src=$(locate "$lname" "$f")
        if [ -z "$src" ]; then
            status=missing
            echo "there is no $lname/$f in the submission$unpack_note" >"$log"
            break
        fi
        # shellcheck disable=SC2086 # the flags are words
        $G_CC $G_CFLAGS -I"$(dirname "$src")" -c "$src" -o "$obj/${f%.c}.o" >>"$log" 2>&1 || status=fail
        mine="$mine $obj/${f%.c}.o"
    done
    if [ "$status" = ok ]; then
        others=
        for o in $G_TREE_OBJ; do
            case $o in */tree-solutions/"$lname"/*) ;; *) others="$others $o" ;; esac
        done
        # shellcheck disable=SC2086
        $G_CC $G_LDFLAGS $G_BASE_OBJ $others $mine -o "$obj/check" $G_LDLIBS >>"$log" 2>&1 || status=fail
    fi
    # the compiler's messages name the student's files as they are in the submission
    printf 'build\t%s\t%s\t%s\t%s\n' "$id" "$flavor" "$status" \
        "$(sed "s|$sub_re/||g" "$log" | escape)" >>"$head"
    [ "$status" = ok ] || return 0
    (
        # an allocation gone wild stops at 4 GiB (ASan needs its address space: not there)
        [ "$flavor" = normal ] && ulimit -v 4194304 2>/dev/null # dash, bash: yes; elsewhere: no limit
        ${have_timeout:+timeout -k 5 "$limit"} "$obj/check" --tree "$STUDENT" --fixtures "$FIXTURES" \
            --timeout "$TIMEOUT" --lesson "$id" --max-timeouts "$MAX_TIMEOUTS" \
            --results "$W/rec/$id.$flavor.tests" --tag "$flavor"
    ) >"$W/log/$id.$flavor.run.txt" 2>&1
    rc=$?
    case $rc in
    0 | 1) printf 'run\t%s\t%s\tok\t\n' "$id" "$flavor" >>"$head" ;;
    124 | 137) printf 'run\t%s\t%s\ttimeout\tthe lesson'"'"'s tests took more than %s s in all\n' \
        "$id" "$flavor" "$limit" >>"$head" ;;
    *) printf 'run\t%s\t%s\tfailed\tthe test runner stopped with status %s\n' "$id" "$flavor" "$rc" >>"$head" ;;
    esac
}

# JOBS at a time, from a queue: a FIFO holds one token per free slot
mkfifo "$W/slots" || fail "cannot make a FIFO in $W"
exec 3<>"$W/slots"
i=0
while [ $i -lt "$JOBS" ]; do echo >&3; i=$((i + 1)); done
for id in $ids; do
    for flavor in normal san; do
        read -r _ <&3
        { grade_one "$id" $flavor; echo >&3; } &
    done
done
wait
exec 3>&-

cat "$W/rec/expect.tsv" >"$W/records.tsv"
for id in $ids; do
    for part in normal.head san.head normal.tests san.tests; do
        [ -f "$W/rec/$id.$part" ] && cat "$W/rec/$id.$part" >>"$W/records.tsv"
    done
done

"$REPORT" --points "$POINTS" --records "$W/records.tsv" --student "$STUDENT" \
    --json "$RESULTS/results.json" --table "$RESULTS/table.txt" --csv "$RESULTS/grade.csv" \
    --elapsed $(($(date +%s) - start)) --visibility "$VISIBILITY" --timeout "$TIMEOUT" \
    --note "fixtures $FIXTURES, $TIMEOUT s per test; each lesson built alone against the solutions, plain and with ASan + UBSan" \
    >"$W/table.out" || fail "grade_report failed on $W/records.tsv"
if [ -z "$QUIET" ]; then
    cat "$W/table.out"
    echo
    echo "written: $RESULTS/results.json (Gradescope), $RESULTS/table.txt, $RESULTS/grade.csv"
fi
