# drops.awk: a --dump-routing TSV (pos token layer slot expert weight) -> what the capacity
# limit dropped (expert -1), counted two ways:
#   "L layer dropped assignments"  per MoE layer
#   "P p dropped assignments"      per position p in the forward call (pos % chunk: the CLI
#                                  feeds a sequence chunk tokens at a time, each call with
#                                  its own capacity, claimed in token order)
# Variable: chunk (the tokens per forward call).
BEGIN { FS = "\t" }
NR > 1 {
    p = $1 % chunk
    nl[$3]++; np[p]++
    if ($5 == -1) { dl[$3]++; dp[p]++ }
}
END {
    for (l in nl) print "L", l, dl[l] + 0, nl[l]
    for (p in np) print "P", p, dp[p] + 0, np[p]
}
