# spearman.awk: "x y" lines -> Spearman's rank correlation rho of x and y: the Pearson
# correlation of their ranks, ties given their mean rank (scipy.stats.spearmanr's
# definition). Prints rho and n; "nan n" when either side is constant.
function rank(v, r, n,    i, j, k, idx, t) {
    for (i = 1; i <= n; i++) idx[i] = i
    for (i = 2; i <= n; i++) { # insertion sort of the indices by value
        t = idx[i]
        for (j = i - 1; j >= 1 && v[idx[j]] > v[t]; j--) idx[j + 1] = idx[j]
        idx[j + 1] = t
    }
    for (i = 1; i <= n; i = j) { # a run of ties i .. j-1 gets the mean of its ranks
        for (j = i + 1; j <= n && v[idx[j]] == v[idx[i]]; j++) {}
        for (k = i; k < j; k++) r[idx[k]] = (i + j - 1) / 2
    }
}
NF >= 2 { n++; x[n] = $1 + 0; y[n] = $2 + 0 }
END {
    rank(x, rx, n); rank(y, ry, n)
    for (i = 1; i <= n; i++) { mx += rx[i] / n; my += ry[i] / n }
    for (i = 1; i <= n; i++) {
        sxy += (rx[i] - mx) * (ry[i] - my); sxx += (rx[i] - mx) ^ 2; syy += (ry[i] - my) ^ 2
    }
    if (sxx == 0 || syy == 0) print "nan", n
    else printf "%.3f %d\n", sxy / sqrt(sxx * syy), n
}
