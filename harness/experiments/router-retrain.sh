#!/bin/sh
# router-retrain.sh: retraining the routers only, on a new domain (Debian's
# fortunes-bofh-excuses, English excuses the demo model never saw), then the routers and one
# expert, then that retrained expert put back into the untouched demo model with
# moekit --replace-expert. Held-out bits per byte on the domain (and on English fortunes:
# what the change costs there) and the domain's routing, before and after, measured by the
# C model. SIZE=smoke: 3 steps each, 10 held-out excuses.
# Usage (make experiment NAME=router-retrain): OUT=dir sh harness/experiments/router-retrain.sh
HERE=$(dirname "$0")
. "$HERE/common.sh"
LOAD0=$(loadavg)
BOFH=${BOFH:-/usr/share/games/fortunes/bofh-excuses}
[ -f "$BOFH" ] || { echo "router-retrain: $BOFH is missing: apt-get install -y fortunes-bofh-excuses" >&2; exit 1; }
DOMAIN=$(basename "$BOFH")
STEPS=${STEPS:-60} EN=$CORPUS/heldout-en.txt
if [ "$SIZE" = smoke ]; then
    STEPS=3; smoke_corpus "$CORPUS" "$OUT/smoke-corpus" 10; EN=$OUT/smoke-corpus/heldout-en.txt
fi
E=$(num_experts "$MODEL")
t_start=$(now)

# routing SHARE-FILE TEXT MODEL [moekit flags]: held-out bpb on stdout, shares per layer to
# SHARE-FILE (harness/plot's share-all.dat format)
routing() {
    share=$1 text=$2
    shift 2
    "$MOEKIT" perplexity --fortunes --file "$text" --dump-routing "$OUT/dump.tsv" --model "$@" |
        sed -n 's/.*: \([0-9.]*\) bits per byte.*/\1/p'
    awk -f harness/plot/routing_stats.awk "$OUT/dump.tsv" | awk -v E="$E" -f harness/plot/shares.awk >"$share"
    rm -f "$OUT/dump.tsv"
}

# the expert to retrain: the domain's busiest expert of the last MoE layer, before
routing "$OUT/whole-domain.dat" "$BOFH" "$MODEL" >/dev/null
UNFREEZE=$(tail -1 "$OUT/whole-domain.dat" | awk '{ m = 2; for (e = 3; e <= NF; e++) if ($e > $m) m = e; print $1 ":" m - 2 }')

RECIPE="--init $MODEL --text $BOFH --trainable routers --steps $STEPS --warmup 5 --ctx 128 \
--batch 16 --lr 3e-3 --min-lr 3e-4 --seed 1234 --no-samples --log-every $([ "$SIZE" = smoke ] && echo 1 || echo 10)"
train() { # NAME [flags]
    name=$1; shift
    nice -n 10 "$PYTHON" harness/pytorch/train.py $RECIPE "$@" --out "$OUT/$name" \
        --corpus-out "$OUT/$name/corpus" >"$OUT/$name.log" 2>&1 ||
        { echo "router-retrain: training $name failed:" >&2; tail -5 "$OUT/$name.log" >&2; exit 1; }
}
train routers & p1=$!
train routers+expert --unfreeze-expert "$UNFREEZE" & p2=$!
wait $p1 || exit 1
wait $p2 || exit 1
t_train=$(now)
HELD=$OUT/routers/corpus/heldout-$DOMAIN.txt
[ "$SIZE" = smoke ] && { awk '/^%$/ { if (++c >= 10) exit } { print }' "$HELD" >"$OUT/held-smoke.txt"; HELD=$OUT/held-smoke.txt; }

# the four models, measured by the C model on the domain's held-out excuses and on English
CASES="before routers routers+expert replaced"
for c in $CASES; do
    mkdir -p "$OUT/m-$c"
    case $c in
    before) set -- "$MODEL" ;;
    replaced) set -- "$MODEL" --replace-expert "$UNFREEZE:$OUT/routers+expert" ;;
    *) set -- "$OUT/$c" ;;
    esac
    routing "$OUT/m-$c/heldout_share.dat" "$HELD" "$@" >"$OUT/m-$c/bpb-domain.txt"
    routing "$OUT/m-$c/share-en.dat" "$EN" "$@" >"$OUT/m-$c/bpb-en.txt"
done
t_end=$(now)
times >"$OUT/times.txt"

gnuplot -e "dir='$OUT'; cases='$CASES'; E=$E" "$HERE/router-retrain.gp"

bpb() { cat "$OUT/m-$1/bpb-$2.txt"; }
trainable() { sed -n 's/^\([0-9,]*\) trainable parameters/\1/p' "$OUT/$1.log"; }
delta() { awk -v a="$(bpb "$1" "$3")" -v b="$(bpb "$2" "$3")" 'BEGIN { printf "%+.3f (%+.1f%%)", b - a, 100 * (b - a) / a }'; }
share_of() { # CASE: expert $UNFREEZE's share of its layer on the domain
    echo "$UNFREEZE" | awk -F: -v f="$OUT/m-$1/heldout_share.dat" '{ l = $1; e = $2 }
        END { while ((getline line < f) > 0) { split(line, x, " "); if (x[1] == l) printf "%.3f", x[e + 2] } }'
}
minutes() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 60 }'; }
moved() { # CASE: total variation distance of the domain's routing from before, mean over layers
    paste -d' ' "$OUT/m-before/heldout_share.dat" "$OUT/m-$1/heldout_share.dat" |
        awk -v E="$E" '{ d = 0; for (e = 2; e <= E + 1; e++) { x = $e - $(e + E + 1); d += x < 0 ? -x : x } s += d / 2; n++ } END { printf "%.3f", s / n }'
}
{
header "Experiment: retraining the routers only, and replacing an expert"
cat <<MD
The demo model (\`$MODEL\`) was trained on fortunes in five languages. Its new domain
here is \`$BOFH\` (Debian package fortunes-bofh-excuses: one-line excuses of the
"Bastard Operator From Hell"), which it never saw. train.py \`--text\` holds out one excuse
in five (by a hash of its text) and fine-tunes on the rest, from the demo model
(\`--init\`), for $STEPS steps of 16 x 128 bytes:

- **routers**: \`--trainable routers\`: only each MoE layer's router (\`mlp.gate.weight\`,
  E x C) learns, $(trainable routers) parameters; the experts, attention and embeddings are frozen;
- **routers+expert**: the same and expert $UNFREEZE (layer:expert, the domain's busiest
  expert of the last MoE layer before fine-tuning), \`--unfreeze-expert $UNFREEZE\`,
  $(trainable routers+expert) parameters;
- **replaced**: the untouched demo model, with its own routers, where expert $UNFREEZE runs
  the routers+expert run's retrained weights: \`moekit --replace-expert $UNFREEZE:DIR\`.

Recipe: \`$RECIPE\`. Every figure below is the C model's (\`moekit perplexity --fortunes\`,
\`--dump-routing\`) on $(grep -c '^%$' "$HELD") held-out excuses and on \`$EN\`.

## Bits per byte

| | $(echo $CASES | sed 's/ / | /g') |
|---|$(for c in $CASES; do printf -- '---:|'; done)
| held-out $DOMAIN | $(for c in $CASES; do printf '%s | ' "$(bpb "$c" domain)"; done)
| held-out English fortunes | $(for c in $CASES; do printf '%s | ' "$(bpb "$c" en)"; done)
| routing moved on $DOMAIN (total variation from before, mean over layers) | $(for c in $CASES; do printf '%s | ' "$(moved "$c")"; done)

Total variation is half the sum over experts of |share after - share before|: 0 when
the layer's load is unchanged, 1 when it moved entirely to other experts.

## Routing on $DOMAIN

![routing](router-retrain-heatmaps.png)

## What to conclude

In this run, on held-out $DOMAIN: the routers alone changed bits per byte by
$(delta before routers domain), the routers and expert $UNFREEZE by $(delta before routers+expert domain), and that
expert alone in the original model (replaced) by $(delta before replaced domain). On English fortunes the
same three changed it by $(delta before routers en), $(delta before routers+expert en) and $(delta before replaced en).
In the heatmaps, expert $UNFREEZE's share of its layer's assignments on the domain is
$(share_of before) before, $(share_of routers) with the routers retrained and $(share_of routers+expert) with the routers
and that expert retrained together (1/E = $(awk -v e="$E" 'BEGIN { printf "%.3f", 1 / e }')).

- With the experts frozen, fine-tuning can only change which experts a token visits and
  with what weights. The gap between "before" and "routers" on $DOMAIN is what routing alone
  buys on text the experts never saw; the gap to "routers+expert" is what one trainable
  expert adds.
- The English row shows the cost elsewhere: routers shared by every domain were moved
  for one.
- "replaced" keeps the original routers and changes one expert's weights only: it shows
  how much of the domain gain that one expert carries without the routers retrained
  with it.
- A short run ($STEPS steps) on one seed: read the signs and sizes, not the third decimal.

## Measured

Training: $(minutes "$t_start" "$t_train") minutes wall for the two runs (at once); the whole experiment
$(minutes "$t_start" "$t_end") minutes wall, $(cpu_seconds) s of CPU time; load average at the end $(loadavg).
Logs: \`routers.log\`, \`routers+expert.log\`; shares per case in \`m-CASE/\`.
MD
} >"$OUT/README.md"
echo "router-retrain: $OUT/README.md"
