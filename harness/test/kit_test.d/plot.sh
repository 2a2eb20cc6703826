# plot.sh (kit test section): make plot's pipeline on a test checkpoint: the routing dump
# of `moekit perplexity`, the awk statistics and the gnuplot PNGs.
echo "routing plots (gnuplot)"
if ! command -v gnuplot >/dev/null; then
    bad "gnuplot is missing: apt-get install -y gnuplot-nox"
elif [ -z "${CLI:-}" ]; then
    bad "the CLI was not built, no plots"
else
    rm -rf "$LOG/plots"
    if sh harness/plot/plot.sh "$CLI" data/models/qwen3-moe-tiny data/corpus "$LOG/plots" \
        >"$LOG/plots.txt" 2>&1 && [ "$(ls "$LOG"/plots/routing-*.png | wc -l)" -eq 3 ] &&
        [ "$(wc -l <"$LOG/plots/share-all.dat")" -eq 2 ]; then
        ok "make plot's pipeline: 3 routing PNGs, 2 MoE layers x 8 experts of shares"
    else
        bad "the plot pipeline" "$LOG/plots.txt"
    fi
fi
