#!/bin/sh
# demo_model_check.sh [MOEKIT] [MODEL]: the demo model's held-out bits per byte, computed
# by the C model (`moekit perplexity --fortunes`, train.py's protocol), equal PyTorch's
# (MODEL/heldout_bpb.json, written by train.py) to 3 decimals, for every language; and every
# language is below 2.4.
# Slow with the naive lesson 01 matmul (about a minute), so CI runs it, not `make test`.
MOEKIT=${1:-build/moekit} MODEL=${2:-data/model}
passed=0 failed=0
for lang in en de es it ru; do
    py=$(awk -v l="\"$lang\"" '$1 == l":" { f = 1 } f && /"bpb"/ { gsub(/[",]/, "", $2); print $2; exit }' \
        "$MODEL/heldout_bpb.json")
    c=$("$MOEKIT" perplexity --fortunes --model "$MODEL" --file "data/corpus/heldout-$lang.txt" | awk '{print $2}')
    if awk -v a="$c" -v b="$py" 'BEGIN { d = a - b; exit !(a != "" && d < 0.0005 && d > -0.0005 && a < 2.4) }'; then
        passed=$((passed + 1)); echo "  ok      $lang: C $c, PyTorch $py bits per byte"
    else
        failed=$((failed + 1)); echo "  FAIL    $lang: C '$c', PyTorch '$py' bits per byte"
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
