# student_loop.sh (kit test section): the student loop and the property checks.
#   - make check's summary "N done, M todo, K failing" counts its own test lines, and an
#     untouched lesson is todo, not failing;
#   - FULL=1 prints the max error on a pass; a passing lesson names the next one;
#   - make reset restores one lesson from git, asks first (refuses without a terminal),
#     touches no other lesson, and MODE=hard writes the hard skeleton;
#   - the hard skeletons (harness/student/hard.awk) compile with -Werror and fail every test
#     as todo; make student-release MODE=hard ships them;
#   - each property check fails on a wrong implementation, a seed replays, and SEED means
#     the fixtures' seed to make fixtures and the property checks' to make check;
#   - the property checks run under the grader's split (strip, record, judge) too.
# Sourced by kit_test.sh (ok, bad, build, $LOG, $OPTS, $MAKE, $FIXTURES).

echo "the student loop: todo, reset, FULL=1, next lesson, hard mode, property checks"
SL=build/student_loop
rm -rf "$SL" && mkdir -p "$SL"

# sl_tree NAME: a tree with lesson 01 solved, 02 with a mistake, the rest skeletons
sl_mixed=$SL/mixed
mkdir -p "$sl_mixed" && cp -R lessons/. "$sl_mixed/" && cp solutions/01-matmul/matmul.c "$sl_mixed/01-matmul/" &&
    cp solutions/02-rmsnorm/rmsnorm.c "$sl_mixed/02-rmsnorm/" &&
    patch -s -p1 -d "$sl_mixed" <harness/mistakes/02-eps_outside_sqrt.diff
if bin=$(build "$sl_mixed" "$LOG/sl-mixed.txt"); then
    "$bin" --tree "$sl_mixed" --fixtures "$FIXTURES" --full >"$LOG/sl-mixed.txt" 2>&1
    rc=$?
    n_ok=$(grep -cE '^  ok ' "$LOG/sl-mixed.txt")
    n_todo=$(grep -cE '^  todo ' "$LOG/sl-mixed.txt")
    n_bad=$(grep -cE '^  (FAIL|ERROR|CRASH|TIMEOUT|MEMORY|LEAK) ' "$LOG/sl-mixed.txt")
    # --full shows the optional lessons' lines too, which an all-lessons total leaves out
    n_opt=$(awk '/^lesson (09|1[0-9]) / { on = 1; next } /^lesson / { on = 0 } on && /^  todo / { n++ } END { print n + 0 }' "$LOG/sl-mixed.txt")
    want="$n_ok done, $((n_todo - n_opt)) todo, $n_bad failing"
    if [ "$rc" -eq 1 ] && [ "$n_ok" -gt 0 ] && [ "$n_bad" -gt 0 ] && [ "$((n_todo - n_opt))" -gt 0 ] &&
        [ "$(tail -1 "$LOG/sl-mixed.txt")" = "$want" ]; then
        ok "01 solved, 02 wrong, the rest untouched: \"$want\" (its own lines), exit 1"
    else
        bad "summary \"$(tail -1 "$LOG/sl-mixed.txt")\", its lines say \"$want\" (exit $rc)" "$LOG/sl-mixed.txt"
    fi
else
    bad "the mixed tree does not build" "$LOG/sl-mixed.txt"
fi

# FULL=1: a max error on every comparison of a pass; none without it
$MAKE -s --no-print-directory $OPTS SRC=solutions LESSON=02 check FULL=1 >"$LOG/sl-full.txt" 2>&1
$MAKE -s --no-print-directory $OPTS SRC=solutions LESSON=02 check >"$LOG/sl-plain.txt" 2>&1
n_pass=$(grep -cE '^  ok ' "$LOG/sl-full.txt")
n_max=$(grep -c ': max abs error .* at .*(expected .*, got .*)' "$LOG/sl-full.txt")
if [ "$n_pass" -gt 0 ] && [ "$n_max" -ge "$n_pass" ] && ! grep -q 'max abs error' "$LOG/sl-plain.txt"; then
    ok "FULL=1: $n_max max errors (with where) for lesson 02's $n_pass passing tests; none without FULL"
else
    bad "FULL=1: $n_max max-error lines for $n_pass passes" "$LOG/sl-full.txt"
fi

# after a pass, the next lesson: its README and its goal (the skeleton's first sentence)
$MAKE -s --no-print-directory $OPTS SRC=solutions LESSON=03 check >"$LOG/sl-next.txt" 2>&1
"$bin" --tree "$sl_mixed" --fixtures "$FIXTURES" --lesson 02 >"$LOG/sl-next-fail.txt" 2>&1
if grep -qx 'lesson 03 rope passes. next: lesson 04 attention, lessons/04-attention/README.md' "$LOG/sl-next.txt" &&
    grep -qx '  attention, the part of the block where tokens look at each other.' "$LOG/sl-next.txt" &&
    ! grep -q 'passes. next:' "$LOG/sl-next-fail.txt"; then
    ok "make check LESSON=03 on a pass names lesson 04, its README and goal; a failing lesson does not"
else
    bad "the next lesson after a pass" "$LOG/sl-next.txt"
fi

# ---- make reset, in a scratch git copy of the kit ------------------------------------------------
kit=$SL/kit
mkdir -p "$kit" && cp -R Makefile mk lessons "$kit/" && mkdir -p "$kit/harness" && cp -R harness/student "$kit/harness/"
(cd "$kit" && git init -q && git add -A && git -c user.name=kit -c user.email=kit@localhost commit -qm skeletons) >"$LOG/sl-reset.txt" 2>&1
reset() { (cd "$kit" && $MAKE -s --no-print-directory reset "$@") >>"$LOG/sl-reset.txt" 2>&1; }
rope=lessons/03-rope/rope.c
echo 'int mine;' >>"$kit/$rope" && echo 'int mine;' >>"$kit/lessons/02-rmsnorm/rmsnorm.c"
reset LESSON=03 </dev/null
refused=$?
kept=$(tail -1 "$kit/$rope")
reset LESSON=03 FORCE=1 </dev/null
forced=$?
if [ "$refused" -ne 0 ] && [ "$kept" = 'int mine;' ] && grep -q 'no terminal to ask: FORCE=1' "$LOG/sl-reset.txt" &&
    [ "$forced" -eq 0 ] && (cd "$kit" && git diff --quiet HEAD -- lessons/03-rope) &&
    [ "$(tail -1 "$kit/lessons/02-rmsnorm/rmsnorm.c")" = 'int mine;' ]; then
    ok "make reset LESSON=03: refuses changes without a terminal, FORCE=1 restores the committed skeleton, lesson 02 untouched"
else
    bad "make reset LESSON=03 (refused: exit $refused, FORCE=1: exit $forced)" "$LOG/sl-reset.txt"
fi
# on a terminal (script(1) gives one): "n" keeps the changes, "y" throws them away
if command -v script >/dev/null 2>&1; then
    echo 'int mine;' >>"$kit/$rope"
    (cd "$kit" && echo n | script -qec "$MAKE -s --no-print-directory reset LESSON=rope" /dev/null) >"$LOG/sl-tty.txt" 2>&1
    said_n=$(tail -1 "$kit/$rope")
    (cd "$kit" && echo y | script -qec "$MAKE -s --no-print-directory reset LESSON=rope" /dev/null) >>"$LOG/sl-tty.txt" 2>&1
    if grep -q 'Throw them away? \[y/N\]' "$LOG/sl-tty.txt" && [ "$said_n" = 'int mine;' ] &&
        (cd "$kit" && git diff --quiet HEAD -- lessons/03-rope); then
        ok "make reset on a terminal asks [y/N]: n keeps the changes, y restores"
    else
        bad "make reset on a terminal" "$LOG/sl-tty.txt"
    fi
else
    echo "  skip    make reset on a terminal: no script(1) (apt-get install bsdutils)"
fi
# MODE=hard: the hard skeleton, which is not "your changes" when reset again
reset LESSON=03 MODE=hard </dev/null && hard_rc=0 || hard_rc=$?
reset LESSON=03 </dev/null && back_rc=0 || back_rc=$?
reset LESSON=03 MODE=hard </dev/null
if [ "$hard_rc" -eq 0 ] && [ "$back_rc" -eq 0 ] && grep -q 'TODO("rope: write it from its contract above");' "$kit/$rope" &&
    ! grep -q '/\* TODO' "$kit/$rope" && (cd "$kit" && git diff --quiet HEAD -- lessons/01-matmul); then
    ok "make reset LESSON=03 MODE=hard writes the hard skeleton; resetting it asks nothing"
else
    bad "make reset MODE=hard (exit $hard_rc, then $back_rc)" "$LOG/sl-reset.txt"
fi
# no git history: one line that says what to do
rm -rf "$kit/.git"
reset LESSON=03 </dev/null
nogit=$?
if [ "$nogit" -ne 0 ] && grep -q 'needs the kit.s git history' "$LOG/sl-reset.txt" && grep -q 'git init' "$LOG/sl-reset.txt"; then
    ok "make reset without git history: exit $nogit, says how to make one"
else
    bad "make reset without git history: exit $nogit" "$LOG/sl-reset.txt"
fi

# ---- hard mode: every lesson's hard skeleton compiles (-Werror) and fails as todo ---------------
hard=$SL/hard
for d in lessons/[0-9][0-9]-*/; do
    n=$(basename "$d")
    mkdir -p "$hard/$n"
    for f in "$d"*.c; do awk -f harness/student/hard.awk "$f" >"$hard/$n/$(basename "$f")"; done
done
n_funcs=$(grep -c '^    TODO(".*: write it from its contract above");$' "$hard"/*/*.c | awk -F: '{ s += $2 } END { print s }')
n_guides=$(grep -c '/\* TODO' "$hard"/*/*.c | awk -F: '{ s += $2 } END { print s }')
if hbin=$(build "$hard" "$LOG/sl-hard.txt"); then
    "$hbin" --tree "$hard" --fixtures "$FIXTURES" --full >"$LOG/sl-hard.txt" 2>&1
    rc=$?
    results=$(grep -cE '^  (ok|FAIL|todo|ERROR|CRASH) ' "$LOG/sl-hard.txt")
    todos=$(grep -cE '^  todo ' "$LOG/sl-hard.txt")
    if [ "$rc" -eq 1 ] && [ "$results" -gt 0 ] && [ "$todos" -eq "$results" ] && [ "$n_guides" -eq 0 ] &&
        [ "$n_funcs" -gt 0 ]; then
        ok "hard skeletons: $n_funcs functions reduced to their contract, no TODO comment left, -Werror clean, all $todos tests todo"
    else
        bad "hard skeletons: exit $rc, $todos of $results todo, $n_guides TODO comments left" "$LOG/sl-hard.txt"
    fi
else
    bad "the hard skeletons do not build" "$LOG/sl-hard.txt"
fi
# the rule keeps ready-made functions whole: lesson 07's moe_forward and scratch helpers
if awk '/^void moe_forward\(/ { on = 1 } on' lessons/07-moe/moe.c >"$SL/moe-normal.txt" &&
    awk '/^void moe_forward\(/ { on = 1 } on' "$hard/07-moe/moe.c" >"$SL/moe-hard.txt" &&
    cmp -s "$SL/moe-normal.txt" "$SL/moe-hard.txt" && grep -q 'int moe_scratch_init' "$hard/07-moe/moe.c" &&
    grep -q 'calloc' "$hard/07-moe/moe.c"; then
    ok "hard.awk keeps ready-made functions (lesson 07's moe_forward, moe_scratch_init) as they are"
else
    bad "hard.awk changed a ready-made function" "$SL/moe-hard.txt"
fi
# make student-release MODE=hard ships exactly those files
if [ -d solutions ] && RELEASE=$SL/hard.tar.gz MODE=hard MAKE="$MAKE" sh harness/grade/release.sh >"$LOG/sl-release.txt" 2>&1; then
    mkdir -p "$SL/rel" && tar -xzf "$SL/hard.tar.gz" -C "$SL/rel"
    diffs=$(for f in "$hard"/*/*.c; do n=${f#"$hard"/}; cmp -s "$f" "$SL/rel/moekit/lessons/$n" || echo "$n"; done)
    if [ -z "$diffs" ] && grep -q 'hard-mode skeletons' "$LOG/sl-release.txt"; then
        ok "make student-release MODE=hard: the lessons are the hard skeletons, the rest as released"
    else
        bad "make student-release MODE=hard: differs in $diffs" "$LOG/sl-release.txt"
    fi
else
    bad "make student-release MODE=hard" "$LOG/sl-release.txt"
fi

# ---- property checks -----------------------------------------------------------------------------
# SEED: make fixtures' seed (1234 by default); make check passes one only when given
fx_default=$($MAKE -n --no-print-directory fixtures | grep -c -- '--seed 1234')
chk_default=$($MAKE -n --no-print-directory check | grep -c -- '--seed')
chk_given=$($MAKE -n --no-print-directory check SEED=77 | grep -c -- '--seed 77')
if [ "$fx_default" -gt 0 ] && [ "$chk_default" -eq 0 ] && [ "$chk_given" -gt 0 ]; then
    ok "SEED: make fixtures keeps its 1234; make check passes --seed only when SEED is given"
else
    bad "SEED: fixtures default $fx_default, check without SEED $chk_default, with SEED=77 $chk_given"
fi
# mutant NAME LESSON FILE SED PROPERTY: a wrong implementation the property must catch
mutant() {
    tree=build/mutants/property-$1
    rm -rf "$tree" && mkdir -p "$tree" && cp -R solutions/. "$tree/"
    sed -i "$4" "$tree/$3"
    if cmp -s "$tree/$3" "solutions/$3"; then bad "property mutant $1: the sed changed nothing in $3"; return; fi
    mbin=$(build "$tree" "$LOG/sl-prop-$1.txt") || { bad "property mutant $1 does not build" "$LOG/sl-prop-$1.txt"; return; }
    "$mbin" --tree "$tree" --fixtures "$FIXTURES" --lesson "$2" --seed 4242 >"$LOG/sl-prop-$1.txt" 2>&1
    if grep -q "^  FAIL    property: $5, " "$LOG/sl-prop-$1.txt"; then
        ok "property \"$5\" fails on $1"
    else
        bad "property \"$5\" does not fail on $1" "$LOG/sl-prop-$1.txt"
    fi
}
mutant softmax_unnormalized 04 04-attention/attention.c 's|x\[i\] /= sum;|(void)sum;|' 'softmax rows sum to 1'
mutant matmul_bias 01 01-matmul/matmul.c 's|y\[o\] = sum;|y[o] = sum + 0.5f;|' 'matmul is linear'
mutant rope_sign 03 03-rope/rope.c 's|x1 \* c + x0 \* s;|x1 * c - x0 * s;|' "rope keeps each pair's norm"
mutant moe_expert0 07 07-moe/moe.c 's|&w->experts\[e\]|\&w->experts[0]|' "moe_forward ignores the experts' numbering"
mutant decode_pos0 08 08-model/model.c 's|self_attn_forward(s->y, s->h, T, pos0,|self_attn_forward(s->y, s->h, T, 0,|' 'decode equals prefill'
mutant q8_0_truncating 13 13-quantization/quant.c 's|(int8_t)lroundf(x\[i\] \* id)|(int8_t)(x[i] * id)|' 'q8_0 round trip is within d/2'
# a failing seed replays: the same seed, the same report; the seed is printed (--test 1:
# lesson 04's property check alone, so that its own report is the one shown in full)
tree=build/mutants/property-softmax_unnormalized
if mbin=$(build "$tree" "$LOG/sl-replay.txt"); then
    "$mbin" --tree "$tree" --fixtures "$FIXTURES" --lesson 04 --test 1 >"$LOG/sl-replay1.txt" 2>&1
    seed=$(sed -n 's/^property checks drew their inputs with seed \([0-9]*\):.*/\1/p' "$LOG/sl-replay1.txt")
    [ -n "$seed" ] && "$mbin" --tree "$tree" --fixtures "$FIXTURES" --lesson 04 --test 1 --seed "$seed" >"$LOG/sl-replay2.txt" 2>&1
    "$mbin" --tree "$tree" --fixtures "$FIXTURES" --lesson 04 --test 1 --seed $((seed + 1)) >"$LOG/sl-replay3.txt" 2>&1
    if [ -n "$seed" ] && grep -q "make check LESSON=04 SEED=$seed" "$LOG/sl-replay1.txt" &&
        grep -q "each row sums to 1, each value in \[0, 1\] does not hold" "$LOG/sl-replay1.txt" &&
        cmp -s "$LOG/sl-replay1.txt" "$LOG/sl-replay2.txt" && ! cmp -s "$LOG/sl-replay1.txt" "$LOG/sl-replay3.txt"; then
        ok "a failing property run prints seed $seed; --seed $seed replays it word for word, another seed draws others"
    else
        bad "seed replay (seed '$seed')" "$LOG/sl-replay1.txt"
    fi
fi
# the grader's split: strip (solutions), record (the student's code, stripped fixtures), judge
sbin=$(build solutions "$LOG/sl-split.txt")
split() { # TREE: the judge's output for lesson 04
    rm -rf "$SL/strip" "$SL/tape" && mkdir -p "$SL/strip"
    "$sbin" --strip "$SL/strip" --fixtures "$FIXTURES" --lesson 04 >>"$LOG/sl-split.txt" 2>&1 &&
        "$2" --tree "$1" --fixtures "$SL/strip" --lesson 04 --record-fd 3 3>"$SL/tape" </dev/null >>"$LOG/sl-split.txt" 2>&1
    "$sbin" --judge "$SL/tape" --tree "$1" --fixtures "$FIXTURES" --lesson 04
}
split solutions "$sbin" >"$LOG/sl-split-ok.txt" 2>&1
split "$tree" "$mbin" >"$LOG/sl-split-bad.txt" 2>&1
if grep -q '^  ok      property: softmax rows sum to 1, ' "$LOG/sl-split-ok.txt" &&
    ! grep -q '^  FAIL' "$LOG/sl-split-ok.txt" &&
    grep -q '^  FAIL    property: softmax rows sum to 1, ' "$LOG/sl-split-bad.txt"; then
    ok "under strip, record and judge: the property passes on the solutions and fails on the unnormalized softmax"
else
    bad "the property checks under the grader's split" "$LOG/sl-split-bad.txt"
fi
