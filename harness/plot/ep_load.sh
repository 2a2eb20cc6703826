#!/bin/sh
# ep_load.sh MOEKIT_MPI MODEL TEXT P OUT: the load of each MPI rank under expert parallelism.
#   Runs `mpirun -np P MOEKIT_MPI perplexity --fortunes --dump-routing` over TEXT (one file),
#   counts the routed rows each rank's experts receive per MoE layer (rank r holds experts
#   r*E/P .. (r+1)*E/P - 1) and draws them:
#   ep-load.png   per layer, each rank's share of the layer's rows (1/P is balanced)
#   ep-load.dat   layer, then the P shares
set -eu
MOEKIT=$1 MODEL=$2 TEXT=$3 P=$4 OUT=$5
HERE=$(dirname "$0")
mkdir -p "$OUT"
command -v gnuplot >/dev/null || { echo "ep_load: gnuplot is missing: sudo apt-get install -y gnuplot-nox" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "ep_load: mpirun is missing: sudo apt-get install -y openmpi-bin libopenmpi-dev" >&2; exit 1; }
[ -f "$TEXT" ] || { echo "ep_load: TEXT=$TEXT is not a file" >&2; exit 1; }
ROOT=; [ "$(id -u)" -eq 0 ] && ROOT=--allow-run-as-root
mpirun $ROOT --oversubscribe -np "$P" "$MOEKIT" perplexity --fortunes --model "$MODEL" \
    --file "$TEXT" --dump-routing "$OUT/ep-routing.tsv" >"$OUT/ep-perplexity.txt"
E=$(sed -n 's/.*"num_experts"[^0-9]*\([0-9]*\).*/\1/p' "$MODEL/config.json" | head -1)
# pos token layer slot expert weight -> per layer, the share of rows per owning rank
awk -v P="$P" -v E="$E" 'NR > 1 && $5 >= 0 {
        r = int(((($5 + 1) * P) - 1) / E); n[$3, r]++; total[$3]++; if (!($3 in seen)) { seen[$3] = 1; layers[++L] = $3 } }
    END { for (i = 1; i <= L; i++) { l = layers[i]; line = l
              for (r = 0; r < P; r++) line = line " " sprintf("%.4f", n[l, r] / total[l])
              print line } }' "$OUT/ep-routing.tsv" | sort -n >"$OUT/ep-load.dat"
gnuplot -e "dir='$OUT'; P=$P; model='$MODEL'" "$HERE/ep_load.gp"
ls "$OUT/ep-load.png"
