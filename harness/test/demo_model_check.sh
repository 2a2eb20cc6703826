#!/bin/sh
# demo_model_check.sh [MOEKIT] [MODEL]: the demo model's held-out bits per byte, computed
# by the C model (`moekit perplexity --fortunes`, train.py's protocol), equal PyTorch's
# (MODEL/heldout_bpb.json, written by train.py) to 3 decimals, for every language; and every
# language is below 2.4. Then the balance bar of the routing lab: in every MoE layer, every
# expert gets at least 0.3 of its fair share 1/E of the held-out routing (top-k assignments,
# all five languages). Last, for the model card, the bits per byte of an English text the
# model never saw (Debian's fortunes-bofh-excuses), where it is installed.
# Slow with the naive lesson 01 matmul (about a minute), so CI runs it, not `make test`.
MOEKIT=${1:-build/moekit} MODEL=${2:-data/model}
TMP=$(mktemp -d) && trap 'rm -rf "$TMP"' EXIT
passed=0 failed=0
for lang in en de es it ru; do
    py=$(awk -v l="\"$lang\"" '$1 == l":" { f = 1 } f && /"bpb"/ { gsub(/[",]/, "", $2); print $2; exit }' \
        "$MODEL/heldout_bpb.json")
    c=$("$MOEKIT" perplexity --fortunes --model "$MODEL" --file "data/corpus/heldout-$lang.txt" \
        --dump-routing "$TMP/dump.tsv" | awk '{print $2}')
    awk -f harness/plot/routing_stats.awk "$TMP/dump.tsv" >"$TMP/$lang.count"
    if awk -v a="$c" -v b="$py" 'BEGIN { d = a - b; exit !(a != "" && d < 0.0005 && d > -0.0005 && a < 2.4) }'; then
        passed=$((passed + 1)); echo "  ok      $lang: C $c, PyTorch $py bits per byte"
    else
        failed=$((failed + 1)); echo "  FAIL    $lang: C '$c', PyTorch '$py' bits per byte"
    fi
done
E=$(sed -n 's/.*"num_experts": *\([0-9]*\).*/\1/p' "$MODEL/config.json")
# per MoE layer: "layer least-used-expert its-share-in-fair-shares"
awk -v E="$E" -f harness/plot/shares.awk "$TMP"/*.count |
    awk -v E="$E" '{ m = 2; for (e = 3; e <= NF; e++) if ($e < $m) m = e; printf "%d %d %.3f\n", $1, m - 2, $m * E }' \
        >"$TMP/least"
while read -r layer expert fair; do
    if awk -v f="$fair" 'BEGIN { exit !(f >= 0.3) }'; then
        passed=$((passed + 1)); echo "  ok      layer $layer: its least-used expert, $expert, gets $fair of a fair share"
    else
        failed=$((failed + 1)); echo "  FAIL    layer $layer: expert $expert gets $fair of a fair share 1/$E (the bar: 0.3)"
    fi
done <"$TMP/least"
[ -s "$TMP/least" ] || { failed=$((failed + 1)); echo "  FAIL    no routing was dumped"; }
BOFH=/usr/share/games/fortunes/bofh-excuses
[ -f "$BOFH" ] && echo "  info    unseen text ($BOFH): $("$MOEKIT" perplexity --fortunes --model "$MODEL" --file "$BOFH" | awk '{print $2}') bits per byte"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
