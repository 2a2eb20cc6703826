# ep_load.gp: each rank's share of a MoE layer's routed rows under expert parallelism
# (ep_load.sh). Variables: dir, P, model. 1/P is a perfectly balanced load; the all-to-all
# of a layer takes as long as its busiest rank.
set terminal pngcairo size 900,480 font ",11"
set output dir."/ep-load.png"
set title sprintf("Rows each of %d ranks receives per MoE layer (%s; dashed: 1/%d, balanced)", P, model, P)
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xlabel "layer"
set ylabel "share of the layer's rows"
set yrange [0:*]
set grid ytics
set key top right
plot for [r=0:P-1] dir."/ep-load.dat" using (column(r + 2)):xtic(1) title sprintf("rank %d", r), \
     1.0 / P with lines dt 2 lc "black" title "1/P"
