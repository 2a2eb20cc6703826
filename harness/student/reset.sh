#!/bin/sh
# reset.sh: `make reset LESSON=NN [MODE=hard]`: puts a lesson's skeleton back as the kit
# shipped it, the committed version of lessons/NN-name/ (git), and touches no other lesson.
#
# MODE=hard writes the hard-mode skeleton instead: the same file with every function you
# write reduced to its signature and contract (harness/student/hard.awk says the rule).
# LESSON=all does every lesson (MODE=hard: `make hard`, start the whole course in hard mode).
#
# A lesson whose files differ from both the committed skeleton and its hard version holds
# your work: reset asks first (y/N) on a terminal, and without a terminal it refuses unless
# FORCE=1. Files you added to the lesson's directory are left alone.
# Environment: LESSON, MODE (normal or hard), FORCE.
set -u
LESSON=${LESSON:-}
MODE=${MODE:-normal}
FORCE=${FORCE:-}
HARD=harness/student/hard.awk

say() { echo "make reset: $*" >&2; }
case $MODE in normal | hard) ;; *) say "MODE must be normal or hard, not '$MODE'"; exit 2 ;; esac
[ -n "$LESSON" ] || { say "name the lesson: make reset LESSON=03 (or LESSON=all)"; exit 2; }
top=$(git rev-parse --show-toplevel 2>/dev/null) || top=
if [ "$top" != "$(pwd -P)" ] || ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
    say "it needs the kit's git history, and this copy has none (a student release?)."
    say "once, right after unpacking: git init -q && git add -A && git commit -qm start"
    exit 2
fi

# the lesson directories LESSON names (3, 03, rope, 03-rope or all), as committed
dirs=$(git ls-tree -d --name-only HEAD lessons/ | while read -r d; do
    full=$(basename "$d")
    id=${full%%-*}
    case $LESSON in
    all | "$full" | "$id" | "${full#??-}") echo "$d" ;;
    *[!0-9]* | '') ;;
    *) [ "$(printf '%02d' "$(echo "$LESSON" | sed 's/^0*//; s/^$/0/')")" = "$id" ] && echo "$d" ;;
    esac
done)
if [ -z "$dirs" ]; then
    say "there is no lesson '$LESSON' in the committed kit. The lessons are:"
    git ls-tree -d --name-only HEAD lessons/ | sed 's|^lessons/|  |' >&2
    exit 2
fi

# committed FILE -> stdout, in MODE
skeleton() {
    if [ "$MODE" = hard ] && [ "${1%.c}" != "$1" ]; then
        git show "HEAD:$1" | awk -f "$HARD"
    else
        git show "HEAD:$1"
    fi
}

# 0 when FILE is as committed, or as the committed file's hard version (not your work)
pristine() {
    [ -f "$1" ] || return 0
    git show "HEAD:$1" | cmp -s - "$1" && return 0
    [ "${1%.c}" != "$1" ] && git show "HEAD:$1" | awk -f "$HARD" | cmp -s - "$1"
}

# yes when the student says so (or FORCE=1)
may_overwrite() {
    [ "$FORCE" = 1 ] && return 0
    if [ ! -t 0 ]; then
        say "$1 holds your changes, and there is no terminal to ask: FORCE=1 overwrites them."
        return 1
    fi
    printf 'make reset: %s holds your changes. Throw them away? [y/N] ' "$1" >&2
    read -r answer || answer=
    case $answer in y | Y | yes | YES) return 0 ;; esac
    echo "make reset: $1 left as it is." >&2
    return 1
}

status=0
for d in $dirs; do
    files=$(git ls-tree -r --name-only HEAD "$d/")
    changed=
    for f in $files; do pristine "$f" || changed="$changed $f"; done
    if [ -n "$changed" ] && ! may_overwrite "$d (${changed# })"; then
        status=1
        continue
    fi
    for f in $files; do
        skeleton "$f" >"$f.reset-tmp" && mv "$f.reset-tmp" "$f" || { rm -f "$f.reset-tmp"; status=2; }
    done
    echo "$d: the $MODE skeleton, as committed"
done
exit $status
