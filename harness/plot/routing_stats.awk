# routing_stats.awk: a --dump-routing TSV (pos token layer slot expert weight) ->
# per (layer, expert) counts of top-k assignments, one line each: "layer expert count".
# Dropped slots (expert -1) are not counted.
BEGIN { FS = "\t" }
NR > 1 && $5 >= 0 { count[$3 " " $5]++ }
END { for (k in count) print k, count[k] }
