#!/bin/sh
# plot.sh MOEKIT MODEL TEXT OUT: routing load-balance plots of MODEL on TEXT.
#   TEXT: a directory of heldout-LANG.txt files (one series per language) or one file.
#   OUT:  where the PNGs and their data go.
# Runs `moekit perplexity --fortunes --dump-routing` on each text, aggregates the routing with awk,
# and renders with gnuplot:
#   routing-heatmap.png     layer x expert share of routed tokens (balanced share 1/E marked)
#   routing-languages.png   per-language expert usage, one panel per MoE layer
#   routing-balance.png     per layer: max/mean load and coefficient of variation
#   training-curves.png     loss and aux loss per step (MODEL/train_log.tsv, when present)
set -eu
MOEKIT=$1 MODEL=$2 TEXT=$3 OUT=$4
HERE=$(dirname "$0")
mkdir -p "$OUT"
command -v gnuplot >/dev/null || { echo "plot: gnuplot is missing: sudo apt-get install -y gnuplot-nox" >&2; exit 1; }
[ -e "$TEXT" ] || { echo "plot: TEXT=$TEXT does not exist" >&2; exit 1; }

if [ -d "$TEXT" ]; then files=$(ls "$TEXT"/heldout-*.txt); else files=$TEXT; fi
langs=""
for f in $files; do
    lang=$(basename "$f" .txt); lang=${lang#heldout-}
    langs="$langs $lang"
    "$MOEKIT" perplexity --fortunes --model "$MODEL" --file "$f" --dump-routing "$OUT/routing-$lang.tsv"
    awk -f "$HERE/routing_stats.awk" "$OUT/routing-$lang.tsv" | sort -n -k1,1 -k2,2 >"$OUT/counts-$lang.dat"
done

E=$(sed -n 's/.*"num_experts"[^0-9]*\([0-9]*\).*/\1/p; s/.*"num_local_experts"[^0-9]*\([0-9]*\).*/\1/p' "$MODEL/config.json" | head -1)
awk -v E="$E" -f "$HERE/shares.awk" "$OUT"/counts-*.dat >"$OUT/share-all.dat"
for lang in $langs; do awk -v E="$E" -f "$HERE/shares.awk" "$OUT/counts-$lang.dat" >"$OUT/share-$lang.dat"; done
awk -v E="$E" -f "$HERE/balance.awk" "$OUT/share-all.dat" >"$OUT/balance.dat"

gnuplot -e "dir='$OUT'; E=$E; model='$MODEL'" "$HERE/heatmap.gp"
gnuplot -e "dir='$OUT'; E=$E; langs='$langs'" "$HERE/languages.gp"
gnuplot -e "dir='$OUT'" "$HERE/balance.gp"
if [ -f "$MODEL/train_log.tsv" ]; then
    gnuplot -e "dir='$OUT'; log='$MODEL/train_log.tsv'" "$HERE/training.gp"
fi
ls "$OUT"/*.png
