#!/bin/sh
# balance-losses.sh: the load-balancing methods compared. The demo model's architecture is
# trained five times, identical but for train.py --balance: none, pooled (Hugging Face),
# per-layer (Switch / ST-MoE), global-batch (Qwen3) and bias (DeepSeek-V3's
# auxiliary-loss-free balancing); then per-layer load, dead experts, held-out bits per
# byte and the routing heatmaps side by side. Two runs at a time (one ATen thread each).
# SIZE=smoke: 6 steps each, 3 held-out fortunes per language.
# Usage (make experiment NAME=balance-losses): OUT=dir sh harness/experiments/balance-losses.sh
HERE=$(dirname "$0")
. "$HERE/common.sh"
LOAD0=$(loadavg)
METHODS="none pooled per-layer global-batch bias"
STEPS=${STEPS:-200} EVAL=40 WARMUP=20 EVERY=10 # STEPS=n: a shorter (or longer) run
[ "$SIZE" = smoke ] && STEPS=6 EVAL=3 WARMUP=2 EVERY=2
# the shared recipe: short context, 4 micro-batches of 4 sequences per optimizer step
RECIPE="--steps $STEPS --warmup $WARMUP --ctx 128 --batch 16 --micro-batches 4 --aux-coef 0.01 \
--bias-rate 0.01 --lr 3e-3 --seed 1234 --eval-fortunes $EVAL --no-samples --log-every $EVERY"
t_start=$(now)

train_runs --balance "" 2 $METHODS # two at a time
E=$(num_experts "$OUT/none")

# per method: balance.dat (layer max/mean cv), held-out bpb, dead experts
for m in $METHODS; do
    awk -v E="$E" -f harness/plot/balance.awk "$OUT/$m/heldout_share.dat" >"$OUT/$m/balance.dat"
done
bpb() { # METHOD LANG
    "$PYTHON" -c "import json,sys; print('%.4f' % json.load(open(sys.argv[1]))[sys.argv[2]]['bpb'])" \
        "$OUT/$1/heldout_bpb.json" "$2"
}
# under FRACTION METHOD: experts (all layers) whose share is under FRACTION of 1/E
under() { awk -v f="$1" -v E="$E" '{ for (e = 2; e <= NF; e++) if ($e < f / E) n++ } END { print n + 0 }' "$OUT/$2/heldout_share.dat"; }
minfair() { awk -v E="$E" '{ for (e = 2; e <= NF; e++) if (m == "" || $e < m) m = $e } END { printf "%.3f", m * E }' "$OUT/$1/heldout_share.dat"; }
LAYERS=$(awk '{ printf "%s ", $1 }' "$OUT/none/heldout_share.dat")

# plots: heatmaps side by side, max/mean per layer, the largest expert share over training
gnuplot -e "dir='$OUT'; methods='$METHODS'; E=$E" "$HERE/balance-losses.gp"

# per_layer METHOD FIELD: the balance.dat FIELD (2 max/mean, 3 cv) of each layer, comma separated
per_layer() { awk -v f="$2" '{ printf "%s%.2f", (NR > 1 ? ", " : ""), $f }' "$OUT/$1/balance.dat"; }
steps_done() { tail -1 "$OUT/$1/train_log.tsv" | cut -f1; }
final() { tail -1 "$OUT/$1/train_log.tsv" | cut -f"$2"; }
secs() { sed -n 's/.*elapsed \([0-9:]*\) .*/\1/p' "$OUT/$1.log" | tail -1; }
LANGS=$(langs "$OUT/none/corpus")
mean_col() { awk -v f="$2" '{ s += $f; n++ } END { printf "%.2f", s / n }' "$OUT/$1/balance.dat"; }
ranked() { for m in $METHODS; do echo "$m $(mean_col "$m" "$1")"; done | sort -k2,2n | awk '{ printf "%s%s (%s)", (NR > 1 ? " < " : ""), $1, $2 }'; }
best_bpb() { for m in $METHODS; do echo "$m $(bpb "$m" all)"; done | sort -k2,2n | head -1 | awk '{ printf "%s (%s)", $1, $2 }'; }
{
header "Experiment: load-balancing methods compared"
cat <<MD
The demo model's architecture (\`harness/pytorch/train.py\` defaults: 4 layers, layer 0
dense, E = $E experts top-2 in layers $(echo $LAYERS | sed 's/ /, /g')) is trained five times from the same
seed on the same data order, identical but for \`--balance\`:

| method | \`--balance\` | what it does |
|---|---|---|
| no loss | none | next-byte cross-entropy only |
| pooled | pooled | one f * P loss over the tokens of all MoE layers concatenated: transformers' \`load_balancing_loss_func\` (\`src/transformers/models/qwen3_moe/modeling_qwen3_moe.py\`) |
| per layer | per-layer | one f * P loss per MoE layer (Switch Transformers, Fedus et al. 2021, section 2.2; ST-MoE, Zoph et al. 2022), averaged over the layers |
| global batch | global-batch | per layer, f counted over the whole optimizer step (all $((16 / 4)) micro-batches), P per micro-batch: Qwen3's global-batch loss (Qwen3 technical report; Qiu et al. 2025, "Demons in the Detail") |
| bias | bias | no loss; a per-expert bias added to the router probabilities for the top-k selection only, moved by rate x sign(mean load - load) after each step (DeepSeek-V3 technical report, section 2.1.2) |

f_e is expert e's share of the top-k assignments, P_e its mean router probability, and each
loss is E * sum_e f_e * P_e (k when balanced); coefficient 0.01 for the three losses. The
recipe (train.py flags): \`$RECIPE\`. It is a short run
($STEPS steps of 16 x 128 bytes, context 128 instead of the demo model's 256) so that five
runs fit the time limit: its bits per byte are far from the demo model's (3926 steps). The bias
rate 0.01 is ten times DeepSeek-V3's 0.001 because the run has only $STEPS updates to move it.
Held-out figures: the first $EVAL fortunes of each language's held-out file, scored by
train.py's \`evaluate\` (the C \`perplexity\` method); with \`bias\` the selection bias
is applied (moekit and the checkpoint do not carry it: train.py writes it to
\`router_bias.json\`).

## Results

| | $(echo $METHODS | sed 's/ / | /g') |
|---|$(for m in $METHODS; do printf -- '---:|'; done)
| held-out bits per byte, all | $(for m in $METHODS; do printf '%s | ' "$(bpb "$m" all)"; done)
$(for l in $LANGS; do printf '| held-out bits per byte, %s | ' "$l"; for m in $METHODS; do printf '%s | ' "$(bpb "$m" "$l")"; done; echo; done)
| max/mean load, layers $(echo $LAYERS | sed 's/ /, /g') | $(for m in $METHODS; do printf '%s | ' "$(per_layer "$m" 2)"; done)
| coefficient of variation, per layer | $(for m in $METHODS; do printf '%s | ' "$(per_layer "$m" 3)"; done)
| experts with no assignment (all layers) | $(for m in $METHODS; do printf '%s | ' "$(under 0.0000001 "$m")"; done)
| experts under 0.1 of the fair share 1/E | $(for m in $METHODS; do printf '%s | ' "$(under 0.1 "$m")"; done)
| experts under 0.3 of the fair share | $(for m in $METHODS; do printf '%s | ' "$(under 0.3 "$m")"; done)
| least-used expert, in fair shares | $(for m in $METHODS; do printf '%s | ' "$(minfair "$m")"; done)
| training loss at the end (nats/byte) | $(for m in $METHODS; do printf '%s | ' "$(final "$m" 2)"; done)
| steps, training time (m:ss) | $(for m in $METHODS; do printf '%s, %s | ' "$(steps_done "$m")" "$(secs "$m")"; done)

Load = an expert's share of its layer's top-k assignments on the held-out bytes (all
languages); max/mean is 1 when balanced and E = $E when one expert is chosen by every
token (k = 2: at most E/2 = $((E / 2))).

![heatmaps](balance-heatmaps.png)

![max/mean](balance-maxmean.png)

![training](balance-training.png)

## What to conclude

In this run: lowest held-out bits per byte **$(best_bpb)**; the most even layers (mean
coefficient of variation over the layers, lower is more even): $(ranked 3); experts under
0.3 of their fair share: $(for m in $METHODS; do printf '%s %s, ' "$m" "$(under 0.3 "$m")"; done | sed 's/, $//').
The pooled loss's layers average max/mean $(mean_col pooled 2) against $(mean_col per-layer 2) with the
per-layer loss and $(mean_col none 2) with none.

- Read the heatmaps row by row: a balanced layer is white across. The pooled loss only sees
  each expert id's share summed over the layers, so a layer can stay red/blue as long as
  another layer favours the other experts; per-layer and global-batch losses look at each
  layer on its own. Compare the max/mean rows above for your run.
- The global-batch loss differs from the per-layer one only in where f is counted: over the
  whole step instead of each micro-batch. A micro-batch of a few sequences is one or two
  fortunes in one language, so per-micro-batch balance pushes every such small sample to use
  every expert; the global count lets a micro-batch specialise as long as the step balances
  (the argument of Qiu et al. 2025).
- The bias method changes no gradient: it only moves the selection. Its bits per byte are
  the cost or gain of balancing without a loss term.
- One short run per method and one seed: differences of a few hundredths of a bit per byte
  are within what another seed would change.

## Measured

Whole run: $(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.0f", b - a }') s wall time for the five trainings (two at a time), $(cpu_seconds) s of
CPU time; load average at the end $(loadavg). Each run's log is \`METHOD.log\`,
its model, \`train_log.tsv\`, \`heldout_bpb.json\` and \`heldout_share.dat\` in \`METHOD/\`.
MD
} >"$OUT/README.md"
echo "balance-losses: $OUT/README.md"
