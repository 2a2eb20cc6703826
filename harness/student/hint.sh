#!/bin/sh
# hint.sh: `make hint [LESSON=03]`: the next hint for a lesson, one more each time.
#
# The hints of a lesson live in lessons/NN-name/hints.md, out of the README, so that a
# student sees one only by asking for it. Each "## KIND" heading there starts one hint
# (KIND says what it gives: "a question", "the idea", "the shape of the code"), gentle
# first; the text before the first heading is a note to whoever opens the file and is
# never shown. A hint says what to think about and how the code is shaped, never the
# statements to type. A new lesson gets hints by adding that file. Without LESSON, the
# lesson is the one `make check` marks "you are here". How many hints you have seen is
# kept in .moekit-hints, one line per lesson ("03 2"): delete it to start over.
set -u
MAKE=${MAKE:-make}
LESSON=${LESSON:-}
STATE=.moekit-hints

if [ -z "$LESSON" ]; then
    if ! $MAKE -s --no-print-directory check-build >/dev/null 2>&1; then
        echo "make hint: your lessons do not compile just now, so I cannot tell which lesson you are on."
        echo "Name it: make hint LESSON=03   (make check shows the compiler's message)"
        exit 2
    fi
    LESSON=$("$($MAKE -s --no-print-directory print-check-bin)" --current)
    if [ "$LESSON" = "done" ]; then
        echo "Every lesson passes: there is nothing left to hint at. Well done."
        exit 0
    fi
fi

# LESSON may be 3, 03, rope or 03-rope
dir=
for d in lessons/[0-9][0-9]-*/; do
    d=${d%/}
    full=$(basename "$d")
    id=${full%%-*}
    case $LESSON in
    "$full" | "$id" | "${full#??-}") dir=$d ;;
    *[!0-9]* | '') ;;
    *) [ "$(printf '%02d' "$(echo "$LESSON" | sed 's/^0*//; s/^$/0/')")" = "$id" ] && dir=$d ;;
    esac
done
if [ -z "$dir" ]; then
    echo "make hint: there is no lesson '$LESSON'. The lessons are:"
    for d in lessons/[0-9][0-9]-*/; do printf '  %s' "$(basename "$d")"; done
    echo
    exit 2
fi
full=$(basename "$dir")
id=${full%%-*}
hints_file=$dir/hints.md

# the hints, one per "## KIND" heading: "KIND<tab>TEXT" with the text's lines joined by \n
hints=$(awk '
    function flush() {
        if (text != "") print kind "\t" text
        text = ""; blanks = 0
    }
    /^## / { flush(); kind = substr($0, 4); sub(/[ \t]+$/, "", kind); inside = 1; next }
    !inside { next }
    /^[ \t]*$/ { if (text != "") blanks++; next }
    {
        while (blanks > 0) { text = text "\\n"; blanks-- }
        text = (text == "") ? $0 : text "\\n" $0
    }
    END { flush() }
' "$hints_file" 2>/dev/null)
total=$(printf '%s\n' "$hints" | grep -c .)
if [ "$total" -eq 0 ]; then
    echo "Lesson $id has no hints yet (no \"## \" headings in $hints_file)."
    echo "The \"looks like:\" line of a failing test, and the README's sections on mistakes, help too."
    exit 0
fi

seen=$(awk -v id="$id" '$1 == id { n = $2 } END { print n + 0 }' "$STATE" 2>/dev/null || echo 0)
n=$((seen + 1))
again=
if [ "$n" -gt "$total" ]; then
    n=$total
    again=1
fi
line=$(printf '%s\n' "$hints" | sed -n "${n}p")
step=$(printf '%s' "$line" | cut -f1)
text=$(printf '%s' "$line" | cut -f2-)

if [ -n "$again" ]; then
    echo "You have seen all $total hints for lesson $id. The last one again:"
else
    echo "lesson $id ${full#??-}: hint $n of $total${step:+ ($step)}"
fi
echo
printf '%s\n' "$text" | awk '{ n = split($0, part, /\\n/); for (i = 1; i <= n; i++) print (part[i] == "" ? "" : "  " part[i]) }'
echo
if [ -n "$again" ]; then
    echo "They are all in $hints_file, in this order. Still stuck?"
    echo "The \"looks like:\" line of a failing test names the mistake, and the README has"
    echo "a section on each one."
elif [ "$n" -lt "$total" ]; then
    echo "Stuck after trying this? make hint LESSON=$id shows the next one."
else
    echo "That was the last hint for lesson $id."
fi
echo "(hints seen are counted in $STATE: delete it to start over)"

# remember: replace this lesson's line
{
    [ -f "$STATE" ] && awk -v id="$id" '$1 != id' "$STATE"
    echo "$id $n"
} >"$STATE.tmp" && mv "$STATE.tmp" "$STATE"
