# expert-importance.gp: per (layer, expert), one column per language: top row, the change
# in held-out bits per byte with that expert switched off; bottom row, its share of the
# layer's top-k assignments in the unchanged model. Variables: dir, cols (languages and
# "all"), E, dmax (the largest |change|). Writes expert-importance-heatmaps.png.
n = words(cols)
set terminal pngcairo size 2300,820 font ",11"
set output dir."/expert-importance-heatmaps.png"
set multiplot layout 2,n title "One expert switched off at a time (--disable-expert L:E): top, change in held-out bits per byte (red: worse); bottom, that expert's load in the unchanged model"
set xrange [-0.5:E-0.5]
set xtics 1
set ytics 1
set xlabel "expert"
set ylabel "MoE layer"
unset colorbox
set palette defined (-1 "#2b6cb0", 0 "#ffffff", 1 "#c53030")
set cbrange [-dmax:dmax]
do for [i=1:n] {
    f = dir."/delta-".word(cols, i).".dat"
    stats f using 1 nooutput
    set yrange [STATS_min-0.5:STATS_max+0.5]
    set title word(cols, i)." : delta bpb"
    if (i == n) { set colorbox; set cbtics auto }
    plot f matrix every ::1 using ($1-1):($2+STATS_min):3 with image notitle, \
         f matrix every ::1 using ($1-1):($2+STATS_min):(sprintf("%.2f", $3)) with labels font ",7" notitle
}
unset colorbox
set palette defined (0 "#2b6cb0", 1 "#ffffff", 3 "#c53030")
set cbrange [0:3.0/E]
do for [i=1:n] {
    f = dir."/share-".word(cols, i).".dat"
    stats f using 1 nooutput
    set yrange [STATS_min-0.5:STATS_max+0.5]
    set title word(cols, i)." : load share"
    if (i == n) { set colorbox; set cbtics ("0" 0, "1/E" 1.0/E, "2/E" 2.0/E, ">=3/E" 3.0/E) }
    plot f matrix every ::1 using ($1-1):($2+STATS_min):3 with image notitle, \
         f matrix every ::1 using ($1-1):($2+STATS_min):(sprintf("%.2f", $3)) with labels font ",7" notitle
}
unset multiplot
