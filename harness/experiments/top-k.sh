#!/bin/sh
# top-k.sh: top-k at inference. The demo model (trained at top-2) runs with k = 1 .. E
# routed experts per token (moekit --top-k): held-out bits per byte, tokens/s and routing
# entropy, per language. C only, no training. SIZE=smoke: k = 1, 2, E on 5 fortunes per language.
# Usage (make experiment NAME=top-k): OUT=dir sh harness/experiments/top-k.sh
HERE=$(dirname "$0")
. "$HERE/common.sh"
LOAD0=$(loadavg)
E=$(num_experts "$MODEL")
K_TRAINED=$(sed -n 's/.*"num_experts_per_tok"[^0-9]*\([0-9]*\).*/\1/p' "$MODEL/config.json")
texts=$CORPUS ks=$(seq 1 "$E")
if [ "$SIZE" = smoke ]; then
    texts=$OUT/smoke-corpus ks="1 2 $E"
    smoke_corpus "$CORPUS" "$texts" 5
fi
LANGS=$(langs "$texts")
t_start=$(now)

# measure K LANG: one line "k lang bpb scored_bytes fed_tokens seconds load_H mixing_H"
measure() {
    f=$texts/heldout-$2.txt
    # CPU seconds (user + system) of the run: unlike wall time, not stretched by other
    # jobs waiting for the same cores. `times` runs in this shell (measure is no subshell).
    times >"$OUT/times0.txt"
    line=$("$MOEKIT" perplexity --fortunes --model "$MODEL" --file "$f" --top-k "$1")
    times >"$OUT/times.txt"
    t0=$(cpu_seconds "$OUT/times0.txt" %.3f) t1=$(cpu_seconds "$OUT/times.txt" %.3f)
    "$MOEKIT" perplexity --fortunes --model "$MODEL" --file "$f" --top-k "$1" \
        --dump-routing "$OUT/dump.tsv" >/dev/null
    # fed tokens: each fortune feeds "%\n" + its bytes but the last, one more than it scores
    echo "$line" | awk -v k="$1" -v lang="$2" -v t0="$t0" -v t1="$t1" -v h="$(awk -f "$HERE/entropy.awk" "$OUT/dump.tsv")" \
        '{ gsub(/\(/, ""); printf "%d %s %s %d %d %.3f %s\n", k, lang, $2, $6, $6 + $10, t1 - t0, h }'
    awk -f harness/plot/routing_stats.awk "$OUT/dump.tsv" >"$OUT/counts-k$1-$2.dat"
    rm -f "$OUT/dump.tsv"
}

: >"$OUT/topk.dat"
for k in $ks; do
    for lang in $LANGS; do measure "$k" "$lang" >>"$OUT/topk.dat"; done
    # all languages: bytes-weighted bpb, summed tokens and seconds, entropy of the summed counts
    awk -v k="$k" -v h="$(cat "$OUT"/counts-k"$k"-*.dat | awk -f "$HERE/entropy.awk")" \
        '$1 == k { nll += $3 * $4; b += $4; tok += $5; s += $6; mix += $8 * $5 }
         END { split(h, hh, " "); printf "%d all %.4f %d %d %.3f %s %.4f\n", k, nll / b, b, tok, s, hh[1], mix / tok }' \
        "$OUT/topk.dat" >>"$OUT/topk.dat"
done
t_end=$(now)
times >"$OUT/times.txt"

# wide tables for gnuplot: one column per language, one row per k
COLS="$LANGS all"
wide() { # FIELD (3 bpb, 5/6 tokens/s, 7 load H)
    for k in $ks; do
        awk -v k="$k" -v f="$1" -v cols="$COLS" '$1 == k { v[$2] = (f == 0 ? $5 / $6 : $f) }
            END { n = split(cols, c, " "); line = k; for (i = 1; i <= n; i++) line = line " " v[c[i]]; print line }' "$OUT/topk.dat"
    done
}
wide 3 >"$OUT/bpb.dat"; wide 0 >"$OUT/tps.dat"; wide 7 >"$OUT/loadH.dat"
gnuplot -e "dir='$OUT'; cols='$COLS'; E=$E; kt=$K_TRAINED" "$HERE/top-k.gp"

# table FIELD TITLE: one row per k, one column per language (FIELD as wide's)
table() {
    echo "| k | $(echo $COLS | sed 's/ / | /g') |"
    echo "|---:|$(for c in $COLS; do printf -- '---:|'; done)"
    wide "$1" | awk -v f="$1" '{ line = "| " $1; for (i = 2; i <= NF; i++) line = line " | " sprintf(f == 0 ? "%.0f" : "%.3f", $i); print line " |" }'
}
# at K FIELD: the "all" row's FIELD at k = K
at() { awk -v k="$1" -v f="$2" '$1 == k && $2 == "all" { print $f }' "$OUT/topk.dat"; }
best_k=$(awk '$2 == "all" && (b == "" || $3 < b) { b = $3; k = $1 } END { print k }' "$OUT/topk.dat")
pct() { awk -v a="$(at "$1" 3)" -v b="$(at "$K_TRAINED" 3)" 'BEGIN { printf "%+.1f%%", 100 * (a - b) / b }'; }
tps() { awk -v k="$1" '$1 == k && $2 == "all" { printf "%.0f", $5 / $6 }' "$OUT/topk.dat"; }

{
header "Experiment: top-k at inference"
cat <<MD
The model in \`$MODEL\` was trained to route each token to k = $K_TRAINED of its E = $E
experts (config \`num_experts_per_tok\`). \`moekit --top-k K\` runs the same weights with
K experts per token instead, re-normalising the K chosen routing weights to sum to 1
(\`norm_topk_prob\`, as Qwen3-MoE's \`Qwen3MoeSparseMoeBlock\` in transformers does). This
experiment scores the held-out fortunes of \`$texts\` (\`moekit perplexity --fortunes\`,
the demo model card's method) for k in $(echo $ks | sed 's/ /, /g').

## Held-out bits per byte

$(table 3)

"all" weights every scored byte equally. Lowest "all": k = $best_k ($(at "$best_k" 3)); at the
trained k = $K_TRAINED: $(at "$K_TRAINED" 3); at k = 1: $(at 1 3); at k = E = $E: $(at "$E" 3).

![top-k](top-k.png)

## Tokens/s

Input tokens (bytes) fed per CPU second (user + system, the shell's \`times\`) of one
\`moekit perplexity\` run, the model's loading included, one thread (OMP_NUM_THREADS=1).
CPU time rather than wall time, so that other jobs on the machine do not stretch it
(they still share its caches and memory bandwidth):

$(table 0)

All languages: $(tps 1) tokens/s at k = 1, $(tps "$K_TRAINED") at k = $K_TRAINED, $(tps "$E") at k = $E.
Only the expert FFNs' work grows with k: attention, the dense layer and the LM head cost
the same at every k.

## Routing entropy

Load entropy (bits): per MoE layer, the entropy of the experts' shares of the layer's
top-k assignments, averaged over the layers. log2 E = $(awk -v e="$E" 'BEGIN { printf "%.3f", log(e) / log(2) }') is perfectly balanced; at k = E every
expert gets every token, so it is log2 E whatever the router learned.

$(table 7)

Mixing entropy (bits, all languages): per token and layer, the entropy of its k
re-normalised routing weights (0 at k = 1; log2 k if the k weights were equal):
$(awk '$2 == "all" { printf "k = %d: %.3f; ", $1, $8 }' "$OUT/topk.dat" | sed 's/; $/./')

## What to conclude

- The experts and the rest of the network were trained together with k = $K_TRAINED experts
  mixed per token. Fewer experts (k = 1) drop part of a mixture the model was trained on;
  more experts add experts the router ranked low, with small re-normalised weights. Here,
  all languages: k = 1 changes bits per byte by $(pct 1) relative to k = $K_TRAINED, k = $E by
  $(pct "$E"), while k = $E runs at $(awk -v a="$(tps "$E")" -v b="$(tps "$K_TRAINED")" 'BEGIN { printf "%.2f", a / b }') times the tokens/s of k = $K_TRAINED. Whether extra
  experts help is what this table says for this model, not a rule.
- The load entropy rises with k by construction (more slots per token spread the load);
  it is not evidence of a better-balanced router. Balance is a property of the router at
  the trained k (see the balance-losses experiment).

## Measured

Whole run: $(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.0f", b - a }') s wall time, $(cpu_seconds) s of CPU time (user + system, the
budget that matters on an idle machine); load average at the end $(loadavg).
Raw rows (k, language, bpb, scored bytes, fed tokens, seconds, load entropy, mixing
entropy) are in \`topk.dat\`, the routing counts per k and language in \`counts-k*-*.dat\`.
MD
} >"$OUT/README.md"
echo "top-k: $OUT/README.md, $OUT/top-k.png"
