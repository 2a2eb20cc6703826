# languages.gp: per-language expert usage, one panel per MoE layer. Variables: dir, E, langs.
stats dir."/share-all.dat" using 1 nooutput
n = STATS_records
set terminal pngcairo size 1100,(220*n+60) font ",10"
set output dir."/routing-languages.png"
set multiplot layout n,1 title "Which experts each language uses (share of the layer's routed tokens)"
set xrange [-0.5:E-0.5]
set yrange [0:*]
set key outside right
set grid ytics
set linetype 1 lc "#2b6cb0"
set linetype 2 lc "#c53030"
set linetype 3 lc "#2f855a"
set linetype 4 lc "#d69e2e"
set linetype 5 lc "#6b46c1"
do for [i=0:n-1] {
    layer = real(system(sprintf("awk 'NR==%d{print $1}' %s/share-all.dat", i + 1, dir)))
    set title sprintf("layer %d", layer)
    set xlabel (i == n-1 ? "expert" : "")
    plot for [lang in langs] dir."/share-".lang.".dat" matrix every ::1:i::i \
         using ($1-1):3 with linespoints pt 7 ps 0.6 title lang, \
         1.0/E with lines dt 2 lc "gray" title "1/E"
}
unset multiplot
