#!/bin/sh
# watch.sh: `make watch [LESSON=03]`: runs a lesson's tests every time you save a file
# under lessons/. Without LESSON it follows you: the lesson is the one `make check` marks
# "you are here", so once a lesson passes, the next save tests the next one.
#
# Uses inotifywait (Debian: apt-get install inotify-tools) when it is there, and otherwise
# looks at the files once a second. Ctrl-C stops it.
# For scripts and tests: MOEKIT_WATCH_POLL=1 always polls; MOEKIT_WATCH_RUNS=N stops after
# N runs.
set -u
MAKE=${MAKE:-make}
LESSON=${LESSON:-}
SANITIZE=${SANITIZE:-}
FIXTURES=${FIXTURES:-data/fixtures}
POLL=${MOEKIT_WATCH_POLL:-}
RUNS=${MOEKIT_WATCH_RUNS:-0}

trap 'echo; echo "stopped watching."; exit 0' INT TERM

if [ -z "$POLL" ] && command -v inotifywait >/dev/null 2>&1; then
    how="inotifywait"
else
    POLL=1
    how="a look every second; apt-get install inotify-tools makes it instant"
fi

run_tests() {
    [ -t 1 ] && printf '\033[2J\033[H' # a clean screen for each run, on a terminal
    lesson=$LESSON
    if [ -z "$lesson" ]; then
        if $MAKE -s --no-print-directory check-build SANITIZE="$SANITIZE" >/dev/null 2>&1; then
            lesson=$("$($MAKE -s --no-print-directory print-check-bin SANITIZE="$SANITIZE")" \
                --current --fixtures "$FIXTURES")
        else
            lesson=compile # show the compiler's message below
        fi
    fi
    if [ -n "$last" ] && [ "$lesson" != "$last" ] && [ "$lesson" != compile ]; then
        if [ "$lesson" = "done" ] || awk -v a="${lesson%%-*}" -v b="${last%%-*}" 'BEGIN { exit !(a + 0 > b + 0) }'; then
            echo "lesson $(echo "$last" | sed 's/-/ /') passes now. Well done!"
            [ "$lesson" = "done" ] ||
                echo "On to lesson $(echo "$lesson" | sed 's/-/ /'): its README is lessons/$lesson/README.md."
        else
            echo "lesson $(echo "$lesson" | sed 's/-/ /') does not pass any more (a later lesson calls it): back to it."
        fi
    fi
    [ "$lesson" = compile ] || last=$lesson
    if [ "$lesson" = "done" ]; then
        echo "Every lesson passes. make run SRC=lessons runs your own model."
    elif [ "$lesson" = compile ]; then
        echo "Your lessons do not compile:"
        $MAKE -s --no-print-directory check-build SANITIZE="$SANITIZE" 2>&1 | head -30
    else
        $MAKE -s --no-print-directory check LESSON="$lesson" SANITIZE="$SANITIZE" \
            FIXTURES="$FIXTURES" 2>&1 | grep -v '^make.*Error [0-9]*$'
    fi
    echo
    echo "watching lessons/ for saves ($how). Ctrl-C stops."
}

# a fingerprint of the lesson sources, for polling
fingerprint() {
    cksum lessons/*/*.c lessons/*/*.h 2>/dev/null
}

run=0
last=
while :; do
    run_tests
    run=$((run + 1))
    [ "$RUNS" -gt 0 ] && [ "$run" -ge "$RUNS" ] && exit 0
    if [ -z "$POLL" ]; then
        # close_write: most editors; moved_to/create: those that save by renaming a new file
        if ! inotifywait -q -q -r -e close_write -e moved_to -e create \
            --exclude '(\.swp|\.swx|~|/\.#.*|4913)$' lessons/ 2>/dev/null; then
            POLL=1
            how="a look every second (inotifywait stopped working)"
        fi
        sleep 0.2 2>/dev/null || sleep 1 # let the editor finish writing
    fi
    if [ -n "$POLL" ]; then
        before=$(fingerprint)
        while [ "$(fingerprint)" = "$before" ]; do sleep 1; done
    fi
done
