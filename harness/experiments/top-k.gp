# top-k.gp: top-k at inference, three panels against k: held-out bits per byte, tokens/s
# and load entropy, one line per language. Variables: dir, cols (column names), E, kt (the
# k the model was trained with).
set terminal pngcairo size 1500,480 font ",11"
set output dir."/top-k.png"
set multiplot layout 1,3 title sprintf("top-k at inference (the model was trained at k = %d, marked)", kt)
set xlabel "k (experts per token)"
set xrange [0.5:E+0.5]
set xtics 1
set grid
set key top right
n = words(cols)
set arrow 1 from kt, graph 0 to kt, graph 1 nohead dt 2 lc "black"
set title "held-out bits per byte (lower is better)"
plot for [i=1:n] dir."/bpb.dat" using 1:(column(i+1)) with linespoints \
    lw (word(cols,i) eq "all" ? 3 : 1) title word(cols,i)
set title "tokens per CPU second (one thread)"
set yrange [0:*]
plot for [i=1:n] dir."/tps.dat" using 1:(column(i+1)) with linespoints \
    lw (word(cols,i) eq "all" ? 3 : 1) title word(cols,i)
set key bottom right
set title "load entropy, bits (mean over MoE layers)"
set yrange [0:log(E)/log(2)*1.05]
plot for [i=1:n] dir."/loadH.dat" using 1:(column(i+1)) with linespoints \
    lw (word(cols,i) eq "all" ? 3 : 1) title word(cols,i), \
    log(E)/log(2) with lines dt 2 lc "black" title "log2 E (balanced)"
unset multiplot
