#!/bin/sh
# gradescope.sh: the Gradescope autograder bundle (`make gradescope`).
#
# build/gradescope/moekit-autograder.zip holds setup.sh and run_autograder at its top
# (Gradescope's layout) and the kit in moekit/: Makefile, mk/, harness/, solutions/ and
# the fixtures to grade with. With FIXTURES=dir (a private set from
# `make fixtures SEED=... OUT=dir`) only that set goes in, as moekit/data/grade-fixtures,
# and the public fixtures stay out. moekit/grade.conf keeps FIXTURES, LESSONS, TIMEOUT,
# POINTS, VISIBILITY, MAX_TIMEOUTS, JOBS and UNSAFE as they were given here.
# Upload the zip as a "Zip file upload" autograder; students submit their lesson .c files
# (any layout: 03-rope/rope.c or rope.c) or their lessons/ directory.
set -u
FIXTURES=${FIXTURES:-data/fixtures}
LESSONS=${LESSONS:-}
TIMEOUT=${TIMEOUT:-10}
POINTS=${POINTS:-harness/grade/points.tsv}
VISIBILITY=${VISIBILITY:-visible}
MAX_TIMEOUTS=${MAX_TIMEOUTS:-3}
JOBS=${JOBS:-2}
UNSAFE=${UNSAFE:-}
OUTZIP=build/gradescope/moekit-autograder.zip

fail() {
    echo "make gradescope: $*" >&2
    exit 2
}
command -v zip >/dev/null 2>&1 || fail "needs zip (apt-get install zip)"
[ -d "$FIXTURES" ] || fail "no fixtures directory $FIXTURES"
[ -f "$POINTS" ] || fail "no points table $POINTS"

stage=build/gradescope/stage
rm -rf "$stage" "$OUTZIP" && mkdir -p "$stage/moekit" || exit 2
cp harness/grade/gradescope/setup.sh harness/grade/gradescope/run_autograder "$stage/"
tar -cf - --exclude='*.d' --exclude='*.o' --exclude=__pycache__ --exclude='*.pyc' \
    Makefile mk harness solutions lessons | (cd "$stage/moekit" && tar -xf -) ||
    fail "copying the kit failed"

if [ "$FIXTURES" = data/fixtures ]; then
    mkdir -p "$stage/moekit/data" && cp -R data/fixtures "$stage/moekit/data/fixtures"
    fx=data/fixtures
    kind="the public fixtures (data/fixtures)"
else
    mkdir -p "$stage/moekit/data/grade-fixtures"
    cp "$FIXTURES"/*.safetensors "$stage/moekit/data/grade-fixtures/" || fail "no fixtures in $FIXTURES"
    fx=data/grade-fixtures
    kind="the fixtures of $FIXTURES (hidden: the public ones are not in the bundle)"
fi
cp "$POINTS" "$stage/moekit/grade-points.tsv"
{
    echo "# what run_autograder grades with (written by make gradescope)"
    echo "FIXTURES='$fx'"
    echo "LESSONS='$LESSONS'"
    echo "TIMEOUT='$TIMEOUT'"
    echo "POINTS='grade-points.tsv'"
    echo "VISIBILITY='$VISIBILITY'"
    echo "MAX_TIMEOUTS='$MAX_TIMEOUTS'"
    echo "JOBS='$JOBS'"
    echo "UNSAFE='$UNSAFE'"
} >"$stage/moekit/grade.conf"

(cd "$stage" && zip -q -r ../moekit-autograder.zip setup.sh run_autograder moekit) || fail "zip failed"
rm -rf "$stage"
echo "written: $OUTZIP ($(wc -c <"$OUTZIP" | tr -d ' ') bytes)"
echo "  grades ${LESSONS:-every lesson in $POINTS} with $kind, $TIMEOUT s per test"
echo "  upload it as the assignment's autograder (Gradescope: Configure Autograder, Zip file upload)"
