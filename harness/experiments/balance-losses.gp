# balance-losses.gp: the balance methods side by side. Variables: dir, methods, E.
#   balance-heatmaps.png   one layer x expert heatmap of held-out routing shares per method
#   balance-maxmean.png    max/mean expert load per MoE layer, one bar per method
#   balance-training.png   the largest expert share of one layer over training (train_log.tsv)
n = words(methods)
set terminal pngcairo size 1700,420 font ",11"
set output dir."/balance-heatmaps.png"
set multiplot layout 1,n title sprintf("Held-out routing share per (layer, expert): white = balanced 1/E = %.3f, red = over-used (>= 3/E), blue = under-used", 1.0/E)
set palette defined (0 "#2b6cb0", 1 "#ffffff", 3 "#c53030")
set cbrange [0:3.0/E]
set xrange [-0.5:E-0.5]
set xlabel "expert"
set ylabel "MoE layer"
unset colorbox
do for [i=1:n] {
    m = word(methods, i)
    stats dir."/".m."/heldout_share.dat" using 1 nooutput
    set yrange [STATS_min-0.5:STATS_max+0.5]
    set ytics 1
    set title m
    if (i == n) { set colorbox; set cbtics ("0" 0, "1/E" 1.0/E, "2/E" 2.0/E, ">=3/E" 3.0/E) }
    plot dir."/".m."/heldout_share.dat" matrix every ::1 using ($1-1):($2+STATS_min):3 with image notitle
}
unset multiplot

set terminal pngcairo size 900,480 font ",11"
set output dir."/balance-maxmean.png"
set title "Busiest expert's load over the mean load, per MoE layer (1 = balanced, E = one expert takes all)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set auto x
set xrange [*:*]
set yrange [0:*]
set ytics auto
set xlabel "MoE layer"
set ylabel "max / mean load"
set grid ytics
set key top left
plot for [i=1:n] dir."/".word(methods,i)."/balance.dat" using 2:xtic(1) title word(methods,i), \
     1 with lines dt 2 lc "black" title "balanced"

set output dir."/balance-training.png"
set title "Largest share of one expert in one layer, during training (1/E balanced, 1/k collapsed)"
unset style
set style data linespoints
set xlabel "step"
set ylabel "max expert share"
set yrange [0:*]
set key top right
plot for [i=1:n] dir."/".word(methods,i)."/train_log.tsv" using 1:6 every ::1 with lines lw 2 title word(methods,i), \
     1.0/E with lines dt 2 lc "black" title "1/E"
