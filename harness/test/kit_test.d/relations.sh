# relations.sh (kit test section): the relation diagnoses of harness/test/relations.c.
# Sourced by kit_test.sh (ok, bad, build, $LOG, $OPTS, $MAKE, $FIXTURES), after the
# catalogued mistakes have been built into build/mutants/NAME.
#
#   - selftest_relations: each relation fires on an output made wrong in its way, and none
#     fires on a right output, one off by rounding, or noise;
#   - the catalogued mistakes again, on the fixtures without their stored variants
#     (strip_variants.py): how many of them a relation alone still names. The list is in
#     build/kit_test/relations-named.txt; fewer than RELATIONS_FLOOR is a failure (a
#     relation that stopped firing).
RELATIONS_FLOOR=${RELATIONS_FLOOR:-17}

echo "relation diagnoses (what kind of wrong, without a stored variant)"
if $MAKE -s --no-print-directory $OPTS selftest-relations >"$LOG/relations-selftest.txt" 2>&1; then
    ok "relations: $(tail -1 "$LOG/relations-selftest.txt") (each fires on its wrong output, silent on right ones and noise)"
else
    bad "relations self-test: $(tail -1 "$LOG/relations-selftest.txt")" "$LOG/relations-selftest.txt"
fi

if [ ! -x /usr/bin/python3 ]; then
    echo "  skip    relations alone on the catalogued mistakes: no /usr/bin/python3 for strip_variants.py"
elif ! /usr/bin/python3 harness/test/strip_variants.py "$FIXTURES" "$LOG/fixtures-novariants" \
    >"$LOG/strip.txt" 2>&1; then
    bad "strip_variants.py could not copy $FIXTURES" "$LOG/strip.txt"
else
    named=0 total=0
    : >"$LOG/relations-named.txt"
    for diff in harness/mistakes/*.diff; do
        name=$(sed -n 's/^mistake: //p' "$diff")
        lesson=$(sed -n 's/^lesson: //p' "$diff")
        bin=$(build "build/mutants/$name" "$LOG/relations-$name.txt") || continue
        "$bin" --tree solutions --fixtures "$LOG/fixtures-novariants" --lesson "$lesson" \
            >"$LOG/relations-$name.txt" 2>&1
        total=$((total + 1))
        line=$(grep -m1 'looks like, from the numbers alone:' "$LOG/relations-$name.txt")
        if [ -n "$line" ]; then
            named=$((named + 1))
            printf '%s: %s\n' "$name" "${line#*alone: }" >>"$LOG/relations-named.txt"
        else
            printf '%s: (none)\n' "$name" >>"$LOG/relations-named.txt"
        fi
    done
    if [ "$named" -ge "$RELATIONS_FLOOR" ]; then
        ok "relations alone name $named of $total catalogued mistakes (stored variants left out)"
    else
        bad "relations alone name $named of $total catalogued mistakes, fewer than $RELATIONS_FLOOR" \
            "$LOG/relations-named.txt"
    fi
fi
