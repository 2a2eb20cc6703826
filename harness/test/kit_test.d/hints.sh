# hints.sh (kit test section): the hints live out of sight, one file per lesson, and
# describe the code without dictating it. Every lesson has lessons/NN-name/hints.md with
# at least two "## " hints (what `make hint` shows, harness/student/hint.sh); no README
# has a "## Hints" section; no hint holds a line that reads like a C statement (one that
# ends in ';' or is a lone brace). make student-release checks the stronger property, that
# no shipped file holds a line of solutions/ (kit_test.d/grade.sh runs it).
# Sourced by kit_test.sh (ok, bad, $LOG).

echo "hints: one file per lesson, out of the README, no code"
: >"$LOG/hints.txt"
n_lessons=0
for d in lessons/[0-9][0-9]-*/; do
    d=${d%/}
    n_lessons=$((n_lessons + 1))
    h=$d/hints.md
    if [ ! -f "$h" ]; then
        echo "$d: no hints.md" >>"$LOG/hints.txt"
        continue
    fi
    n=$(grep -c '^## ' "$h")
    [ "$n" -ge 2 ] || echo "$h: $n hints (want at least 2)" >>"$LOG/hints.txt"
    grep -n '^## Hints' "$d/README.md" | sed "s|^|$d/README.md:|" >>"$LOG/hints.txt"
    awk '/^## / { on = 1 } on && (/;[ \t]*$/ || /^[ \t]*[{}][ \t]*$/) { print FILENAME ":" FNR ": " $0 }' \
        "$h" >>"$LOG/hints.txt"
done
if [ ! -s "$LOG/hints.txt" ] && [ "$n_lessons" -gt 0 ]; then
    ok "$n_lessons lessons: each has hints.md (2 or more hints), no README has a Hints section, no hint line is C"
else
    bad "hints out of place or reading like code" "$LOG/hints.txt"
fi
