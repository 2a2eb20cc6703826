# heatmap.gp: layer x expert share of routed tokens. White is the balanced share 1/E,
# blue under-used, red over-used (clipped at 3/E). Variables: dir, E, model.
set terminal pngcairo size 1100,520 font ",11"
set output dir."/routing-heatmap.png"
set title sprintf("Share of routed tokens per expert (%s)\nwhite = balanced share 1/E = %.3f, red = over-used, blue = under-used", model, 1.0/E)
stats dir."/share-all.dat" using 1 nooutput
n = STATS_records
set xlabel "expert"
set ylabel "layer"
set xrange [-0.5:E-0.5]
set yrange [-0.5:n-0.5]
set ytics 1
set cbrange [0:3.0/E]
set cblabel "share of the layer's top-k assignments"
set palette defined (0 "#2b6cb0", 1 "#ffffff", 3 "#c53030")
set cbtics ("0" 0, "1/E" 1.0/E, "2/E" 2.0/E, ">=3/E" 3.0/E)
layer(row) = real(system(sprintf("awk 'NR==%d{print $1}' %s/share-all.dat", row + 1, dir)))
set for [i=0:n-1] ytics add (sprintf("%d", layer(i)) i)
plot dir."/share-all.dat" matrix every ::1 using ($1-1):2:3 with image notitle
