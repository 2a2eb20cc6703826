# entropy.awk: routing entropies, in bits, of --dump-routing TSVs (pos token layer slot
# expert weight) or of "layer expert count" lines (routing_stats.awk's output).
#   load entropy: per MoE layer, H of the experts' shares of the layer's assignments
#     (log2 E when balanced, log2 k when every token goes to the same k experts);
#     printed as the mean over layers.
#   mixing entropy (dumps only): per token and layer, H of its k normalised routing weights
#     (0 at k = 1, log2 k when the k weights are equal); the mean over tokens and layers.
# Prints "load_entropy mixing_entropy" (mixing is nan for count lines).
BEGIN { FS = "[\t ]" }
NF == 6 && $1 != "pos" && $5 >= 0 {
    c[$3, $5]++; tot[$3]++; layers[$3] = 1; rows++
    if ($6 > 0) mix -= $6 * log($6) / log(2)
    if ($4 == 0) tokens++
}
NF == 3 { c[$1, $2] += $3; tot[$1] += $3; layers[$1] = 1 }
END {
    n = 0; h = 0
    for (k in c) { split(k, p, SUBSEP); s = c[k] / tot[p[1]]; h -= s * log(s) / log(2) }
    for (l in layers) n++
    printf "%.4f %s\n", n ? h / n : 0, tokens ? sprintf("%.4f", mix / tokens) : "nan"
}
