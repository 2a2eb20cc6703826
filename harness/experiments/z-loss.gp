# z-loss.gp: the router z-loss runs over training. Variables: dir, coefs, layers, from.
#   z-loss-logits.png   per MoE layer: mean max |router logit| (solid), mean logsumexp
#                       (dashed), one colour per --z-loss coefficient (router_log.tsv)
#   z-loss-loss.png     per-step training loss (thin) and its trailing 10-step mean (thick),
#                       from step `from` (the first steps' fall would flatten the rest)
n = words(coefs)
L = words(layers)
set terminal pngcairo size 1500,460 font ",11"
set output dir."/z-loss-logits.png"
set multiplot layout 1,L title "Router logit magnitude over training: mean max |logit| (solid) and mean logsumexp (dashed), per MoE layer"
set xlabel "step"
set ylabel "logit"
set grid
set key below horizontal maxrows 2 font ",9"
do for [j=1:L] {
    l = word(layers, j)
    set title "layer ".l
    plot for [i=1:n] dir."/z".word(coefs,i)."/router_log.tsv" using 1:(column("maxabs_".l)) \
             with lines lw 2 lc i title "max |logit|, z-loss ".word(coefs,i), \
         for [i=1:n] dir."/z".word(coefs,i)."/router_log.tsv" using 1:(column("lse_".l)) \
             with lines lw 2 dt 2 lc i title "logsumexp, z-loss ".word(coefs,i)
}
unset multiplot

set terminal pngcairo size 1000,500 font ",11"
set output dir."/z-loss-loss.png"
set title sprintf("Training loss per step (thin) and its trailing 10-step mean (thick), from step %d", from)
set ylabel "loss (nats/byte)"
set key inside top right horizontal maxrows 1 font ",11"
set xrange [from:*]
# trailing mean of the last 10 values, kept in a ring of variables (reset at step 1)
avg10(x) = (b9 = b8, b8 = b7, b7 = b6, b6 = b5, b5 = b4, b4 = b3, b3 = b2, b2 = b1, b1 = b0, b0 = x, \
            (b0 + b1 + b2 + b3 + b4 + b5 + b6 + b7 + b8 + b9) / 10.0)
init(x) = (b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = b8 = b9 = x)
plot for [i=1:n] dir."/z".word(coefs,i)."/router_log.tsv" using 1:($1 >= from ? $2 : NaN) with lines lw 1 lc i notitle, \
     for [i=1:n] dir."/z".word(coefs,i)."/router_log.tsv" using 1:($1 == 1 ? init($2) : 0, m = avg10($2), $1 >= from + 9 ? m : NaN) \
         with lines lw 3 lc i title "z-loss ".word(coefs,i)
