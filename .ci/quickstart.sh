#!/bin/sh
# .ci/quickstart.sh REPO: prints README.md's Quick start block as a shell script, with
# "<this repository>" replaced by REPO. CI runs what it prints, so the README's lines are
# exactly what is tested and the two cannot drift apart.
#
# The block is the indented lines between "## Quick start" and the next "## " heading.
# One addition, printed first: as root on a machine without sudo (a bare Debian image),
# `sudo CMD` runs CMD, which is what sudo would do for root.
set -eu
repo=${1:?usage: .ci/quickstart.sh REPO}
readme=$(dirname "$0")/../README.md
echo 'set -eux'
echo 'if [ "$(id -u)" -eq 0 ] && ! command -v sudo >/dev/null 2>&1; then sudo() { "$@"; }; fi'
awk '/^## Quick start/ { on = 1; next } on && /^## / { exit } on && /^    / { print substr($0, 5) }' \
    "$readme" | sed "s|<this repository>|$repo|"
