# paths.sh (kit test section): no file of the kit refers to a place on a development machine,
# which a user of the kit does not have. Sourced by kit_test.sh (ok, bad, $LOG).
#
# The rule, for every text file git tracks or would track (git ls-files, untracked files not
# ignored included; every file outside build/ and .git/ when there is no git): no absolute
# path under the home or workspace directories home, root, Users or work at the top of the
# file system, and no path under its tmp except the documented scratch example
# (`make fixtures SEED=... OUT=` the tmp directory's fx) and the grader's sandbox's own
# home (tmp's home, inside the sandbox). The hostile corpus (harness/test/hostile/) names
# such paths on purpose: they are what an attack looks for. A path counts when its first slash
# does not follow a letter, digit or one of . _ - ~ (so a URL's .../home/... does not).
# System paths the kit uses on purpose (/usr/bin/python3, /proc/self, /dev/null,
# /usr/share/...) are not matched. The patterns are spelled with [] and this comment names
# the directories without slashes, so that this file does not match itself.

echo "no file refers to a development machine's paths"
PATHS_HOME='(^|[^A-Za-z0-9_.~-])/(hom[e]|roo[t]|User[s]|wor[k])/'
PATHS_TMP='(^|[^A-Za-z0-9_.~-])/tm[p]/'
PATHS_TMP_OK='(^|[^A-Za-z0-9_.~-])/tm[p]/(fx|home)([^A-Za-z0-9_.-]|$)'
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard -- . ':(exclude)harness/test/hostile' \
        >"$LOG/paths-files.txt"
else
    find . -path ./build -prune -o -path ./.git -prune -o -path ./harness/test/hostile -prune \
        -o -type f -print0 >"$LOG/paths-files.txt"
fi
xargs -0 grep -nIE "$PATHS_HOME" <"$LOG/paths-files.txt" >"$LOG/paths.txt" 2>/dev/null
xargs -0 grep -nIE "$PATHS_TMP" <"$LOG/paths-files.txt" 2>/dev/null |
    sed -E "s#$PATHS_TMP_OK#\\1(ok)#g" | grep -E "$PATHS_TMP" >>"$LOG/paths.txt"
if [ -s "$LOG/paths-files.txt" ] && [ ! -s "$LOG/paths.txt" ]; then
    ok "$(tr -cd '\0' <"$LOG/paths-files.txt" | wc -c | tr -d ' ') files: no /home, /root, /Users, /work or /tmp path (but /tmp/fx)"
else
    bad "files that refer to a development machine (file:line: text)" "$LOG/paths.txt"
fi
