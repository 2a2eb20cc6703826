# expert-importance-scatter.gp: one point per (layer, expert): its load share in the
# unchanged model (x) against the change in held-out bits per byte with it switched off
# (y), one panel per language. Variables: dir, cols, layers (the MoE layers), E. Writes expert-importance-scatter.png.
n = words(cols)
set terminal pngcairo size 2100,460 font ",11"
set output dir."/expert-importance-scatter.png"
set multiplot layout 1,n title "Load (share of the layer's top-k assignments) against importance (delta bpb with the expert off); the dashed line is 1/E, the balanced share"
set xlabel "load share"
set ylabel "delta bits per byte"
set grid
set key top left
set xrange [0:*]
set xtics 0.1
set arrow 1 from 1.0/E, graph 0 to 1.0/E, graph 1 nohead dt 2 lc "black"
do for [i=1:n] {
    lang = word(cols, i)
    set title lang
    if (i > 1) { unset key }
    plot for [j=1:words(layers)] dir."/importance.dat" \
        using ((stringcolumn(3) eq lang && $1 == word(layers, j) + 0) ? $4 : 1/0):5 \
        with points pt 7 ps 1.2 title "layer ".word(layers, j)
}
unset multiplot
