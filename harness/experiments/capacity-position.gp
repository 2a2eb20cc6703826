# capacity-position.gp: the dropped fraction by position in the forward call (the CLI
# feeds chunk tokens per call; capacity is claimed in token order), one line per F, all
# languages and MoE layers. Variables: dir, factors, chunk, E, k. Writes capacity-position.png.
set terminal pngcairo size 1100,520 font ",11"
set output dir."/capacity-position.png"
set title sprintf("Dropped assignments by position in the forward call (%d tokens a call, first come first served; E = %d, k = %d)", chunk, E, k)
set xlabel "position of the token in its forward call"
set ylabel "assignments dropped, %"
set xrange [-0.5:chunk-0.5]
set yrange [0:100]
set grid
set key top left
n = words(factors)
plot for [i=1:n] dir."/position.dat" using 1:(column(i+1)) with lines lw 2 title "F = ".word(factors,i)
