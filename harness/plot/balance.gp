# balance.gp: load balance per MoE layer: the busiest expert's load over the mean (1 is
# perfect) and the coefficient of variation of the loads (0 is perfect). Variables: dir.
set terminal pngcairo size 900,480 font ",11"
set output dir."/routing-balance.png"
set title "Load balance per MoE layer (1.0 max/mean and 0 CV are perfectly balanced)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xlabel "layer"
set yrange [0:*]
set grid ytics
set key top left
plot dir."/balance.dat" using 2:xtic(1) title "max / mean load" lc "#c53030", \
     "" using 3 title "coefficient of variation" lc "#2b6cb0", \
     1 with lines dt 2 lc "black" title "max/mean = 1 (balanced)"
