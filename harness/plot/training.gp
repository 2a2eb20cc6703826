# training.gp: loss and load-balancing aux loss per step (train_log.tsv: step loss
# aux_loss lr tokens_per_s, with a header). Variables: dir, log.
set terminal pngcairo size 1000,480 font ",11"
set output dir."/training-curves.png"
set title "Training: next-byte loss and load-balancing aux loss"
set xlabel "step"
set ylabel "loss (nats per byte)"
set y2label "aux loss (k = balanced)"
set ytics nomirror
set y2tics
set grid
set key top right
plot log using 1:2 every ::1 with lines lw 2 lc "#2b6cb0" title "loss", \
     log using 1:3 every ::1 axes x1y2 with lines lw 2 lc "#c53030" title "aux loss"
