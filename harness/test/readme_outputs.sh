#!/bin/sh
# readme_outputs.sh: the sample outputs README.md shows (make check, make hint, make watch),
# made by running them, so that they cannot go stale.
#
#   sh harness/test/readme_outputs.sh --check [README]   exit 1 and a diff when README differs
#   sh harness/test/readme_outputs.sh --write [README]   rewrite the blocks (make readme)
#
# The state README describes is set up in a scratch copy of the kit, build/readme/kit:
# lessons 01 and 02 done (from solutions/), lesson 03 with the interleaved-RoPE mistake
# (harness/mistakes/03-rope_interleaved.diff applied to solutions/03-rope/rope.c), the
# rest untouched. There `make check`, `make hint` twice, and `make watch` with a save of
# the fixed rope.c run as a student runs them. Each output is cut the same way every time
# by the awk programs below (their `...` lines mark the cuts), and goes between the
# markers in README.md:
#
#     <!-- output: NAME (harness/test/readme_outputs.sh writes this block) -->
#     ```
#     ...
#     ```
#     <!-- /output -->
#
# NAME is make-check, make-hint or make-watch. Nothing in the outputs depends on time or on
# where the kit is: paths are relative to the scratch copy, the compiler is cc without
# sanitizers, the property checks' seed is SEED=2026, the fixtures the committed ones,
# make watch polls (inotifywait or not) and stops after its second run.
set -u
mode=${1:---check}
README=${2:-README.md}
case $mode in --check | --write) ;; *) echo "usage: $0 [--check|--write] [README]" >&2; exit 2 ;; esac
[ -f "$README" ] && [ -d solutions ] || { echo "$0: run it at the kit's root (README.md, solutions/)" >&2; exit 2; }

# the student's environment, not the caller's (make test runs this inside make)
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES SRC FIXTURES LESSON SANITIZE WERROR TIMEOUT \
    MOEKIT_WATCH_POLL MOEKIT_WATCH_RUNS
CC=cc
# the property checks draw with a fresh seed each run, and print it: one fixed seed (given
# as a student gives it, SEED=n) keeps that line the same every time
SEED=2026
export CC SEED

OUT=build/readme
KIT=$OUT/kit
rm -rf "$OUT" && mkdir -p "$KIT/data" || exit 2
cp -R Makefile mk harness lessons "$KIT/" && cp -R data/fixtures "$KIT/data/" || exit 2
# The kit's Makefile includes every *.d under build/: the scratch copy must leave none
# there, neither the kit test's kit_test.d/ (not needed here) nor its dependency files.
rm -rf "$KIT/harness/test/kit_test.d"
trap 'rm -rf "$KIT/build"' EXIT
for f in 01-matmul/matmul.c 02-rmsnorm/rmsnorm.c 03-rope/rope.c; do cp "solutions/$f" "$KIT/lessons/$f"; done
patch -s -p1 -d "$KIT/lessons" <harness/mistakes/03-rope_interleaved.diff || exit 2
if ! (cd "$KIT" && make -s check-build >../build.txt 2>&1); then
    echo "$0: the scratch kit does not build:" >&2
    cat "$OUT/build.txt" >&2
    exit 2
fi

# ---- the runs ---------------------------------------------------------------------------
(cd "$KIT" && make check >../check.raw 2>/dev/null)
(cd "$KIT" && rm -f .moekit-hints && make hint >../hint1.raw 2>&1 && make hint >../hint2.raw 2>&1)
# make watch: wait for its first run, save the fixed rope.c, let the second run finish
(cd "$KIT" && MOEKIT_WATCH_POLL=1 MOEKIT_WATCH_RUNS=2 timeout 120 make watch >../watch.raw 2>&1) &
watch_pid=$!
i=0
while [ "$(grep -c '^watching ' "$OUT/watch.raw" 2>/dev/null)" != 1 ] && [ $i -lt 600 ]; do
    sleep 0.2
    i=$((i + 1))
done
sleep 2 # past the fingerprint the first poll compares against
cp solutions/03-rope/rope.c "$KIT/lessons/03-rope/rope.c"
wait $watch_pid
if [ "$(grep -c '^watching ' "$OUT/watch.raw")" != 2 ]; then
    echo "$0: make watch did not run twice (output in $OUT/watch.raw)" >&2
    exit 2
fi

# ---- the cuts -----------------------------------------------------------------------------
# make check: lessons 01-04 (03 with its first failure in full, one "then at" line and the
# second status line), the progress table up to the lesson after "you are here", the rest
STATUS='^  [^ ]'
awk -v status="$STATUS" '
    # blank lines wait until the next line is printed: a cut swallows them
    function emit(line) { while (blank > 0) { print ""; blank-- } print line }
    NR == 1 && $0 == "" { next }
    $0 == "" { table = 0; if (!skip) blank++; next }
    /^lesson [0-9][0-9] / { n++; if (n > 4) { if (!cut) { blank = 0; print "..."; blank = 1 } cut = 1; skip = 1; next }
                            shown = 0; thens = 0; emit($0); next }
    /^progress$/ { skip = 0; table = 1; emit($0); next }
    skip { next }
    table && after == 2 { if (!cut2) print "  ..."; cut2 = 1; next }
    table { emit($0); if (after == 1) after = 2; if ($0 ~ /you are here/) after = 1; next }
    $0 ~ status { shown++; if (shown == 2) { emit($0); print "  ..." } else if (shown == 1) emit($0); next }
    shown >= 2 { next }
    /^ +then at / { thens++; if (thens == 1) emit($0); else if (thens == 2) emit("            ..."); next }
    { emit($0) }
' "$OUT/check.raw" >"$OUT/make-check.txt"

# make hint, twice: the first in full, the second up to the end of its hint
{
    echo '$ make hint'
    cat "$OUT/hint1.raw"
    echo '$ make hint'
    awk '/^Stuck after/ { exit } { print }' "$OUT/hint2.raw" | sed '$ { /^$/d; }'
    echo '...'
} >"$OUT/make-hint.txt"

# make watch: the first run's first status line and its count; the save; the next lesson's
# first status line with its report
awk -v status="$STATUS" '
    NR == 1 && $0 == "" { next }
    /^lesson [0-9][0-9] .*\(/ { runs++; shown = 0; print; next }
    skip && /^[0-9]+ done, / { skip = 0; print; next }
    skip { next }
    $0 ~ status { shown++
                  if (shown == 1) { print; if (runs == 1) { print "  ..."; skip = 1 } ; next }
                  print "  ..."; exit }
    { print }
' "$OUT/watch.raw" >"$OUT/watch.cut"
{ echo '$ make watch'; cat "$OUT/watch.cut"; } >"$OUT/make-watch.txt"

# ---- README.md with the fresh blocks -------------------------------------------------------
awk -v dir="$OUT" '
    /^<!-- output: [a-z-]+ / {
        print
        name = $3
        file = dir "/" name ".txt"
        print "```"
        while ((getline line <file) > 0) print line
        close(file)
        print "```"
        inside = 1
        next
    }
    /^<!-- \/output -->$/ { inside = 0 }
    !inside { print }
' "$README" >"$OUT/README.md"
for name in make-check make-hint make-watch; do
    grep -q "^<!-- output: $name " "$README" || { echo "$0: $README has no block \"$name\"" >&2; exit 1; }
done

if [ "$mode" = --write ]; then
    if cmp -s "$OUT/README.md" "$README"; then echo "$README: the sample outputs are up to date"
    else cp "$OUT/README.md" "$README" && echo "$README: sample outputs rewritten"; fi
elif ! cmp -s "$OUT/README.md" "$README"; then
    echo "$README differs from a fresh run (\`make readme\` rewrites it):"
    diff -u "$README" "$OUT/README.md" | sed -n '3,80p'
    exit 1
fi
exit 0
