#!/bin/sh
# expert-importance.sh: the demo model with one (layer, expert) switched off at a time
# (moekit --disable-expert L:E: the router never picks it, each token's top-k comes from
# the other experts): the change in held-out bits per byte per language, against the
# expert's load (its share of the layer's top-k assignments, --dump-routing) in the
# unchanged model; Spearman's rank correlation of the two says whether load predicts
# importance. C only, no training. SIZE=smoke: 3 fortunes per language.
# Usage (make experiment NAME=expert-importance): OUT=dir sh harness/experiments/expert-importance.sh
HERE=$(dirname "$0")
. "$HERE/common.sh"
LOAD0=$(loadavg)
JOBS=${JOBS:-2} # moekit runs at once (each one thread): the kit's 2-core budget
E=$(num_experts "$MODEL")
K=$(sed -n 's/.*"num_experts_per_tok"[^0-9]*\([0-9]*\).*/\1/p' "$MODEL/config.json")
texts=$CORPUS
if [ "$SIZE" = smoke ]; then
    texts=$OUT/smoke-corpus
    smoke_corpus "$CORPUS" "$texts" 3
fi
LANGS=$(langs "$texts")
t_start=$(now)

# ppl LANG [moekit flags]: "bpb scored_bytes fortunes" of the held-out fortunes of LANG
ppl() {
    lang=$1; shift
    "$MOEKIT" perplexity --fortunes --model "$MODEL" --file "$texts/heldout-$lang.txt" "$@" |
        awk '{ gsub(/\(/, ""); print $2, $6, $10 }'
}

# the unchanged model: bpb per language, and its routing counts ("layer expert count")
for lang in $LANGS; do
    ppl "$lang" --dump-routing "$OUT/dump.tsv" >"$OUT/base-$lang.txt"
    awk -f harness/plot/routing_stats.awk "$OUT/dump.tsv" >"$OUT/counts-$lang.dat"
done
rm -f "$OUT/dump.tsv"
cat "$OUT"/counts-*.dat >"$OUT/counts-all.dat"
SPARSE=$(awk '{ print $1 }' "$OUT/counts-all.dat" | sort -n | uniq | tr '\n' ' ')

# every (layer, expert) switched off, each language: JOBS runs at a time, one file each.
# times in this shell counts xargs' children once xargs has waited for them.
mkdir -p "$OUT/off"
export MOEKIT MODEL texts OUT
for l in $SPARSE; do for e in $(seq 0 $((E - 1))); do for lang in $LANGS; do
    echo "$l $e $lang"
done; done; done | xargs -P "$JOBS" -n 3 sh -c '
    "$MOEKIT" perplexity --fortunes --model "$MODEL" --file "$texts/heldout-$2.txt" \
        --disable-expert "$0:$1" >"$OUT/off/$0-$1-$2.txt"' ||
    { echo "expert-importance: a moekit perplexity run failed" >&2; exit 1; }
t_end=$(now)
times >"$OUT/times.txt"

# importance.dat: "layer expert lang share delta_bpb", one line per (layer, expert, lang),
# lang "all" = every scored byte weighted equally (delta of the bytes-weighted bpb)
for lang in $LANGS; do
    awk -v E="$E" -f harness/plot/shares.awk "$OUT/counts-$lang.dat" >"$OUT/share-$lang.dat"
    read -r b0 bytes _ <"$OUT/base-$lang.txt"
    for l in $SPARSE; do for e in $(seq 0 $((E - 1))); do
        awk -v l="$l" -v e="$e" -v lang="$lang" -v b0="$b0" -v bytes="$bytes" -v f="$OUT/share-$lang.dat" '
            { gsub(/\(/, ""); bpb = $2 }
            END { while ((getline line < f) > 0) { split(line, x, " "); if (x[1] == l) s = x[e + 2] }
                  printf "%d %d %s %.6f %.4f %d\n", l, e, lang, s, bpb - b0, bytes }' "$OUT/off/$l-$e-$lang.txt"
    done; done
done >"$OUT/importance.dat"
awk -v E="$E" -f harness/plot/shares.awk "$OUT/counts-all.dat" >"$OUT/share-all.dat"
awk -v f="$OUT/share-all.dat" '{ d[$1 " " $2] += $5 * $6; b[$1 " " $2] += $6 }
    END { while ((getline line < f) > 0) { n = split(line, x, " "); for (e = 2; e <= n; e++) s[x[1] " " e - 2] = x[e] }
          for (k in d) { split(k, le, " "); printf "%d %d all %.6f %.4f %d\n", le[1], le[2], s[k], d[k] / b[k], b[k] } }' \
    "$OUT/importance.dat" | sort -n -k1,1 -k2,2 >>"$OUT/importance.dat"

# delta-LANG.dat: the delta matrix in shares.awk's layout (layer, then one column per expert)
COLS="$LANGS all"
for lang in $COLS; do
    awk -v lang="$lang" -v E="$E" '$3 == lang { d[$1, $2] = $5; if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 } }
        END { for (i = 0; i < n; i++) { line = order[i]; for (e = 0; e < E; e++) line = line " " d[order[i], e]; print line } }' \
        "$OUT/importance.dat" >"$OUT/delta-$lang.dat"
done
# rho LANG [LAYER]: Spearman's rho of load share and delta bpb over the (layer, expert) pairs
rho() { awk -v lang="$1" -v l="${2:-}" '$3 == lang && (l == "" || $1 == l) { print $4, $5 }' "$OUT/importance.dat" |
    awk -f "$HERE/spearman.awk" | cut -d' ' -f1; }
DMAX=$(awk '{ print ($5 < 0 ? -$5 : $5) }' "$OUT/importance.dat" | sort -g | tail -1)
gnuplot -e "dir='$OUT'; cols='$COLS'; E=$E; dmax=$DMAX" "$HERE/expert-importance.gp"
gnuplot -e "dir='$OUT'; cols='$COLS'; layers='$SPARSE'; E=$E" "$HERE/expert-importance-scatter.gp"

# matrix FILE: a shares.awk-layout matrix as a Markdown table, one row per MoE layer
matrix() {
    echo "| layer | $(seq 0 $((E - 1)) | tr '\n' ' ' | sed 's/ $//; s/ / | /g') |"
    echo "|---:|$(for e in $(seq 1 "$E"); do printf -- '---:|'; done)"
    awk '{ line = "| " $1; for (i = 2; i <= NF; i++) line = line " | " sprintf("%.3f", $i); print line " |" }' "$1"
}
# top LANG: "layer:expert delta share" of the most important expert for LANG
top() { awk -v lang="$1" '$3 == lang && (m == "" || $5 > m) { m = $5; t = $1 ":" $2 " " $5 " " $4 } END { print t }' "$OUT/importance.dat"; }
# light LANG: the same among the experts with less than the balanced share 1/E
light() { awk -v lang="$1" -v E="$E" '$3 == lang && $4 < 1 / E && (m == "" || $5 > m) { m = $5; t = $1 ":" $2 " " $5 " " $4 } END { print t }' "$OUT/importance.dat"; }
field() { echo "$1" | cut -d' ' -f"$2"; }
# per_lang L:E: "LANG +delta (load share)" of that expert in each language
per_lang() { echo "$1" | awk -F: -v f="$OUT/importance.dat" '{ l = $1; e = $2 }
    END { while ((getline line < f) > 0) { split(line, x, " ")
              if (x[1] == l && x[2] == e && x[3] != "all") out = out sprintf("%s%s %+.3f (load %.3f)", out == "" ? "" : ", ", x[3], x[5], x[4]) }
          print out }'; }
base_all=$(cat "$OUT"/base-*.txt | awk '{ n += $1 * $2; b += $2 } END { printf "%.4f", n / b }')
base() { if [ "$1" = all ]; then echo "$base_all"; else cut -d' ' -f1 "$OUT/base-$1.txt"; fi; }
n_pairs=$(awk '$3 == "all"' "$OUT/importance.dat" | wc -l)
n_runs=$(ls "$OUT/off" | wc -l)
# negligible: experts whose removal changes the all-language bpb by less than 0.01
n_small=$(awk '$3 == "all" && $5 < 0.01' "$OUT/importance.dat" | wc -l)
# specialists: below the balanced load, yet +0.05 bpb or more in some language when off
n_spec=$(awk -v E="$E" '$3 != "all" && $4 < 1 / E && $5 >= 0.05 { print $1, $2 }' "$OUT/importance.dat" | sort -u | wc -l)
verdict() { awk -v r="$1" 'BEGIN {
    if (r == "nan") print "undefined (a constant side)"
    else if (r >= 0.7) print "a strong rank correlation: the experts that take more tokens are, on the whole, the ones whose loss costs more, so load is a good first guess of importance"
    else if (r >= 0.4) print "a moderate rank correlation: busier experts tend to matter more, with many exceptions"
    else if (r > -0.4) print "a weak rank correlation: load says little about which experts matter"
    else print "a negative rank correlation: the busier experts matter less" }'; }

{
header "Experiment: which experts matter? Importance against load"
cat <<MD
The demo model (\`$MODEL\`: E = $E experts, k = $K per token, MoE layers $(echo $SPARSE | sed 's/ /, /g')) is
run with one expert switched off at a time: \`moekit perplexity --fortunes
--disable-expert L:E\` masks that expert in its layer's router, so every token's top-$K
comes from the other $((E - 1)) experts (the same weights otherwise, nothing retrained).
**Importance** of an expert, per language: held-out bits per byte with it off minus the
unchanged model's, on the held-out fortunes of \`$texts\` (the top-k experiment's text
and method). **Load**: the expert's share of its layer's top-$K assignments in the
unchanged model (\`--dump-routing\`, counted by \`harness/plot/routing_stats.awk\`, as the
top-k experiment does); 1/E = $(awk -v e="$E" 'BEGIN { printf "%.3f", 1 / e }') is the balanced share. $n_pairs experts x
$(echo $LANGS | wc -w) languages = $n_runs runs, $JOBS at a time.

Does load predict importance? The question is answered by **Spearman's rank
correlation** rho of load share and importance over the $n_pairs (layer, expert) pairs
(\`harness/experiments/spearman.awk\`: the Pearson correlation of the ranks, ties at their
mean rank): +1 if the busiest expert is always the one that matters most, 0 if the
order of load says nothing about the order of importance.

## Load against importance, per language

| language | bpb, unchanged | rho, all layers | $(for l in $SPARSE; do printf 'rho, layer %s | ' "$l"; done)most important expert (L:E): delta bpb, load | most important with load < 1/E: delta bpb, load |
|---|---:|---:|$(for l in $SPARSE; do printf -- '---:|'; done)---|---|
$(for lang in $COLS; do
    t=$(top "$lang") w=$(light "$lang")
    printf '| %s | %s | %s | ' "$lang" "$(base "$lang")" "$(rho "$lang")"
    for l in $SPARSE; do printf '%s | ' "$(rho "$lang" "$l")"; done
    printf '%s: %+.3f, %.3f | %s: %+.3f, %.3f |\n' "$(field "$t" 1)" "$(field "$t" 2)" "$(field "$t" 3)" \
        "$(field "$w" 1)" "$(field "$w" 2)" "$(field "$w" 3)"
done)

Per-layer rho are over $E points each: read their sign, not their second decimal.

![importance and load heatmaps](expert-importance-heatmaps.png)

Top row: the change in held-out bits per byte when that (layer, expert) is switched off
(red: the model gets worse; white: no change; blue: better without it). Bottom row: the
same expert's load in the unchanged model (white is the balanced 1/E, red over-used,
blue under-used). Each column is one language; "all" weights every scored byte equally.

![load against importance](expert-importance-scatter.png)

One point per (layer, expert): load share (x) against importance (y). A point high up
and left of the dashed 1/E line is an expert that few tokens use but that costs a lot
to lose.

## All languages: importance (delta bits per byte), layer x expert

$(matrix "$OUT/delta-all.dat")

## All languages: load share, layer x expert

$(matrix "$OUT/share-all.dat")

## What to conclude

- All languages, rho = $(rho all) over the $n_pairs experts: $(verdict "$(rho all)").
  Load is not a substitute for measuring importance: $n_small of the $n_pairs experts change the
  all-language bits per byte by less than 0.01 when switched off, while the most important one,
  $(field "$(top all)" 1), costs $(printf '%+.3f at a load of %.3f' "$(field "$(top all)" 2)" "$(field "$(top all)" 3)").
- $n_spec (layer, expert) pairs have less than the balanced load 1/E and still cost 0.05 bits
  per byte or more in at least one language when switched off. Per language, the most important expert with less than
  the balanced load: $(for lang in $LANGS; do w=$(light "$lang"); printf '%s %s (%+.3f at a load of %.3f); ' "$lang" "$(field "$w" 1)" "$(field "$w" 2)" "$(field "$w" 3)"; done | sed 's/; $/./')
  A rarely chosen expert can be a specialist: few tokens visit it, but for those tokens
  the other experts are no substitute. Over all languages, the most important expert
  below the balanced load is $(field "$(light all)" 1) (load $(printf '%.3f' "$(field "$(light all)" 3)"), $(printf '%+.3f' "$(field "$(light all)" 2)") bits per byte); per language
  it costs $(per_lang "$(field "$(light all)" 1)"). Pruning the least-loaded
  experts by their average load is a guess to check against held-out quality per
  language, not only on average.
- Importance here is measured with the expert removed and the router left as trained:
  each token falls back to its next-ranked expert. A model fine-tuned after pruning
  could recover part of the loss; this measures the model as it is.
- One model, one training seed, $(awk '{ n += $3 } END { print n }' "$OUT"/base-*.txt) held-out fortunes in $(echo $LANGS | wc -w) languages: the
  signs and the large entries are the result, not the third decimal.

## Measured

Whole run: $(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.0f", b - a }') s wall time with $JOBS runs at a time, $(cpu_seconds) s of CPU time (user + system); load
average at the end $(loadavg). Raw rows (layer, expert, language, load share, delta bpb,
scored bytes) are in \`importance.dat\`, each run's output in \`off/L-E-LANG.txt\`, the
unchanged model's routing counts in \`counts-LANG.dat\`.
MD
} >"$OUT/README.md"
echo "expert-importance: $OUT/README.md, $OUT/expert-importance-heatmaps.png, $OUT/expert-importance-scatter.png"
