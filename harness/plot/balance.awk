# balance.awk: share-all.dat -> per MoE layer: "layer max/mean cv", where load is each
# expert's share, mean = 1/E, and cv = standard deviation / mean (0 = perfectly balanced).
{
    sum = 0; sq = 0; max = 0
    for (e = 2; e <= NF; e++) { s = $e; sum += s; sq += s * s; if (s > max) max = s }
    mean = sum / (NF - 1); var = sq / (NF - 1) - mean * mean
    printf "%d %.4f %.4f\n", $1, max / mean, sqrt(var > 0 ? var : 0) / mean
}
