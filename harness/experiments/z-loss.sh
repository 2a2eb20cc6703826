#!/bin/sh
# z-loss.sh: the router z-loss (ST-MoE, Zoph et al. 2022, section 3.3, eq. 5). The demo
# model's architecture is trained three times, identical but for train.py --z-loss: 0, the
# paper's 0.001 and 0.1, at a learning rate above the demo recipe's (where instability
# shows first). Plotted per step (train.py --log-router): each MoE layer's mean max |router
# logit| and mean logsumexp, and the training loss; held-out bits per byte at the end.
# The three runs train at once (one ATen thread each). SIZE=smoke: 6 steps, 3 fortunes.
# Usage (make experiment NAME=z-loss): OUT=dir sh harness/experiments/z-loss.sh
HERE=$(dirname "$0")
. "$HERE/common.sh"
LOAD0=$(loadavg)
COEFS="0 0.001 0.1"
STEPS=${STEPS:-100} EVAL=40 WARMUP=10 LR=1e-2 EVERY=10 # STEPS=n: a shorter (or longer) run
[ "$SIZE" = smoke ] && STEPS=6 EVAL=3 WARMUP=2 EVERY=2
RECIPE="--steps $STEPS --warmup $WARMUP --ctx 128 --batch 16 --micro-batches 4 --lr $LR \
--seed 1234 --eval-fortunes $EVAL --no-samples --log-every $EVERY --log-router"
t_start=$(now)

train_runs --z-loss z 99 $COEFS # all three at once
SPARSE=$(head -1 "$OUT/z0/router_log.tsv" | tr '\t' '\n' | sed -n 's/^maxabs_//p' | tr '\n' ' ')

gnuplot -e "dir='$OUT'; coefs='$COEFS'; layers='$SPARSE'; from=$WARMUP" "$HERE/z-loss.gp"

bpb() { # COEF LANG
    "$PYTHON" -c "import json,sys; print('%.4f' % json.load(open(sys.argv[1]))[sys.argv[2]]['bpb'])" \
        "$OUT/z$1/heldout_bpb.json" "$2"
}
# last COEF COLUMN: the mean of router_log.tsv's COLUMN over the last 10 steps
last() { tail -10 "$OUT/z$1/router_log.tsv" | awk -v c="$2" '{ s += $c; n++ } END { printf "%.3f", s / n }'; }
per_layer() { # COEF maxabs|lse: the last-10-steps mean of each layer, comma separated
    i=0; for l in $SPARSE; do
        col=$(head -1 "$OUT/z$1/router_log.tsv" | tr '\t' '\n' | grep -nx "$2_$l" | cut -d: -f1)
        [ $i -gt 0 ] && printf ', '; printf '%s' "$(last "$1" "$col")"; i=1
    done
}
# spikes COEF: after warm-up, the steps whose loss is more than 0.05 nats/byte above the
# mean of the 10 steps before, and the largest such rise: "count, rise"
spikes() {
    awk -v w="$WARMUP" 'NR > 1 { l[NR] = $2; if (NR - 1 > w && NR > 11) { s = 0; for (i = NR - 10; i < NR; i++) s += l[i]
        d = $2 - s / 10; if (d > 0.05) n++; if (d > m) m = d } } END { printf "%d, %.3f", n, m }' "$OUT/z$1/router_log.tsv"
}
bpb_all() { bpb "$1" all; }
last_col() { last "$2" "$1"; } # COLUMN COEF (row's argument order)
per_layer_maxabs() { per_layer "$1" maxabs; }
per_layer_lse() { per_layer "$1" lse; }
mean_lse() { per_layer "$1" lse | tr ',' '\n' | awk '{ s += $1; n++ } END { printf "%.2f", s / n }'; }
secs() { sed -n 's/.*elapsed \([0-9:]*\) .*/\1/p' "$OUT/z$1.log" | tail -1; }
LANGS=$(langs "$OUT/z0/corpus")
row() { for c in $COEFS; do printf '%s | ' "$("$@" "$c")"; done; }
{
header "Experiment: the router z-loss"
cat <<MD
The demo model's architecture (\`harness/pytorch/train.py\` defaults: 4 layers, layer 0
dense, 8 experts top-2 in layers $(echo $SPARSE | sed 's/ /, /g')) is trained three times from the
same seed on the same data order, identical but for \`--z-loss\`: $(echo $COEFS | sed 's/ /, /g').

The router z-loss is ST-MoE's (Zoph et al. 2022, "ST-MoE: Designing Stable and
Transferable Sparse Expert Models", section 3.3, eq. 5): for a layer's router logits x
(N tokens, E experts), L_z = (1/N) sum_i (logsumexp_j x_ij)^2. It is small when the
logits are small, so it pulls them towards zero; the paper adds it with coefficient 0.001
because large router logits go through exp() in the softmax, where (in bfloat16 above all)
rounding errors grow with the logit and can destabilise training. train.py
(\`model.router_z_loss\`) averages L_z over the MoE layers and adds coef x L_z to the loss;
at initialisation every logsumexp is about ln 8 = 2.08, so L_z is about 4.3.

The recipe (train.py flags): \`$RECIPE\`, with train.py's default pooled load-balancing loss (0.01),
that of the first demo model (the shipped one uses the global-batch loss). The learning rate $LR is above the demo model's 3e-3 on purpose: this is a
short run ($STEPS steps of 16 x 128 bytes) in float32, and the z-loss is about stability,
which a gentle run does not test. Held-out figures: the first $EVAL fortunes of each language,
scored by train.py's \`evaluate\` in PyTorch (the same bits per byte as the C \`perplexity\`).
Router statistics are those of each step's first micro-batch, before the update.

## Results

| \`--z-loss\` | $(echo $COEFS | sed 's/ / | /g') |
|---|$(for c in $COEFS; do printf -- '---:|'; done)
| held-out bits per byte, all | $(row bpb_all)
$(for l in $LANGS; do printf '| held-out bits per byte, %s | ' "$l"; for c in $COEFS; do printf '%s | ' "$(bpb "$c" "$l")"; done; echo; done)
| training loss, last 10 steps (nats/byte) | $(row last_col 2)
| z-loss, last 10 steps | $(row last_col 3)
| mean max \|router logit\|, layers $(echo $SPARSE | sed 's/ /, /g') | $(row per_layer_maxabs)
| mean logsumexp of the router logits, per layer | $(row per_layer_lse)
| loss spikes after warm-up (count, largest rise) | $(row spikes)
| training time (m:ss) | $(row secs)

A spike is a step whose training loss is more than 0.05 nats/byte above the mean of the 10
steps before it (the convention of this report; the per-step loss of one 16 x 128-byte
batch is noisy, so a few such steps are expected in any run).

![router logits](z-loss-logits.png)

The first figure has one panel per MoE layer: solid lines are the mean over tokens of the
largest |router logit|, dashed lines the mean logsumexp (what the z-loss squares), one
colour per coefficient, over the training steps. The second is the per-step training loss
of the three runs (thin) and its trailing 10-step mean (thick), after the $WARMUP warm-up steps.

![training loss](z-loss-loss.png)

## What to conclude

In this run, held-out bits per byte: $(for c in $COEFS; do printf 'z-loss %s: %s; ' "$c" "$(bpb "$c" all)"; done | sed 's/; $//');
mean logsumexp at the end (mean of the layers): $(for c in $COEFS; do printf '%s: %s; ' "$c" "$(mean_lse "$c")"; done | sed 's/; $//').

- Without the z-loss nothing sets the level of a token's router logits: the softmax does
  not change when all of them move by the same amount, so neither the language-model loss
  nor the load-balancing loss (both functions of the softmax) pulls them together. Their
  logsumexp starts at ln 8 = 2.08 and drifts wherever training takes it (the dashed lines
  of z-loss 0 in the first figure).
- The z-loss penalises the logsumexp, not each logit. logsumexp = 0 means sum_j exp(x_j)
  = 1: the logits are then log-probabilities, a state reached by shifting every logit of
  a token down without changing the routing at all. That is why the max |logit| lines
  can stay as high with the z-loss while the logsumexp falls towards 0: with logsumexp
  near 0 every logit is at most 0, and the large |logit| are the negative ones, of the
  experts a token does not use. What it bounds is the largest positive logit
  (logsumexp >= max_j x_j): the one whose exp() overflows or rounds badly.
- Read the thin lines of the loss figure: the spikes come at the same steps in all three
  runs. Same seed, same batches: a hard batch, not an instability of one run, and the
  spike row counts mostly those. At this size, in float32, none of the runs diverged; the
  instabilities the paper fixes appear in large bfloat16 models. The held-out differences
  above are one seed each: a few hundredths of a bit per byte are within what another
  seed would change.

## Measured

Whole run: $(date -u -d "@${t_start%.*}" +%H:%M) to $(date -u -d "@${t_end%.*}" +%H:%M) UTC, $(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.0f", b - a }') s wall time for the three trainings (at once), $(cpu_seconds) s of CPU
time; load average at the end $LOAD1. Each run's log is \`zCOEF.log\`, its model,
\`train_log.tsv\`, \`router_log.tsv\` (per step: loss, z-loss, per layer max |logit| and
logsumexp) and \`heldout_bpb.json\` in \`zCOEF/\`.
MD
} >"$OUT/README.md"
echo "z-loss: $OUT/README.md"
