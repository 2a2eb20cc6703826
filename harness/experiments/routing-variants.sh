#!/bin/sh
# routing-variants.sh: nine routers for the same experts. The demo model's architecture is
# trained once per train.py --router (topk, switch, noisy-topk, noisy-warmup, dense,
# shared, deepseek-moe, expert-choice, soft-moe), same seed, data order and steps; then held-out bits per byte
# (teacher-forced, and one prefix at a time on fewer fortunes: the last two routers are not
# causal), the experts' load per layer, and the forward FLOPs per token computed from the
# shapes. Held-out figures come from PyTorch (train.py's evaluate): moekit runs only the
# Qwen3-MoE router (lesson 10 has the others' forward passes in C). The nine runs train at once (one ATen thread each). SIZE=smoke: 4 steps
# each, 3 held-out fortunes per language (2 scored causally).
# Usage (make experiment NAME=routing-variants): OUT=dir sh harness/experiments/routing-variants.sh
HERE=$(dirname "$0")
. "$HERE/common.sh"
LOAD0=$(loadavg)
VARIANTS="topk switch noisy-topk noisy-warmup dense shared deepseek-moe expert-choice soft-moe"
STEPS=${STEPS:-60} EVAL=40 CAUSAL=15 WARMUP=10 EVERY=10 # STEPS=n: a shorter (or longer) run
[ "$SIZE" = smoke ] && STEPS=4 EVAL=3 CAUSAL=2 WARMUP=2 EVERY=2
RECIPE="--steps $STEPS --warmup $WARMUP --ctx 128 --batch 16 --micro-batches 4 --lr 3e-3 \
--seed 1234 --eval-fortunes $EVAL --eval-causal $CAUSAL --no-samples --log-every $EVERY"
t_start=$(now)

train_runs --router "" 99 $VARIANTS # all nine at once
E=$(num_experts "$OUT/topk")

# flops VARIANT: "experts-per-token moe-layer-flops model-flops" per token, forward, from
# config.json (see the report for the formula)
flops() {
    "$PYTHON" - "$OUT/$1/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
C, I, E, k = c["hidden_size"], c["moe_intermediate_size"], c["num_experts"], c["num_experts_per_tok"]
H, KV, D, V = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"], c["vocab_size"]
router = c.get("router", "topk")
n = {"dense": E, "shared": k + 1,                        # SwiGLU experts run per token
     "deepseek-moe": k + c.get("num_shared_experts", 0)}.get(router, k)
moe = 2 * C * E + n * 3 * 2 * C * I                       # router + n experts (3 matmuls each)
if router == "soft-moe":   # S slots per window of S / k tokens: n = k per token; the logits
    S = c["soft_moe_slots"]  # h Phi, the dispatch D^T h and the combine C Y cost 2 C S each
    moe = 3 * 2 * C * S + n * 3 * 2 * C * I
attn = 2 * C * (H * D + 2 * KV * D) + 2 * H * D * C       # q, k, v, o projections
dense = 3 * 2 * C * c["intermediate_size"]
L, sparse = c["num_hidden_layers"], c["num_hidden_layers"] - len(c["mlp_only_layers"])
print(n, moe, L * attn + sparse * moe + (L - sparse) * dense + 2 * C * V)
PY
}
bpb() { # VARIANT LANG ["all" of KEY: causal, teacher_forced_same_fortunes]
    "$PYTHON" -c "import json,sys; d = json.load(open(sys.argv[1])); d = d[sys.argv[3]] if sys.argv[3] else d
print('%.4f' % d[sys.argv[2]]['bpb'])" "$OUT/$1/heldout_bpb.json" "$2" "${3:-}"
}
tf_same() { "$PYTHON" -c "import json,sys; print('%.4f' % json.load(open(sys.argv[1]))['teacher_forced_same_fortunes']['bpb'])" "$OUT/$1/heldout_bpb.json"; }
: >"$OUT/summary.dat"
for v in $VARIANTS; do
    echo "$v $(flops "$v") $(bpb "$v" all) $(bpb "$v" all causal) $(tf_same "$v")" >>"$OUT/summary.dat"
done
field() { awk -v v="$1" -v f="$2" '$1 == v { print $f }' "$OUT/summary.dat"; }
mflops() { awk -v x="$(field "$1" "$2")" 'BEGIN { printf "%.3f", x / 1e6 }'; }
minmax() { # VARIANT: per layer "min/max" of the experts' held-out load shares
    awk '{ lo = 1; hi = 0; for (e = 2; e <= NF; e++) { if ($e < lo) lo = $e; if ($e > hi) hi = $e }
        printf "%s%.3f/%.3f", (NR > 1 ? ", " : ""), lo, hi }' "$OUT/$1/heldout_share.dat"
}
LAYERS=$(awk '{ printf "%s ", $1 }' "$OUT/topk/heldout_share.dat")

gnuplot -e "dir='$OUT'; variants='$VARIANTS'; Es='$(for v in $VARIANTS; do printf '%s ' "$(num_experts "$OUT/$v")"; done)'" \
    "$HERE/routing-variants.gp"

final() { tail -1 "$OUT/$1/train_log.tsv" | cut -f2; }
secs() { sed -n 's/.*elapsed \([0-9:]*\) .*/\1/p' "$OUT/$1.log" | tail -1; }
params() { sed -n 's/^\([0-9,]*\) trainable parameters/\1/p' "$OUT/$1.log"; }
LANGS=$(langs "$OUT/topk/corpus")
row() { for v in $VARIANTS; do printf '%s | ' "$("$@" "$v")"; done; }
n_run() { field "$1" 2; }
moe_mf() { mflops "$1" 3; }
model_mf() { mflops "$1" 4; }
bpb_all() { bpb "$1" all; }
bpb_causal() { bpb "$1" all causal; }
gap() { awk -v v="$1" '$1 == v { printf "%+.3f", $6 - $7 }' "$OUT/summary.dat"; }
ranked() { sort -k5,5n "$OUT/summary.dat" | awk '{ printf "%s%s (%s)", (NR > 1 ? " < " : ""), $1, $5 }'; }
C=$(sed -n 's/.*"hidden_size": *\([0-9]*\).*/\1/p' "$OUT/topk/config.json")
I=$(sed -n 's/.*"moe_intermediate_size": *\([0-9]*\).*/\1/p' "$OUT/topk/config.json")
{
header "Experiment: routing variants"
cat <<MD
The demo model's architecture (\`harness/pytorch/train.py\` defaults: 4 layers, layer 0
dense, E = $E experts of hidden size C = $C and intermediate size I = $I in layers
$(echo $LAYERS | sed 's/ /, /g')) is trained once per router, from the same seed on the same data
order, identical but for \`--router\`:

| \`--router\` | experts run per token | what it does |
|---|---:|---|
| topk | 2 | Qwen3-MoE: softmax over E, the top 2, their weights renormalised to sum 1 (the demo model's router) |
| switch | 1 | Switch Transformer top-1 (Fedus et al. 2021, section 2.1): the argmax expert, weighted by its softmax probability (not renormalised: renormalised, the weight would be 1 and the router would get no gradient) |
| noisy-topk | 2 | noisy top-k gating (Shazeer et al. 2017, section 2.1, eq. 3-5): while training, the top 2 of logits + N(0, 1) x softplus(x W_noise), with a learned W_noise (E x C), weights a softmax over the 2 kept; at evaluation no noise |
| noisy-warmup | 2 | the same router with the noise during the $WARMUP warm-up steps only, then plain top-k: noisy routing as a warm-up, as the MoE notes this kit started from describe it |
| dense | $E | a dense softmax mixture: every expert on every token, weighted by the softmax over all E |
| shared | 2 | one shared expert (as wide as a routed one) on every token, ungated, plus the routed top 1: DeepSeekMoE's shared expert isolation (Dai et al. 2024, section 3.2), which subtracts the shared experts from the routed k to keep the computation constant |
| deepseek-moe | 4 of half width | DeepSeekMoE (Dai et al. 2024): fine-grained expert segmentation (section 3.1), every expert split in two, $(num_experts "$OUT/deepseek-moe") experts of I / 2, and shared expert isolation (section 3.2), 2 of them always on, ungated, plus the routed top 2: the expert FLOPs of topk |
| expert-choice | 2 on average | expert choice (Zhou et al. 2022, section 3.2; their c is the capacity factor, the kit's c the bytes per expert): within each sequence of T bytes, every expert takes the c = ceil(T x 2 / E) bytes with the highest softmax probability for it, weighted by that probability; a byte may get several experts, one, or none |
| soft-moe | 2 (slot rows) | Soft MoE (Puigcerver et al. 2023, section 2.1): S = 128 x 2 = $(sed -n 's/.*"soft_moe_slots": *\([0-9]*\).*/\1/p' "$OUT/soft-moe/config.json") slots, S / E per expert; each slot is a softmax-over-the-sequence mix of its bytes, each byte's output a softmax-over-slots mix of the slots' outputs (the paper's L2 normalisation of h and Phi left out) |

Every variant uses train.py's default balance loss, the pooled one (0.01), so that the
nine differ only in the router (the shipped demo model is trained with the global-batch
loss; expert choice and Soft MoE need none, but keep it here for the same reason). The recipe
(train.py flags): \`$RECIPE\`. It is a short run ($STEPS steps of 16 x 128 bytes): bits per
byte are far from the demo model's. Noisy top-k adds noise for the whole training run,
as in the paper (not only during warm-up). For expert choice and Soft MoE the balance
loss reads the softmax over the experts (for Soft MoE: a byte's combine weight summed over
each expert's slots); expert choice is balanced by construction, every expert gets c bytes.

**Two of these routers are not causal.** Expert choice and Soft MoE mix the bytes of a
sequence: whether expert e takes byte t depends on how byte t compares with the sequence's
other bytes, later ones included, and a Soft MoE slot averages every byte of the sequence.
Trained on whole windows, byte t's prediction can read what comes after it. Generation
cannot: it has bytes 0..t-1 only. So every variant is scored two ways on the first
$CAUSAL fortunes of each language (train.py \`--eval-causal\`): teacher-forced (the fortune in
one forward pass, how the held-out rows below are computed) and causal (one forward pass
per byte, over the bytes before it only, as generation runs). For a causal router the two
are the same number; the gap is what a router gained from the future.

Held-out figures: the first $EVAL fortunes of each language, scored by train.py's
\`evaluate\` in PyTorch (for expert choice and Soft MoE one fortune per forward pass, since
padding would be a later byte they mix in) (moekit's C model runs only the topk and switch routers; the
checkpoints of the others carry a \`"router"\` key, a kit convention, that Hugging Face
ignores).

FLOPs per token (forward, multiply-add = 2 FLOPs), from config.json: an MoE layer costs
2 C E for the router plus n x 3 x 2 C I for n SwiGLU experts (gate, up and down
projections); the whole model adds, per layer, the q, k, v, o projections 2 C (H D +
2 KV D) + 2 H D C, the dense layer's 3 x 2 C I_dense, and the LM head 2 C V. Attention
scores (4 H D t at position t) are left out: the same for every variant. Noisy top-k's
W_noise adds 2 C E while training only. Soft MoE's router is Phi (C x S), and dispatch
(D^T h) and combine (Cw Y) cost 2 C S each per byte: its S slot rows cost k expert rows per
byte on a 128-byte window (fewer per byte on a longer one, more on a shorter one).

## Results

| | $(echo $VARIANTS | sed 's/ / | /g') |
|---|$(for v in $VARIANTS; do printf -- '---:|'; done)
| held-out bits per byte, all | $(row bpb_all)
| the first $CAUSAL fortunes per language, teacher-forced | $(row tf_same)
| the same, causal (one prefix at a time) | $(row bpb_causal)
$(for l in $LANGS; do printf '| held-out bits per byte, %s | ' "$l"; for v in $VARIANTS; do printf '%s | ' "$(bpb "$v" "$l")"; done; echo; done)
| experts run per token (per MoE layer) | $(row n_run)
| MoE layer forward MFLOPs per token | $(row moe_mf)
| whole model forward MFLOPs per token | $(row model_mf)
| load share min/max, layers $(echo $LAYERS | sed 's/ /, /g') | $(row minmax)
| parameters | $(row params)
| training loss at the end (nats/byte) | $(row final)
| training time (m:ss) | $(row secs)

Load share: an expert's share of its layer's routed assignments on the held-out bytes (all
languages), $(awk -v E="$E" 'BEGIN { printf "%.3f", 1 / E }') = 1/E each when balanced ($(awk -v E="$(num_experts "$OUT/deepseek-moe")" 'BEGIN { printf "%.4f", 1 / E }') for deepseek-moe's routed experts). For switch and shared it counts the
top-1 routed expert; for dense, where every expert runs, the top 2 by router probability
(where a top-2 router would send the token), and the same for expert choice (where each
expert takes c bytes of every sequence, so its real load is even by construction) and Soft
MoE (the 2 experts with the largest combine weight).

![held-out bits per byte against FLOPs](routing-variants-bpb.png)

![load heatmaps](routing-variants-heatmaps.png)

![training loss](routing-variants-training.png)

![causal minus teacher-forced](routing-variants-causal.png)

The first figure puts each variant at its MoE layer's FLOPs per token (x) and its held-out
bits per byte (y): lower and further left is better. The heatmaps show each variant's
held-out load per (layer, expert), white balanced, red over-used, blue under-used. The third
figure is the training loss every $EVERY steps. The fourth shows, per variant, the causal
minus the teacher-forced bits per byte on the same fortunes: 0 where the router is causal.

## What to conclude

In this run, held-out bits per byte from best to worst: $(ranked). (Teacher-forced:
expert-choice's and soft-moe's figures there read later bytes, see below.)

- Cost and quality are two axes: dense runs all $E experts ($(moe_mf dense) MFLOPs per MoE
  layer and token against $(moe_mf topk) for topk); if it is not clearly better, sparsity
  was nearly free. Switch halves the experts' work of topk; the first figure shows what it
  cost in this run.
- Shared and topk run the same number of experts per token; shared makes one of them
  always-on, so common knowledge need not be copied into every routed expert (the
  DeepSeekMoE argument), but it has one more expert per MoE layer to train (see the
  parameters row) and each routed expert gets half the routed slots. One short run cannot
  show specialisation; the bits per byte say whether it hurt or helped here.
- deepseek-moe runs the same expert FLOPs as topk in four half-width experts, two of them
  shared: many more combinations of experts per token ($(num_experts "$OUT/deepseek-moe") choose 2 against 8 choose 2),
  the DeepSeekMoE argument for finer experts. Its heatmap has $(num_experts "$OUT/deepseek-moe") columns of routed experts.
- Noisy top-k's noise scale softplus(x W_noise) starts at softplus(0) = ln 2 = 0.69
  (W_noise is initialised like every weight, N(0, 0.02); Shazeer et al. 2017, appendix A,
  start W_g and W_noise at zero: no signal and some noise) while the router logits start
  near 0: at first the choice of experts is close to random, and it stays noisy until the
  logits outgrow the noise or W_noise learns to shrink it; evaluation then runs without
  noise. Compare its training loss and bits per byte with topk's, and its heatmap and
  min/max row: the noise is meant to spread the load and let experts be tried (Shazeer et
  al. 2017 use it with thousands of experts and long training, not $STEPS steps).
  noisy-warmup keeps the noise for the first $WARMUP steps only: early exploration, then
  the same router as topk for the rest of the run.
- Expert choice and Soft MoE: see their bars in the fourth figure. Teacher-forced,
  they are scored like the others; causally, as they would generate, they lose
  $(gap expert-choice) and $(gap soft-moe) bits per byte (topk: $(gap topk)). A held-out figure
  computed in one pass says nothing about generation unless the model is causal: test it
  by scoring one prefix at a time. Both papers say so in their limitations: Zhou et al.
  2022 (section 6) note that their top-k selection takes past and future tokens, so it does not apply
  as is to auto-regressive generation; Puigcerver et al. 2023 (section 6) list auto-regressive
  decoding as a current limitation of Soft MoE, which merges all tokens of the input.
- One short run per variant and one seed: differences of a few hundredths of a bit per
  byte are within what another seed would change.

## Measured

Whole run: $(date -u -d "@${t_start%.*}" +%H:%M) to $(date -u -d "@${t_end%.*}" +%H:%M) UTC, $(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.0f", b - a }') s wall time for the nine trainings (at once), $(cpu_seconds) s of CPU
time; load average at the end $LOAD1. Each run's log is \`VARIANT.log\`, its model,
\`train_log.tsv\`, \`heldout_bpb.json\` and \`heldout_share.dat\` in \`VARIANT/\`;
\`summary.dat\` has per variant: experts per token, MoE-layer and model FLOPs, bits per byte
(all), causal and teacher-forced on the first $CAUSAL fortunes.
MD
} >"$OUT/README.md"
echo "routing-variants: $OUT/README.md"
