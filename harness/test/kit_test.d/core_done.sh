# core_done.sh (kit test section): lessons 01-08 are the core, 09 and 10 optional. With
# 01-08 done and 09, 10 untouched, `make check` says the core is done, points at no lesson,
# counts no failure and exits 0 (no make error); with 08 untouched too it still points at
# 08 and fails. Sourced by kit_test.sh (ok, bad, build, $LOG, $OPTS, $MAKE, $FIXTURES).

echo "the core (01-08) done, the optional lessons untouched"
tree=build/mutants/core-done
rm -rf "$tree" && mkdir -p "$tree" && cp -R solutions/. "$tree/"
cp lessons/09-fast-matmul/fast_matmul.c "$tree/09-fast-matmul/"
cp lessons/10-routing/routing.c "$tree/10-routing/"
if build "$tree" "$LOG/core-done.txt" >/dev/null; then
    $MAKE -s --no-print-directory $OPTS SRC="$tree" check >"$LOG/core-done.txt" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ] && grep -q '^The core is done: lessons 01-08 pass' "$LOG/core-done.txt" &&
        grep -q '^  09 fast-matmul .*optional$' "$LOG/core-done.txt" &&
        grep -q '^  10 routing .*optional$' "$LOG/core-done.txt" &&
        ! grep -q 'you are here\|Error\|^next:' "$LOG/core-done.txt" &&
        grep -q '^[1-9][0-9]* done, 0 todo, 0 failing$' "$LOG/core-done.txt"; then
        ok "01-08 done, 09 and 10 untouched: make check exits 0, \"the core is done\", 09 and 10 optional"
    else
        bad "01-08 done, 09 and 10 untouched: make check exit $rc" "$LOG/core-done.txt"
    fi
else
    bad "lessons 01-08 with 09 and 10 untouched do not build" "$LOG/core-done.txt"
fi
cp lessons/08-model/model.c "$tree/08-model/"
if bin=$(build "$tree" "$LOG/core-08.txt"); then
    "$bin" --tree "$tree" --fixtures "$FIXTURES" >"$LOG/core-08.txt" 2>&1
    rc=$?
    if [ "$rc" -eq 1 ] && grep -q '^> 08 model .*you are here' "$LOG/core-08.txt" &&
        ! grep -q 'core is done' "$LOG/core-08.txt"; then
        ok "01-07 done, 08 untouched: lesson 08 is \"you are here\", exit 1"
    else
        bad "01-07 done, 08 untouched: exit $rc" "$LOG/core-08.txt"
    fi
else
    bad "lessons 01-07 with 08 untouched do not build" "$LOG/core-08.txt"
fi
