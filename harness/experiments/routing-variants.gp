# routing-variants.gp: the routers side by side. Variables: dir, variants, Es (each variant's E).
#   routing-variants-bpb.png        held-out bits per byte against MoE-layer FLOPs per token
#   routing-variants-heatmaps.png   one layer x expert heatmap of held-out load per variant
#   routing-variants-training.png   training loss (train_log.tsv) per variant
#   routing-variants-causal.png     causal minus teacher-forced bits per byte, per variant
n = words(variants)
set terminal pngcairo size 900,520 font ",11"
set output dir."/routing-variants-bpb.png"
set title "Held-out bits per byte against the MoE layer's forward FLOPs per token"
set xlabel "MoE layer forward MFLOPs per token"
set ylabel "held-out bits per byte"
set grid
set offsets graph 0.08, graph 0.15, graph 0.1, graph 0.1
plot dir."/summary.dat" using ($3/1e6):5 with points pt 7 ps 2 lc "#2b6cb0" notitle, \
     "" using ($3/1e6):5:1 with labels offset 0,1.2 notitle
set offsets 0, 0, 0, 0

set terminal pngcairo size 300*n+200,420 font ",11"
set output dir."/routing-variants-heatmaps.png"
set multiplot layout 1,n title "Held-out load share per (layer, expert), in fair shares 1/E of that variant's E: white = balanced, red = over-used (>= 3/E), blue = under-used"
set palette defined (0 "#2b6cb0", 1 "#ffffff", 3 "#c53030")
set cbrange [0:3]
set xlabel "expert"
set ylabel "MoE layer"
unset grid
unset colorbox
do for [i=1:n] {
    v = word(variants, i)
    Ev = word(Es, i) + 0
    stats dir."/".v."/heldout_share.dat" using 1 nooutput
    set yrange [STATS_min-0.5:STATS_max+0.5]
    set xrange [-0.5:Ev-0.5]
    set ytics 1
    set xtics 0, (Ev > 8 ? 2 : 1)
    set title v
    if (i == n) { set colorbox; set cbtics ("0" 0, "1/E" 1, "2/E" 2, ">=3/E" 3) }
    plot dir."/".v."/heldout_share.dat" matrix every ::1 using ($1-1):($2+STATS_min):($3*Ev) with image notitle
}
unset multiplot
set xtics autofreq

set terminal pngcairo size 900,480 font ",11"
set output dir."/routing-variants-training.png"
set title "Training loss (mean of each logging window)"
set autoscale
set xrange [*:*]
set yrange [*:*]
set ytics auto
unset colorbox
set grid
set xlabel "step"
set ylabel "loss (nats/byte)"
set key top right
plot for [i=1:n] dir."/".word(variants,i)."/train_log.tsv" using 1:2 every ::1 with linespoints lw 2 title word(variants,i)

set terminal pngcairo size 900,480 font ",11"
set output dir."/routing-variants-causal.png"
set title "What scoring the whole fortune in one pass hides: causal minus teacher-forced bits per byte"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.8
set xrange [*:*]
set yrange [*:*]
set xlabel ""
set ylabel "bits per byte (same fortunes)"
unset key
set grid ytics
set xzeroaxis lt -1
plot dir."/summary.dat" using ($6-$7):xtic(1) lc "#c53030", \
     "" using 0:($6-$7):(sprintf("%+.3f", $6-$7)) with labels offset 0,0.8 notitle
