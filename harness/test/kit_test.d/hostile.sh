# hostile.sh (kit test section): the hostile-submission corpus (docs/instructors.md, "The
# threat model"). Sourced by kit_test.sh (ok, bad, $LOG, $OPTS, $MAKE).
#
# Each file of harness/test/hostile/ is a lesson 01 (matmul.c) that attacks the grader
# instead of computing; its header says what it tries and, on its "expect:" line, the word
# the problems column must show ("A or B": either). @KIT@ in
# it stands for the kit's absolute path, which an attacker can know. Every attack must:
#   - score 0;
#   - show its word in the problems column;
#   - leave no process behind;
#   - leave the kit unchanged: solutions/, the fixtures, git status (build/ aside);
#   - leave another student's grade unchanged (graded before and after the corpus).
# The archive attacks (../, absolute paths, links, bombs) are in grade.sh.
# Lesson 12's ranks run without the filter: harness/test/hostile/mpi/forge-linger.c, put in
# front of a lesson 12 with a catalogued mistake, forges the job's case files and leaves a
# process behind; it must score no more than the mistake alone, and leave nothing running.

echo "hostile submissions: the sandbox, the system-call filter and the judge"
H=$LOG/hostile
rm -rf "$H" && mkdir -p "$H"
HCC=$(echo "$OPTS" | sed -n 's/^CC=\([^ ]*\).*/\1/p')

# hgrade NAME SUBMISSION [VAR=value ...]: make grade into $H/NAME, the table in $H/NAME.txt
hgrade() {
    name=$1 sub=$2
    shift 2
    $MAKE -s --no-print-directory grade CC="${HCC:-cc}" SUBMISSION="$sub" \
        STUDENT="kit-test-$name" RESULTS="$H/$name" "$@" >"$H/$name.txt" 2>&1
}
# kit_state: what no submission may change: the kit's files and git's view of them
kit_state() {
    { git status --porcelain --untracked-files=all -- . ':(exclude)build' 2>/dev/null
      find solutions data/fixtures harness lessons -type f -exec cksum {} + | sort; } | cksum
}
# leftovers: processes a sandbox left: a test runner, or anything of the user "nobody"
leftovers() {
    for p in /proc/[0-9]*; do
        [ -r "$p/cmdline" ] || continue
        uid=$(awk '/^Uid:/ { print $2 }' 2>/dev/null <"$p/status")
        # a zombie (ended, not yet reaped by an init that does not reap) holds nothing
        grep -q '^State:[[:space:]]*Z' 2>/dev/null <"$p/status" && continue
        args=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")
        case $args in *--record-fd*) echo "${p#/proc/} $args" ;; *)
            [ "$uid" = 65534 ] && [ "$(id -u)" = 0 ] && echo "${p#/proc/} (nobody) $args" ;;
        esac
    done
}

if ! command -v bwrap >/dev/null 2>&1; then
    bad "bubblewrap is not installed: the grader refuses to grade (apt-get install bubblewrap)"
    return 0 2>/dev/null || exit 1
fi

# another student, graded before and after: lessons 01, 03 and 04 (which calls 03)
ref=$H/sub-reference
mkdir -p "$ref" && cp -R solutions/01-* solutions/03-* solutions/04-* "$ref/"
hgrade ref-before "$ref" LESSONS="01 03 04"
state=$(kit_state)

h_n=0 h_ok=0
for attack in harness/test/hostile/*.c; do
    name=$(basename "$attack" .c)
    want=$(sed -n 's/.*expect: \([a-z ]*[a-z]\).*/\1/p' "$attack" | head -1)
    sub=$H/sub-$name
    mkdir -p "$sub/01-matmul"
    sed "s|@KIT@|$PWD|g" "$attack" >"$sub/01-matmul/matmul.c"
    h_n=$((h_n + 1))
    hgrade "$name" "$sub" LESSONS=01 TIMEOUT=1 MAX_TIMEOUTS=1 SANDBOX_MEMORY_MB=512
    score=$(awk '/^Total / { print $2 }' "$H/$name.txt")
    row=$(tail -1 "$H/$name/grade.csv" 2>/dev/null)
    left=$(leftovers)
    why=
    [ "$score" = 0.00 ] || why="score ${score:-?}, not 0"
    # "A or B": either word will do (a memory bomb crashes, or times out on a slow machine)
    said=none
    for word in $(echo "$want" | sed 's/ or /,/g; s/ /_/g; s/,/ /g'); do
        case $row in *"01 $(echo "$word" | tr _ ' ')"*) said=$word ;; esac
    done
    [ "$said" != none ] ||
        why="${why:+$why; }the problems column does not say \"01 $want\": ${row##*,}"
    [ -z "$left" ] || why="${why:+$why; }processes left: $(echo "$left" | head -2 | cut -c1-120)"
    [ "$(kit_state)" = "$state" ] || why="${why:+$why; }the kit changed (git status, solutions/, fixtures)"
    if [ -z "$why" ]; then
        h_ok=$((h_ok + 1))
    else
        bad "hostile submission $name: $why" "$H/$name.txt"
        state=$(kit_state) # report each change once
    fi
done

# lesson 12: forged case files and a process left behind, from the MPI ranks
if command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1; then
    plain=$H/sub-ep-plain fl=$H/sub-ep-forge
    mkdir -p "$plain" "$fl" && cp -R solutions/12-* "$plain/" &&
        patch -s -p1 -d "$plain" <harness/mistakes/12-ep_weights_twice.diff && cp -R "$plain/." "$fl/"
    f=$(echo "$fl"/12-*/expert_parallel.c)
    { sed "s|@KIT@|$PWD|g" harness/test/hostile/mpi/forge-linger.c
      awk '{ print } /^void ep_moe_forward\(/ { sig = 1 } sig && !done && /\{[ \t]*$/ { print "    ep_attack();"; done = 1 }' "$f"
    } >"$f.new" && mv "$f.new" "$f"
    hgrade ep-plain "$plain" LESSONS=12
    hgrade ep-forge "$fl" LESSONS=12
    honest=$(awk '/^Total / { print $2 }' "$H/ep-plain.txt")
    forged=$(awk '/^Total / { print $2 }' "$H/ep-forge.txt")
    lingering=
    for p in /proc/[0-9]*; do
        [ "$(cat "$p/comm" 2>/dev/null)" = moekit-linger ] && lingering="$lingering ${p#/proc/}"
    done
    why=
    grep -q 'ep_attack();' "$f" || why="the attack was not put in ep_moe_forward"
    grep -q 'did not compile' "$H/ep-forge/table.txt" && why="${why:+$why; }it did not compile"
    awk -v h="${honest:-x}" -v f="${forged:-y}" 'BEGIN { exit !(h != "x" && f != "y" && h + 0 > 0 && f + 0 <= h + 0) }' ||
        why="${why:+$why; }${forged:-?} points, the same code without the attack ${honest:-?}"
    [ -z "$lingering" ] || why="${why:+$why; }processes left (moekit-linger):$lingering"
    [ -z "$(leftovers)" ] || why="${why:+$why; }processes left: $(leftovers | head -2 | cut -c1-120)"
    [ "$(kit_state)" = "$state" ] || why="${why:+$why; }the kit changed (git status, solutions/, fixtures)"
    if [ -z "$why" ]; then
        ok "lesson 12's ranks forging the job's case files and leaving a process: $forged points (the same code without: $honest), nothing left running"
    else
        bad "hostile lesson 12 (forge-linger): $why" "$H/ep-forge.txt"
    fi
fi

hgrade ref-after "$ref" LESSONS="01 03 04"
before=$(tail -1 "$H/ref-before/grade.csv" | cut -d, -f2-)
after=$(tail -1 "$H/ref-after/grade.csv" | cut -d, -f2-)
if [ "$h_ok" -eq "$h_n" ] && [ "$h_n" -ge 20 ]; then
    ok "$h_n hostile submissions (harness/test/hostile/): each 0 points, its problem named, no process left, the kit unchanged"
fi
if [ -n "$before" ] && [ "$before" = "$after" ] && [ "${before%%,*}" != 0.00 ]; then
    ok "another student graded before and after the corpus: the same grade ($(echo "$before" | cut -d, -f1-2))"
else
    bad "another student's grade changed across the corpus: [$before] then [$after]" "$H/ref-after.txt"
fi
