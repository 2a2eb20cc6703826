# experiments.sh (kit test section): the routing lab. `make experiment` lists the
# experiments (harness/experiments/*.sh); an unknown NAME is one line and a failure; each
# experiment's smoke run (SIZE=smoke) writes its report with filled tables and its PNGs
# (the training ones need python3-torch and the fortunes: skipped with the install line);
# moekit --replace-expert swaps an expert's weights and rejects bad input in one line.
# Sourced by kit_test.sh (ok, bad, $LOG, $OPTS, $MAKE, $CLI).

echo "routing lab: make experiment"
want=$(ls harness/experiments/*.sh | sed 's|.*/||; s|\.sh$||' | grep -vx common | sort)
got=$($MAKE -s --no-print-directory experiment 2>&1)
if [ -n "$want" ] && [ "$got" = "$want" ]; then
    ok "make experiment lists the $(echo "$got" | wc -l) experiments, one per line"
else
    bad "make experiment lists '$(echo $got)', want '$(echo $want)'"
fi
if ! $MAKE -s --no-print-directory experiment NAME=no-such >"$LOG/exp-unknown.txt" 2>&1 &&
    grep -q "NAME=no-such is not an experiment" "$LOG/exp-unknown.txt"; then
    ok "make experiment NAME=no-such: one line naming it, non-zero exit"
else
    bad "make experiment NAME=no-such" "$LOG/exp-unknown.txt"
fi

# smoke NAME: the experiment's tiny run; its report has tables without empty cells, no
# "nan", and every PNG it links exists and is a PNG
smoke() {
    dir=$LOG/experiments/$1
    if ! $MAKE -s --no-print-directory $OPTS experiment NAME="$1" SIZE=smoke EXP_OUT="$LOG/experiments" \
        >"$LOG/exp-$1.txt" 2>&1; then
        bad "make experiment NAME=$1 SIZE=smoke" "$LOG/exp-$1.txt"
        return
    fi
    pngs=$(sed -n 's/.*!\[[^]]*\](\([^)]*\.png\)).*/\1/p' "$dir/README.md")
    missing=$(for p in $pngs; do
        head -c 8 "$dir/$p" 2>/dev/null | od -An -c | grep -q 'P   N   G' || echo "$p"; done)
    rows=$(grep -c '^| ' "$dir/README.md")
    if [ -z "$pngs" ] || [ -n "$missing" ] || [ "$rows" -lt 3 ] ||
        grep -E '\| +\||nan' "$dir/README.md" | grep -qv '^| |'; then
        bad "$1 (smoke): report $dir/README.md: PNGs '$(echo $pngs)' (missing: '$missing'), $rows table rows, or an empty cell / nan"
    else
        ok "$1 (smoke): README.md with $rows table rows and $(echo "$pngs" | wc -w) PNG(s)"
    fi
}
smoke top-k
smoke expert-importance
smoke capacity-factor
if ! /usr/bin/python3 -c "import torch" 2>/dev/null || [ ! -d /usr/share/games/fortunes/de ]; then
    echo "  skip    balance-losses, router-retrain: they train: apt-get install -y python3-torch fortunes fortunes-de fortunes-es fortunes-it fortunes-ru fortunes-bofh-excuses"
else
    smoke balance-losses
    smoke z-loss
    smoke routing-variants
    if [ -f /usr/share/games/fortunes/bofh-excuses ]; then smoke router-retrain
    else echo "  skip    router-retrain: its domain is missing: apt-get install -y fortunes-bofh-excuses"; fi
fi

echo "routing lab: moekit --replace-expert"
if [ -z "${CLI:-}" ]; then
    bad "the CLI was not built"
else
    f=$LOG/replace-en.txt
    awk '/^%$/ { if (++c >= 5) exit } { print }' data/corpus/heldout-en.txt >"$f"
    ppl() { "$CLI" perplexity --fortunes --model data/model --file "$f" "$@" 2>&1 | sed -n 's/.*: \([0-9.]*\) bits per byte.*/\1/p'; }
    base=$(ppl) same=$(ppl --replace-expert 1:1:data/model) swapped=$(ppl --replace-expert 1:1:data/model:3:3)
    if [ -n "$base" ] && [ "$same" = "$base" ] && [ -n "$swapped" ] && [ "$swapped" != "$base" ]; then
        ok "an expert replaced by itself: same bpb ($base); by layer 3's expert 3: $swapped"
    else
        bad "--replace-expert: bpb $base, replaced by itself '$same', by 3:3 '$swapped'"
    fi
    n_bad=0
    for arg in 1:1 x:1:data/model 0:1:data/model 1:99:data/model 1:1:$LOG/none 1:1:data/models/qwen3-moe-tiny; do
        "$CLI" perplexity --fortunes --model data/model --file "$f" --replace-expert "$arg" \
            >"$LOG/replace-bad.txt" 2>&1
        rc=$?
        if [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] && [ "$(wc -l <"$LOG/replace-bad.txt")" -eq 1 ] &&
            grep -q -- "--replace-expert" "$LOG/replace-bad.txt"; then :; else
            n_bad=$((n_bad + 1)); echo "$arg: rc $rc: $(cat "$LOG/replace-bad.txt")" >>"$LOG/replace-errors.txt"
        fi
    done
    if [ "$n_bad" -eq 0 ]; then ok "--replace-expert: 6 bad values, each one line naming the flag, exit 1 or 2"
    else bad "--replace-expert: $n_bad bad values not rejected in one line" "$LOG/replace-errors.txt"; fi
fi
