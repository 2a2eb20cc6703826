#!/bin/sh
# capacity-factor.sh: lesson 07's capacity limit at inference. The demo model (trained
# dropless) runs with moekit --capacity-factor F: each expert takes at most
# ceil(F * T * k / E) of the T tokens of a forward call, first come first served, the rest
# of its assignments are dropped. Per F and language: the fraction of (token, expert)
# assignments dropped and held-out bits per byte; per MoE layer and per position in the
# forward call, the dropped fraction. C only, no training. SIZE=smoke: F = 0.5, 1, 2, E / k on
# 5 fortunes per language.
# Usage (make experiment NAME=capacity-factor): OUT=dir sh harness/experiments/capacity-factor.sh
HERE=$(dirname "$0")
. "$HERE/common.sh"
LOAD0=$(loadavg)
JOBS=${JOBS:-2} # moekit runs at once (each one thread): the kit's 2-core budget
CHUNK=64        # tokens per forward call: the CLI's default (ModelOptions.max_tokens)
E=$(num_experts "$MODEL")
K=$(sed -n 's/.*"num_experts_per_tok"[^0-9]*\([0-9]*\).*/\1/p' "$MODEL/config.json")
# F = E / k: ceil(F * T * k / E) = T, every expert may take every token: nothing dropped
FULL=$(awk -v e="$E" -v k="$K" 'BEGIN { printf "%g", e / k }')
texts=$CORPUS factors="0.5 0.75 1 1.25 1.5 1.75 2 $FULL"
if [ "$SIZE" = smoke ]; then
    texts=$OUT/smoke-corpus factors="0.5 1 2 $FULL"
    smoke_corpus "$CORPUS" "$texts" 5
fi
LANGS=$(langs "$texts")
t_start=$(now)

# every F (0: no limit, the dropless model) and language: JOBS runs at a time. Each writes
# runs/F-LANG.txt (the bpb line and the dropped line) and runs/F-LANG.drops (drops.awk).
mkdir -p "$OUT/runs"
export MOEKIT MODEL texts OUT CHUNK HERE
for f in 0 $factors; do for lang in $LANGS; do echo "$f $lang"; done; done |
    xargs -P "$JOBS" -n 2 sh -c '
        r=$OUT/runs/$0-$1
        "$MOEKIT" perplexity --fortunes --model "$MODEL" --file "$texts/heldout-$1.txt" \
            --capacity-factor "$0" --dump-routing "$r.tsv" >"$r.txt" 2>&1 &&
        awk -v chunk="$CHUNK" -f "$HERE/drops.awk" "$r.tsv" >"$r.drops" &&
        { [ "$0" != 0 ] || awk -f harness/plot/routing_stats.awk "$r.tsv" >"$r.counts"; } && rm -f "$r.tsv"' ||
    { echo "capacity-factor: a moekit perplexity run failed:" >&2; cat "$OUT"/runs/*.txt | grep -v "bits per byte\|dropped" >&2; exit 1; }
t_end=$(now)
times >"$OUT/times.txt"

# cap.dat: "F lang bpb scored_bytes dropped routed" (F 0: no limit; routed from the dump
# when moekit prints no dropped line), then "F all ..." (bytes-weighted bpb, summed counts)
for f in 0 $factors; do
    for lang in $LANGS; do
        awk -v f="$f" -v lang="$lang" -v d="$OUT/runs/$f-$lang.drops" '
            / bits per byte / { gsub(/\(/, ""); bpb = $2; bytes = $6 }
            /assignments dropped/ { dropped = $4; routed = $6; said = 1 }
            END { while ((getline line < d) > 0) { split(line, x, " "); if (x[1] == "L") { dd += x[3]; nn += x[4] } }
                  if (!said) { dropped = 0; routed = nn }
                  if (dd != dropped || nn != routed) { printf "capacity-factor: F %s %s: moekit says %d of %d dropped, the dump %d of %d\n", f, lang, dropped, routed, dd, nn > "/dev/stderr"; exit 1 }
                  printf "%s %s %s %d %d %d\n", f, lang, bpb, bytes, dropped, routed }' "$OUT/runs/$f-$lang.txt" || exit 1
    done >"$OUT/cap-$f.dat"
    awk -v f="$f" '{ n += $3 * $4; b += $4; d += $5; r += $6 } END { printf "%s all %.4f %d %d %d\n", f, n / b, b, d, r }' \
        "$OUT/cap-$f.dat" >>"$OUT/cap-$f.dat"
done
for f in 0 $factors; do cat "$OUT/cap-$f.dat"; done >"$OUT/cap.dat"
rm -f "$OUT"/cap-*.dat

# wide tables for gnuplot, one row per F > 0: dropped % and delta bpb (vs F 0) per
# language; dropped % per MoE layer (all languages); and per position in the forward call
# one row per position, one column per F (all languages and layers)
COLS="$LANGS all"
wide() { # FIELD: drop (dropped %) or delta (bpb minus the dropless bpb)
    for f in $factors; do
        awk -v f="$f" -v what="$1" -v cols="$COLS" '$1 == 0 { b0[$2] = $3 }
            $1 == f { v[$2] = what == "drop" ? 100 * $5 / $6 : $3 - b0[$2] }
            END { n = split(cols, c, " "); line = f; for (i = 1; i <= n; i++) line = line " " v[c[i]]; print line }' "$OUT/cap.dat"
    done
}
wide drop >"$OUT/drop.dat"; wide delta >"$OUT/delta.dat"
for f in $factors; do
    cat "$OUT"/runs/"$f"-*.drops | awk -v f="$f" '$1 == "L" { d[$2] += $3; n[$2] += $4 }
        END { line = f; for (l = 0; l < 1000; l++) if (l in n) line = line " " 100 * d[l] / n[l]; print line }'
done >"$OUT/layer.dat"
LAYERS=$(cat "$OUT"/runs/0-*.drops | awk '$1 == "L" { print $2 }' | sort -n | uniq | tr '\n' ' ')
for p in $(seq 0 $((CHUNK - 1))); do
    line=$p
    for f in $factors; do
        line="$line $(cat "$OUT"/runs/"$f"-*.drops | awk -v p="$p" '$1 == "P" && $2 == p { d += $3; n += $4 }
            END { if (n) printf "%.3f", 100 * d / n; else printf "nan" }')"
    done
    echo "$line"
done >"$OUT/position.dat"
# need share|f: the busiest expert's share of its layer (all languages, dropless), and the
# F = E x share from which nothing would be dropped had it all been one call
need() { cat "$OUT"/runs/0-*.counts | awk -v E="$E" -v what="$1" '{ n[$1, $2] += $3; tot[$1] += $3 }
    END { for (le in n) { split(le, x, SUBSEP); s = n[le] / tot[x[1]]; if (s > m) m = s }
          printf (what == "share" ? "%.3f" : "%.2f"), (what == "share" ? m : m * E) }'; }
# pooled.dat: the dropped % had a language's whole held-out set been one forward call (and
# "all": every language in one): from the dropless routing counts n_e per layer, an expert
# keeps min(n_e, ceil(F * N * k / E)) of a layer's N tokens, whatever the order
pooled() { # F COUNTS-FILES...
    f=$1; shift
    cat "$@" | awk -v f="$f" -v E="$E" -v k="$K" '{ n[$1, $2] += $3; tot[$1] += $3 }
        END { for (le in n) { split(le, x, SUBSEP); cap = f * tot[x[1]] / E; c = int(cap); if (c < cap) c++
                  if (n[le] > c) d += n[le] - c }
              for (l in tot) all += tot[l]; printf "%.3f", 100 * d / all }'
}
for f in $factors; do
    line=$f
    for lang in $LANGS; do line="$line $(pooled "$f" "$OUT/runs/0-$lang.counts")"; done
    echo "$line $(pooled "$f" "$OUT"/runs/0-*.counts)"
done >"$OUT/pooled.dat"
gnuplot -e "dir='$OUT'; cols='$COLS'; layers='$LAYERS'; full=$FULL" "$HERE/capacity-factor.gp"
gnuplot -e "dir='$OUT'; factors='$factors'; chunk=$CHUNK; E=$E; k=$K" "$HERE/capacity-position.gp"

# table FILE FORMAT HEAD: one row per F, the columns of FILE after the first
table() {
    echo "| F | $3 |"
    echo "|---:|$(echo "$3" | awk -F'|' '{ for (i = 1; i <= NF; i++) printf "---:|" }')"
    awk -v fmt="$2" '{ line = "| " $1; for (i = 2; i <= NF; i++) line = line " | " sprintf(fmt, $i); print line " |" }' "$1"
}
head_cols=$(echo $COLS | sed 's/ / | /g')
bpb_rows() { for f in 0 $factors; do
    awk -v f="$f" -v cols="$COLS" '$1 == f { v[$2] = $3 }
        END { n = split(cols, c, " "); line = (f == 0 ? "none" : f); for (i = 1; i <= n; i++) line = line " " v[c[i]]; print line }' "$OUT/cap.dat"
done; }
at() { awk -v f="$1" -v fld="$2" '$1 == f && $2 == "all" { print (fld == "drop" ? sprintf("%.1f%%", 100 * $5 / $6) : $3) }' "$OUT/cap.dat"; }
dbpb() { awk -v f="$1" '$1 == 0 && $2 == "all" { b0 = $3 } $1 == f && $2 == "all" { b = $3 }
    END { printf "%+.3f (%+.1f%%)", b - b0, 100 * (b - b0) / b0 }' "$OUT/cap.dat"; }
# the smallest F of the sweep below E / k whose all-language bpb is within 1% of dropless
near=$(awk -v full="$FULL" '$1 == 0 && $2 == "all" { b0 = $3 } $1 > 0 && $1 < full + 0 && $2 == "all" && ($3 - b0) / b0 < 0.01 { print $1 }' \
    "$OUT/cap.dat" | sort -g | head -1)
first_drop() { # F: the first position in the forward call where more than 10% are dropped
    i=$(echo "$factors" | tr ' ' '\n' | grep -nx "$1" | cut -d: -f1)
    awk -v c="$((i + 1))" '$c > 10 { print $1; exit }' "$OUT/position.dat"; }

{
header "Experiment: capacity factor at inference"
cat <<MD
Lesson 07's MoE layer can limit each expert to **capacity = ceil(F x T x k / E)** rows of
a forward call of T tokens (\`capacity_factor\` F; T x k / E is the average load, so F = 1
means "no expert takes more than its fair share"). Assignments are claimed in token order,
first come first served; a (token, expert) assignment to a full expert is **dropped**: that
expert adds nothing for the token (the residual still carries it). The demo model
(\`$MODEL\`, E = $E, k = $K) was trained dropless. Here it runs with \`moekit perplexity
--fortunes --capacity-factor F\` on the held-out fortunes of \`$texts\` (the top-k
experiment's text and method), F in $(echo $factors | sed 's/ /, /g'); "none" is the model
as trained (no limit). The CLI feeds a sequence $CHUNK tokens per forward call
(\`ModelOptions.max_tokens\`), so T <= $CHUNK and a fortune of 200 bytes is four calls,
each with its own capacity. At F = E / k = $FULL, capacity = T: nothing can be dropped.

moekit counts the dropped assignments over all MoE layers on stderr; the script checks
that count against the routing dump's assignments to expert -1 (\`--dump-routing\`,
counted per layer and per position by \`harness/experiments/drops.awk\`).

## Dropped (token, expert) assignments, % (all MoE layers)

$(table "$OUT/drop.dat" %.1f "$head_cols")

## Held-out bits per byte

$(bpb_rows >"$OUT/bpb-rows.dat"; table "$OUT/bpb-rows.dat" %.4f "$head_cols")

"all" weights every scored byte equally.

![capacity factor](capacity-factor.png)

Left: the share of assignments dropped; middle: the cost in bits per byte against the
dropless model; right: the dropped share per MoE layer, all languages together.

## Dropped %, per MoE layer (all languages)

$(table "$OUT/layer.dat" %.1f "$(echo $LAYERS | awk '{ for (i = 1; i <= NF; i++) printf "%slayer %s", (i > 1 ? " | " : ""), $i }')")

## Where in the forward call the drops fall

![dropped by position](capacity-position.png)

Each line is one F: the share of the assignments of tokens at that position of their
forward call (0 .. $((CHUNK - 1))) that were dropped. The first tokens of a call find every
expert empty; the later ones find their experts full. Dropping is not spread evenly over
the text: it falls on the end of each $CHUNK-token call. More than 10% are dropped from position
$(for f in $factors; do [ "$f" = "$FULL" ] && continue; p=$(first_drop "$f"); printf 'F = %s: %s; ' "$f" "${p:-never}"; done | sed 's/; $/./')

## What to conclude

- At F = 1, the "fair share" capacity, $(at 1 drop) of the assignments are dropped (all
  languages), and bits per byte change by $(dbpb 1) against the dropless model; at
  F = 2, $(at 2 drop) and $(dbpb 2). $(if [ -n "$near" ]; then echo "The smallest F of this sweep within 1% of the dropless bits per byte is $near."; else echo "No F of this sweep below E / k = $FULL comes within 1% of the dropless bits per byte."; fi)
  At F = E / k = $FULL nothing is dropped and the bits per byte are the dropless ones ($(at "$FULL" bpb) against $(at 0 bpb)).
- Short calls or the router? Had the whole held-out set been one forward call (the last table, computed from the dropless routing counts: an expert keeps
  min(its assignments, capacity), whatever the order), F = 1 would drop $(awk '$1 == 1 { printf "%.1f%%", $NF }' "$OUT/pooled.dat") with
  all languages in one call, against $(at 1 drop) call by call. In one call, nothing is dropped only once F
  reaches E times the largest expert's share of its layer, and the demo model's busiest expert takes $(need share) of its layer's assignments
  (all languages as one batch: F >= $(need f) would be needed), against the fair share 1/E = $(awk -v e="$E" 'BEGIN { printf "%.3f", 1 / e }').
  A capacity near 1 assumes a router whose load is close to even (Switch Transformers
  trained with F = 1 to 1.25, lesson 07); $(awk -v f="$(need f)" 'BEGIN { if (f <= 1.5) print "this router'"'"'s is, over the whole set (its balance loss, the model card), so the drops call by call come from short calls: a call of a few dozen tokens is a small sample of the routing"; else print "this router'"'"'s is not (the balance-losses experiment shows what training does to that)" }').
- The model never saw dropped assignments in training: it was trained dropless, so every
  drop is a mixture it never produced. A model trained with a capacity learns to live
  with some drops (the residual carries the token); this measures a dropless model under
  a limit it was not trained for.
- The per-position figure is first-come-first-served made visible: with capacity claimed
  in token order, the end of every call pays for the beginning. Claiming in another
  order (by routing weight, say) would change which assignments are dropped, not how
  many: each expert keeps min(its assignments, capacity) whatever the order.

Dropped % had the whole held-out set of a language been one forward call (all: every
language in one), from the dropless run's routing counts:

$(table "$OUT/pooled.dat" %.1f "$head_cols")

## Measured

Whole run: $(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.0f", b - a }') s wall time with $JOBS runs at a time, $(cpu_seconds) s of CPU time (user + system); load
average at the end $(loadavg). Raw rows (F, language, bpb, scored bytes, dropped, routed
assignments) are in \`cap.dat\`, each run's output in \`runs/F-LANG.txt\` and its drops per
layer and position in \`runs/F-LANG.drops\`.
MD
} >"$OUT/README.md"
echo "capacity-factor: $OUT/README.md, $OUT/capacity-factor.png, $OUT/capacity-position.png"
