# shares.awk: "layer expert count" lines (several files: summed) -> a matrix, one row per
# MoE layer in order, one column per expert 0..E-1: that expert's share of the layer's
# routed assignments. The first column is the layer number.
{ c[$1, $2] += $3; tot[$1] += $3; layers[$1] = 1 }
END {
    n = 0
    for (l in layers) order[n++] = l + 0
    for (i = 0; i < n; i++) for (j = i + 1; j < n; j++)
        if (order[j] < order[i]) { t = order[i]; order[i] = order[j]; order[j] = t }
    for (i = 0; i < n; i++) {
        l = order[i]; line = l
        for (e = 0; e < E; e++) line = line " " sprintf("%.6f", c[l, e] / tot[l])
        print line
    }
}
