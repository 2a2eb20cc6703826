#!/bin/sh
# grade_all.sh: grades every submission in DIR (`make grade-all DIR=submissions/`).
#
# Each entry of DIR is one student: a directory (a copy of their lessons/, or their whole
# kit) or an archive (.tar.gz, .tgz, .tar.xz, .tar.bz2, .tar, .zip) named after them.
# Each grade goes to build/grade/<student>/ (results.json, table.txt); CSV gets a header
# and one row per student: score, max_score, bonus, one column per lesson, and a
# "problems" column (did not compile, crashed, timed out, memory error, leaks).
# Environment: DIR, CSV and what grade.sh takes.
set -u
DIR=${DIR:-}
CSV=${CSV:-build/grade/grades.csv}

[ -n "$DIR" ] || { echo "make grade-all: name the directory of submissions: make grade-all DIR=submissions/" >&2; exit 2; }
[ -d "$DIR" ] || { echo "make grade-all: $DIR is not a directory" >&2; exit 2; }
mkdir -p "$(dirname "$CSV")" || exit 2
tmp=$CSV.tmp
: >"$tmp"
n=0
failed=0
for entry in "$DIR"/*; do
    [ -e "$entry" ] || continue
    case $entry in
    *.tar.gz | *.tgz | *.tar.xz | *.tar.bz2 | *.tar | *.zip) ;;
    *) [ -d "$entry" ] || continue ;;
    esac
    student=$(basename "$entry")
    for ext in .tar.gz .tgz .tar.xz .tar.bz2 .tar .zip; do student=${student%"$ext"}; done
    slug=$(printf '%s' "$student" | tr -c 'A-Za-z0-9._@+-' '_')
    n=$((n + 1))
    if SUBMISSION=$entry STUDENT=$student RESULTS='' QUIET=1 sh harness/grade/grade.sh; then
        row=build/grade/$slug/grade.csv
        [ -s "$tmp" ] || head -1 "$row" >"$tmp"
        tail -n +2 "$row" >>"$tmp"
        printf '%-24s %s\n' "$student" "$(grep '^Total ' "build/grade/$slug/table.txt")"
    else
        failed=$((failed + 1))
        echo "$student: not graded (the grader could not run, see above)" >&2
    fi
done
if [ "$n" -eq 0 ]; then
    rm -f "$tmp"
    echo "make grade-all: no submissions in $DIR (one directory or archive per student)" >&2
    exit 2
fi
mv "$tmp" "$CSV"
echo "$n submissions, $failed not graded: $CSV"
[ "$failed" -eq 0 ]
