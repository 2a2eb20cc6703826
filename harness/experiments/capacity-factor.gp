# capacity-factor.gp: three panels against the capacity factor F: the fraction of (token,
# expert) assignments dropped per language, the change in held-out bits per byte from the
# dropless model per language, and the dropped fraction per MoE layer (all languages).
# Variables: dir, cols (languages and "all"), layers (the MoE layers), full (E / k: the F
# from which nothing can be dropped). Writes capacity-factor.png.
set terminal pngcairo size 1500,480 font ",11"
set output dir."/capacity-factor.png"
set multiplot layout 1,3 title "Capacity factor F at inference: each expert takes at most ceil(F T k / E) of a forward call's T tokens"
set xlabel "capacity factor F"
set logscale x 2
set xtics (0.5, 0.75, 1, 1.25, 1.5, 2, 4)
set xrange [0.45:full*1.1]
set grid
n = words(cols)
set title "(token, expert) assignments dropped, %"
set yrange [0:*]
set key top right
plot for [i=1:n] dir."/drop.dat" using 1:(column(i+1)) with linespoints \
    lw (word(cols,i) eq "all" ? 3 : 1) title word(cols,i)
set title "held-out bits per byte minus the dropless model's"
plot for [i=1:n] dir."/delta.dat" using 1:(column(i+1)) with linespoints \
    lw (word(cols,i) eq "all" ? 3 : 1) title word(cols,i)
set title "dropped %, per MoE layer (all languages)"
plot for [i=1:words(layers)] dir."/layer.dat" using 1:(column(i+1)) with linespoints \
    title "layer ".word(layers,i)
unset multiplot
