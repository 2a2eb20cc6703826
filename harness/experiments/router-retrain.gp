# router-retrain.gp: the domain's routing share per (layer, expert), one heatmap per case.
# Variables: dir, cases, E. Writes router-retrain-heatmaps.png.
n = words(cases)
set terminal pngcairo size 1450,420 font ",11"
set output dir."/router-retrain-heatmaps.png"
set multiplot layout 1,n title sprintf("Routing share on the new domain per (layer, expert): white = balanced 1/E = %.3f, red = over-used (>= 3/E), blue = under-used", 1.0/E)
set palette defined (0 "#2b6cb0", 1 "#ffffff", 3 "#c53030")
set cbrange [0:3.0/E]
set xrange [-0.5:E-0.5]
set xlabel "expert"
set ylabel "MoE layer"
unset colorbox
do for [i=1:n] {
    name = word(cases, i)
    stats dir."/m-".name."/heldout_share.dat" using 1 nooutput
    set yrange [STATS_min-0.5:STATS_max+0.5]
    set ytics 1
    set title name
    if (i == n) { set colorbox; set cbtics ("0" 0, "1/E" 1.0/E, "2/E" 2.0/E, ">=3/E" 3.0/E) }
    plot dir."/m-".name."/heldout_share.dat" matrix every ::1 using ($1-1):($2+STATS_min):3 with image notitle
}
unset multiplot
