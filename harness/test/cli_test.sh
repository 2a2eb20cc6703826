# cli_test.sh: the moekit CLI, sourced by kit_test.sh (which defines ok, bad, $LOG) with
# CLI set to the binary built from the solutions.
#   - each Hugging Face test checkpoint gives the reference's greedy continuation;
#   - logits files have T x vocab floats; the routing dump and controls do what they say;
#   - bad command lines and bad model directories: one clear line, non-zero exit, no crash;
#   - text through a model directory's tokenizer.json: the demo model with a tokenizer of
#     the 256 bytes (data/tokenizers/bytes) writes what it writes byte by byte, streamed
#     text equals the decode of the ids, generation stops at an end-of-text id, and bad
#     prompts, tokenizers and chat models are named.

M=data/models/qwen3-moe-tiny

# expect_error NAME EXPECTED-SUBSTRING ARGS...: exit status 1 or 2 and the message on stderr
expect_error() {
    name=$1 want=$2
    shift 2
    "$CLI" "$@" >"$LOG/cli.out" 2>"$LOG/cli.err"
    rc=$?
    if { [ $rc -eq 1 ] || [ $rc -eq 2 ]; } && grep -qF -- "$want" "$LOG/cli.err" &&
        [ "$(wc -l <"$LOG/cli.err")" -le 2 ]; then
        ok "cli rejects $name: $(head -1 "$LOG/cli.err")"
    else
        bad "cli $name: exit $rc, expected a message containing \"$want\"" "$LOG/cli.err"
    fi
}

for dir in data/models/*/; do
    dir=${dir%/}
    want=$(cat "$dir/expected_greedy.txt")
    got=$("$CLI" generate --model "$dir" --ids "$(cat "$dir/prompt_ids.txt")" --greedy \
        -n "$(echo "$want" | wc -w)" --print-ids 2>"$LOG/cli.err")
    if [ "$got" = "$want" ]; then ok "cli generate --greedy $dir: $got"
    else bad "cli generate --greedy $dir: got '$got', expected '$want'" "$LOG/cli.err"; fi
    # the typed model with each matrix in its file's type (bf16 in place for the bf16 one)
    got=$("$CLI" generate --model "$dir" --ids "$(cat "$dir/prompt_ids.txt")" --greedy \
        -n "$(echo "$want" | wc -w)" --print-ids --weights auto 2>"$LOG/cli.err")
    if [ "$got" = "$want" ]; then ok "cli generate --greedy --weights auto $dir: the same ids"
    else bad "cli generate --weights auto $dir: got '$got', expected '$want'" "$LOG/cli.err"; fi
done
expect_error "an unknown --weights type" "--weights q3: not a type" generate --model "$M" \
    --ids 1 --weights q3

ids=$(cat "$M/prompt_ids.txt")
T=$(echo "$ids" | wc -w)
if "$CLI" logits --model "$M" --ids "$ids" --out "$LOG/logits.bin" 2>"$LOG/cli.err" &&
    [ "$(wc -c <"$LOG/logits.bin")" -eq $((T * 256 * 4)) ]; then
    ok "cli logits: $T x 256 float32 written"
else bad "cli logits" "$LOG/cli.err"; fi

# routing: 2 sparse layers (layer 0 is dense) x T tokens x k=2 rows, plus the header
"$CLI" logits --model "$M" --ids "$ids" --out "$LOG/l.bin" --dump-routing "$LOG/r.tsv" 2>/dev/null
rows=$(($(wc -l <"$LOG/r.tsv") - 1))
if [ "$(head -1 "$LOG/r.tsv")" = "$(printf 'pos\ttoken\tlayer\tslot\texpert\tweight')" ] &&
    [ $rows -eq $((2 * T * 2)) ]; then ok "cli --dump-routing: $rows rows (2 sparse layers x $T tokens x k=2)"
else bad "cli --dump-routing: $rows rows" "$LOG/r.tsv"; fi

"$CLI" logits --model "$M" --ids "$ids" --out "$LOG/l.bin" --dump-routing "$LOG/r1.tsv" \
    --top-k 1 --disable-expert 1:0 --disable-expert 2:5 2>/dev/null
bad_rows=$(awk -F'\t' 'NR > 1 && ($4 != 0 || ($3 == 1 && $5 == 0) || ($3 == 2 && $5 == 5))' "$LOG/r1.tsv" | wc -l)
rows=$(($(wc -l <"$LOG/r1.tsv") - 1))
if [ $rows -eq $((2 * T)) ] && [ "$bad_rows" -eq 0 ]; then
    ok "cli --top-k 1 --disable-expert 1:0 2:5: one expert per token, never a disabled one"
else bad "cli routing controls: $rows rows, $bad_rows violate them" "$LOG/r1.tsv"; fi

mkdir -p "$LOG/empty"
expect_error "no command" "no command given"
expect_error "an unknown command" "unknown command 'fly'" fly
expect_error "an unknown flag" "unknown option '--fast'" generate --model "$M" --fast
expect_error "a flag without its value" "-n needs a value" generate --model "$M" --ids 1 -n
expect_error "a negative count" "-n: -5 is out of range" generate --model "$M" --ids 1 -n -5
expect_error "a non-numeric count" "-n: 'ten' is not a whole number" generate --model "$M" --ids 1 -n ten
expect_error "an overflowing count" "out of range" generate --model "$M" --ids 1 -n 99999999999999999999
expect_error "a bad temperature" "--temperature: 'hot' is not a number" generate --model "$M" --ids 1 --temperature hot
expect_error "top-p above 1" "--top-p: 1.5 is out of range" generate --model "$M" --ids 1 --top-p 1.5
expect_error "a token id beyond the vocabulary" "'256' is not a token id 0..255" generate --model "$M" --ids "1 256"
expect_error "a non-numeric id" "'x7' is not a token id" logits --model "$M" --ids "1 x7" --out "$LOG/x.bin"
expect_error "empty ids" "no token ids given" logits --model "$M" --ids " " --out "$LOG/x.bin"
expect_error "a missing --model" "--model DIR is required" generate --ids 1
expect_error "both --prompt and --ids" "exactly one of --prompt" generate --model "$M" --ids 1 --prompt hi
expect_error "a model dir without files" "config.json: cannot open it" generate --model "$LOG/empty" --ids 1
expect_error "a text prompt for a non-byte-level model" "needs a byte-level model" generate --model data/models/qwen2-moe-tiny --prompt hi
expect_error "a prompt longer than the context" "more than the context" generate --model "$M" --ctx 4 --prompt "hello world"
expect_error "a bad --disable-expert" "must be LAYER:EXPERT" generate --model "$M" --ids 1 --disable-expert 7
expect_error "a dense layer in --disable-expert" "no expert 1 in a sparse layer 0" generate --model "$M" --ids 1 --disable-expert 0:1
expect_error "--top-k above the experts" "--top-k 9 is more than the model's 8 experts" generate --model "$M" --ids 1 --top-k 9
expect_error "a missing perplexity file" "cannot open it" perplexity --model "$M" --file "$LOG/nope.txt"
expect_error "a negative --capacity-factor" "--capacity-factor: -1 is out of range" perplexity --model "$M" --file "$LOG/nope.txt" --capacity-factor -1
expect_error "a non-numeric --capacity-factor" "--capacity-factor: 'lots' is not a number" generate --model "$M" --ids 1 --capacity-factor lots
expect_error "a --capacity-factor of nan" "--capacity-factor: 'nan' is not a number" logits --model "$M" --ids 1 --out "$LOG/x.bin" --capacity-factor nan

# every option that takes a value, given last without one: exactly one line, naming it
missing=""
for cmd_flag in "generate --model" "generate --prompt" "generate --ids" "generate -n" \
    "generate --temperature" "generate --top-p" "generate --seed" "generate --top-k" \
    "generate --ctx" "generate --disable-expert" "generate --dump-routing" "logits --out" \
    "perplexity --file" "perplexity --capacity-factor" "tokenize --model" "tokenize --file" \
    "chat --system"; do
    set -- $cmd_flag
    "$CLI" "$1" "$2" >"$LOG/cli.out" 2>"$LOG/cli.err"
    rc=$?
    [ $rc -eq 2 ] && [ "$(cat "$LOG/cli.err")" = "moekit: $2 needs a value" ] ||
        missing="$missing $1 $2 (exit $rc: $(head -2 "$LOG/cli.err" | tr '\n' '|'))"
done
if [ -z "$missing" ]; then ok "cli: each of 17 options without its value: one line 'OPTION needs a value'"
else bad "cli options without their value:$missing"; fi

# generate stops at the context: -n past it exits 0 with ctx - prompt tokens and one note
"$CLI" generate --model "$M" --ids "1 2 3" --ctx 16 -n 100 --greedy --print-ids \
    >"$LOG/cli.out" 2>"$LOG/cli.err"
rc=$? got=$(wc -w <"$LOG/cli.out") notes=$(grep -c "stops at the context" "$LOG/cli.err")
if [ $rc -eq 0 ] && [ "$got" -eq 13 ] && [ "$notes" -eq 1 ] && [ "$(wc -l <"$LOG/cli.err")" -eq 2 ]; then
    ok "cli generate -n 100 past --ctx 16: 13 ids after the 3 of the prompt, one note: $(head -1 "$LOG/cli.err")"
else bad "cli generate past the context: exit $rc, $got ids (expected 13), $notes notes" "$LOG/cli.err"; fi
if "$CLI" generate --help | grep -q "stops at the context"; then ok "cli generate --help documents the stop at the context"
else bad "cli generate --help does not say that generation stops at the context"; fi

# perplexity scores plain text whole: 300 bytes through windows of 64 (the model's
# max_position_embeddings) every 32 bytes: 299 bytes scored, in 9 windows
awk 'BEGIN { for (i = 0; i < 30; i++) printf "line %03d.\n", i }' >"$LOG/plain.txt"
"$CLI" perplexity --model "$M" --file "$LOG/plain.txt" >"$LOG/cli.out" 2>"$LOG/cli.err"
if grep -qF "(299 bytes scored in 9 windows of 64, stride 32)" "$LOG/cli.out"; then
    ok "cli perplexity of 300 bytes of plain text, context 64: $(cut -d' ' -f2- "$LOG/cli.out")"
else bad "cli perplexity of plain text longer than the context: $(cat "$LOG/cli.out")" "$LOG/cli.err"; fi

# ... and a text shorter than the context is one window: the bits per byte that the
# logits of one prefill give (-ln softmax of each next byte, od + awk)
printf 'The secret of a happy life is short.\n' >"$LOG/short.txt"
sliding=$("$CLI" perplexity --model "$M" --file "$LOG/short.txt" 2>"$LOG/cli.err" | awk '{ print $2 }')
ids=$(od -An -v -tu1 "$LOG/short.txt" | tr -s ' \n' '  ')
"$CLI" logits --model "$M" --ids "$(echo $ids | awk '{ $NF = ""; print }')" --out "$LOG/short.bin" 2>>"$LOG/cli.err"
single=$(od -An -v -f -w1024 "$LOG/short.bin" | awk -v ids="$ids" '
    BEGIN { n = split(ids, id, " ") }
    { max = $1; for (i = 2; i <= NF; i++) if ($i > max) max = $i
      s = 0; for (i = 1; i <= NF; i++) s += exp($i - max)
      nll += log(s) + max - $(id[NR + 1] + 1) }
    END { printf "%.4f", nll / (n - 1) / log(2) }')
if [ -n "$sliding" ] && awk -v a="$sliding" -v b="$single" 'BEGIN { exit !(a - b <= 0.0001 && b - a <= 0.0001) }'; then
    ok "cli perplexity of a text shorter than the context = one prefill's logits: $sliding bits per byte"
else bad "cli perplexity of a short text: $sliding bits per byte, one prefill's logits give $single" "$LOG/cli.err"; fi

# --capacity-factor (lesson 07's capacity): F = E / k = 4 lets an expert take every token
# of a forward call, so nothing is dropped and the bpb is the dropless one; F = 0.5 drops,
# and the count on stderr is the routing dump's assignments to expert -1
f=$LOG/capacity.txt
awk '/^%$/ { if (++c >= 5) exit } { print }' data/corpus/heldout-en.txt >"$f"
: >"$LOG/capacity.err"
cap() { "$CLI" perplexity --fortunes --model data/model --file "$f" "$@" 2>>"$LOG/capacity.err" | awk '{ print $2 }'; }
none=$(cap) four=$(cap --capacity-factor 4) half=$(cap --capacity-factor 0.5 --dump-routing "$LOG/capacity.tsv")
said=$(sed -n 's/.*--capacity-factor 0.5: \([0-9]*\) of .*/\1/p' "$LOG/capacity.err")
zero=$(grep -c -- "--capacity-factor 4: 0 of [1-9][0-9]* (token, expert) assignments dropped" "$LOG/capacity.err")
dumped=$(awk -F'\t' 'NR > 1 && $5 == -1' "$LOG/capacity.tsv" | wc -l)
if [ -n "$none" ] && [ "$four" = "$none" ] && [ "$zero" -eq 1 ] && [ -n "$half" ] &&
    [ "$half" != "$none" ] && [ "${said:-0}" -gt 0 ] && [ "$said" -eq "$dumped" ]; then
    ok "cli --capacity-factor: 4 (= E/k) drops 0 assignments, bpb $four as dropless; 0.5 drops $said (the dump's -1s), bpb $half"
else bad "cli --capacity-factor: bpb $none dropless, $four at 4, $half at 0.5; 0.5 said '$said' dropped, the dump has $dumped" "$LOG/capacity.err"; fi

# ---- text through tokenizer.json ---------------------------------------------------------
# The demo model with a tokenizer.json of the 256 bytes (id = byte, no merges): text in and
# out goes through the whole tokenizer (NFC, the split regex, ByteLevel, streaming decode)
# and must give what the byte-level path gives.
D=$LOG/demo-tokenizer
mkdir -p "$D"
cp data/model/config.json data/model/model.safetensors data/tokenizers/bytes/tokenizer.json "$D/"
same=0
for p in "The secret of a happy life is" "Der Sinn des Lebens ist" "Привет, как дела? Я" "¿Qué es la vida?"; do
    a=$("$CLI" generate --model "$D" --prompt "$p" -n 80 --greedy 2>"$LOG/cli.err")
    b=$("$CLI" generate --model data/model --prompt "$p" -n 80 --greedy 2>>"$LOG/cli.err")
    [ -n "$a" ] && [ "$a" = "$b" ] && same=$((same + 1))
done
if [ $same -eq 4 ]; then ok "cli generate --prompt through tokenizer.json (the demo model, a tokenizer of the 256 bytes): the same text as byte by byte, 4 prompts in 4 languages"
else bad "cli generate through tokenizer.json: $same of 4 prompts give the byte-level path's text" "$LOG/cli.err"; fi

# streamed text = the decode of the ids, here a continuation that stops inside a character
# (Cyrillic letters are two bytes: the first -n from 50 on whose last token is a first byte)
p="Привет, как дела? Я"
cut=50
while [ $cut -lt 80 ]; do
    "$CLI" generate --model "$D" --prompt "$p" -n $cut --greedy >"$LOG/stream.txt" 2>"$LOG/cli.err"
    [ "$(tail -c 4 "$LOG/stream.txt" | od -An -tx1 | tr -d ' \n')" = efbfbd0a ] && break
    cut=$((cut + 1))
done
ids=$("$CLI" generate --model "$D" --prompt "$p" -n $cut --greedy --print-ids 2>>"$LOG/cli.err")
prompt_ids=$(printf '%s' "$p" | "$CLI" tokenize --model "$D" 2>>"$LOG/cli.err")
echo "[[$(echo $prompt_ids $ids | tr ' ' ',')]]" >"$LOG/stream_ids.json"
"$CLI" tokenize --model "$D" --json --decode --file "$LOG/stream_ids.json" >"$LOG/stream.json" 2>>"$LOG/cli.err"
want=$(sed 's/^\["//; s/"\]$//' "$LOG/stream.json")
got=$(cat "$LOG/stream.txt")
if [ $cut -lt 80 ] && [ -n "$got" ] && [ "$got" = "$want" ]; then
    ok "cli generate -n $cut: streamed text = the decode of prompt + ids ($(printf '%s' "$got" | wc -c) bytes, the cut character at the end as U+FFFD)"
else
    bad "cli generate -n $cut: streamed text differs from the decode of its ids, or no -n 50..79 ends inside a character: '$got' vs '$want'" "$LOG/cli.err"
fi

# generation stops at an end-of-text id of generation_config.json: here 'e' (101) in the
# demo model's tokenizer of bytes, so the text is the unstopped one cut before its first 'e'
p="The secret of a happy life is"
full=$("$CLI" generate --model "$D" --prompt "$p" -n 80 --greedy 2>/dev/null)
printf '{"eos_token_id": [101]}\n' >"$D/generation_config.json"
"$CLI" generate --model "$D" --prompt "$p" -n 80 --greedy >"$LOG/eos.txt" 2>"$LOG/cli.err"
rest=${full#"$p"}
want="$p${rest%%e*}"
if [ "$(cat "$LOG/eos.txt")" = "$want" ] && grep -q "stopped at end-of-text id 101" "$LOG/cli.err"; then
    ok "cli generate stops at generation_config.json's eos_token_id (101, 'e'): $(($(printf '%s' "$want" | wc -c) - ${#p})) bytes, then the note"
else bad "cli generate does not stop at eos_token_id 101: '$(cat "$LOG/eos.txt")', expected '$want'" "$LOG/cli.err"; fi
rm "$D/generation_config.json"

mkdir -p "$LOG/tok-bad" "$LOG/tok-wide"
cp "$M/config.json" "$M/model.safetensors" "$LOG/tok-bad/"
cp "$M/config.json" "$M/model.safetensors" data/tokenizers/qwen3-2k/tokenizer.json "$LOG/tok-wide/"
printf '{"model": {"type": "WordPiece"}}' >"$LOG/tok-bad/tokenizer.json"
expect_error "a model directory with an unsupported tokenizer.json" "tok-bad/tokenizer.json: model.type is 'WordPiece'" generate --model "$LOG/tok-bad" --prompt hi
expect_error "a tokenizer with ids past the model's vocabulary" "is past the model's vocab_size 256" generate --model "$LOG/tok-wide" --prompt "Hello world"
expect_error "text out of a model with no tokenizer.json" "has no tokenizer.json and is not byte-level: add --print-ids" generate --model data/models/qwen2-moe-tiny --ids 1
expect_error "a prompt that is not UTF-8" "--prompt: invalid UTF-8 at byte 2" generate --model "$D" --prompt "$(printf 'ab\377')"
expect_error "chat with a tokenizer without <|im_start|>" "has no <|im_start|> and <|im_end|>: not a ChatML (Qwen) model" chat --model "$D"
expect_error "chat without tokenizer.json" "chat: data/models/qwen2-moe-tiny has no tokenizer.json" chat --model data/models/qwen2-moe-tiny
expect_error "tokenize --chat with --decode" "--chat renders conversations; it does not go with --decode" tokenize --model "$D" --chat --decode
expect_error "tokenize without --model" "tokenize: --model DIR is required" tokenize --file x
expect_error "tokenize without tokenizer.json" "tokenizer.json: cannot open it" tokenize --model "$M"
if "$CLI" --help | grep -q "tokenize" && "$CLI" tokenize --help | grep -q -- "--json" &&
    "$CLI" --help | grep -q "chat" && "$CLI" chat --help | grep -q -- "--no-think"; then ok "cli --help, tokenize --help and chat --help document tokenize and chat"
else bad "cli --help, tokenize --help or chat --help says nothing of tokenize or chat"; fi

# sampling: top-k and min-p (the CLI's filters before lesson 08's sample), and
# generation_config.json's defaults under the flags. Top-k 1 and min-p 1 leave only the
# argmax, so at temperature 1.5 they must give the greedy ids; a config that asks for them
# (or for do_sample false) must too; a flag must win over the config.
G=$LOG/gen-config
rm -rf "$G" && mkdir -p "$G" && cp data/model/config.json data/model/model.safetensors "$G/"
gen() { "$CLI" generate --prompt "The secret" -n 40 --print-ids "$@" 2>>"$LOG/sampling.err"; }
: >"$LOG/sampling.err"
greedy=$(gen --model "$G" --greedy)
hot=$(gen --model "$G" --temperature 1.5 --seed 7)
if [ "$(gen --model "$G" --sample-top-k 1 --temperature 1.5 --seed 7)" = "$greedy" ] &&
    [ "$(gen --model "$G" --min-p 1 --temperature 1.5 --seed 7)" = "$greedy" ] &&
    [ "$(gen --model "$G" --sample-top-k 256 --min-p 0 --temperature 1.5 --seed 7)" = "$hot" ] &&
    [ "$hot" != "$greedy" ] && [ "$(gen --model "$G" --min-p 0.3 --temperature 1.5 --seed 7)" != "$hot" ]; then
    ok "cli --sample-top-k 1 and --min-p 1 give the greedy ids at temperature 1.5; top-k = vocab changes nothing; min-p 0.3 changes the sample"
else bad "cli --sample-top-k / --min-p: not the greedy ids, or a filter that does nothing changed the sample" "$LOG/sampling.err"; fi
printf '{"temperature": 1.5, "top_k": 1, "top_p": 0.9}\n' >"$G/generation_config.json"
if [ "$(gen --model "$G" --seed 7)" = "$greedy" ] &&
    grep -q "says: temperature 1.5, top_p 0.9, top_k 1, min_p 0" "$LOG/sampling.err" &&
    [ "$(gen --model "$G" --sample-top-k 0 --top-p 0.95 --seed 7)" = "$hot" ]; then
    ok "cli generate takes temperature, top_p and top_k from generation_config.json (top_k 1: the greedy ids, and a note), and --sample-top-k 0 --top-p 0.95 override them"
else bad "cli generate and generation_config.json's sampling defaults" "$LOG/sampling.err"; fi
printf '{"do_sample": false, "temperature": 1.5}\n' >"$G/generation_config.json"
if [ "$(gen --model "$G" --seed 7)" = "$greedy" ] && [ "$(gen --model "$G" --temperature 1.5 --seed 7)" = "$hot" ]; then
    ok "cli generate: generation_config.json's do_sample false is greedy; --temperature overrides it"
else bad "cli generate: do_sample false is not greedy, or a flag does not override it" "$LOG/sampling.err"; fi
printf '{"top_k": "20"}\n' >"$G/generation_config.json"
expect_error "a generation_config.json top_k that is no number" "generation_config.json: top_k must be a whole number from 0 to" generate --model "$G" --prompt hi
printf '{"min_p": 2}\n' >"$G/generation_config.json"
expect_error "a generation_config.json min_p past 1 (chat)" "generation_config.json: min_p must be a number from 0 to 1" chat --model "$G"
expect_error "--sample-top-k -1" "--sample-top-k" generate --model data/model --prompt hi --sample-top-k -1
