# mpi.sh (kit test section): build/moekit-mpi, the CLI with the experts spread over MPI
# ranks (harness/cli/mpi/moekit_mpi.c, lesson 12's solution), against the single-process
# CLI: the same logits (|diff| <= 1e-5 * max(1, |logit|)) and the same greedy ids for P =
# 1, 2, 4 ranks, P = 3, which does not divide the demo model's 8 experts, and P = 8, one
# expert per rank (oversubscribed: more ranks than cores); and each
# error (more ranks than experts, a rank that cannot read its model, ranks with different
# configs) ends the job with one line from rank 0, within a time limit.
# Sourced by kit_test.sh (ok, bad, $LOG, $OPTS, $CLI). "skip" without Open MPI.
echo "the CLI across MPI ranks (moekit-mpi)"
MPI_LOG=$LOG/mpi
rm -rf "$MPI_LOG" && mkdir -p "$MPI_LOG"
if ! command -v mpirun >/dev/null 2>&1 || ! command -v mpicc >/dev/null 2>&1; then
    echo "  skip    moekit-mpi: no MPI (sudo apt-get install -y openmpi-bin libopenmpi-dev)"
elif [ -z "${CLI:-}" ]; then
    bad "the CLI was not built, nothing to compare moekit-mpi with"
elif ! $MAKE -s --no-print-directory $OPTS SRC=solutions cli-mpi-build >"$MPI_LOG/build.txt" 2>&1; then
    bad "moekit-mpi does not build" "$MPI_LOG/build.txt"
else
    MPI_CLI=$($MAKE -s --no-print-directory $OPTS SRC=solutions print-cli-mpi-bin)
    MPIRUN="mpirun --oversubscribe"
    [ "$(id -u)" -eq 0 ] && MPIRUN="$MPIRUN --allow-run-as-root"
    # max_rel A B: max over the float32 logits of |a - b| / max(1, |a|), and the count
    max_rel() {
        od -An -v -f "$1" | tr -s ' ' '\n' | grep . >"$MPI_LOG/a.txt"
        od -An -v -f "$2" | tr -s ' ' '\n' | grep . >"$MPI_LOG/b.txt"
        paste "$MPI_LOG/a.txt" "$MPI_LOG/b.txt" | awk '
            { d = $1 - $2; if (d < 0) d = -d; s = $1 < 0 ? -$1 : $1; if (s < 1) s = 1
              if (d / s > m) m = d / s; n++ } END { printf "%d %.3g\n", n, m }'
    }
    ids=$(seq -s ' ' 10 73)
    "$CLI" logits --model data/model --ids "$ids" --out "$MPI_LOG/one.bin" 2>"$MPI_LOG/one.txt"
    "$CLI" generate --model data/model --ids "1 2 3" -n 24 --greedy --print-ids \
        >"$MPI_LOG/one-ids.txt" 2>/dev/null
    for P in 1 2 3 4 8; do
        timeout 120 $MPIRUN -np $P "$MPI_CLI" logits --model data/model --ids "$ids" \
            --out "$MPI_LOG/p$P.bin" >"$MPI_LOG/p$P.txt" 2>&1
        rc=$?
        set -- $(max_rel "$MPI_LOG/one.bin" "$MPI_LOG/p$P.bin")
        timeout 120 $MPIRUN -np $P "$MPI_CLI" generate --model data/model --ids "1 2 3" -n 24 \
            --greedy --print-ids >"$MPI_LOG/p$P-ids.txt" 2>/dev/null
        what="P = $P ranks, 8 experts$( [ "$P" = 3 ] && echo ' (P does not divide E)')$( [ "$P" = 8 ] && echo ' (one each, oversubscribed)')"
        if [ "$rc" -eq 0 ] && [ "${1:-0}" -eq $((64 * 256)) ] &&
            awk -v m="${2:-1}" 'BEGIN { exit !(m <= 1e-5) }' &&
            cmp -s "$MPI_LOG/one-ids.txt" "$MPI_LOG/p$P-ids.txt" && [ -s "$MPI_LOG/one-ids.txt" ]; then
            ok "moekit-mpi $what: 64 x 256 logits within $2 (relative) of moekit's, the same greedy ids"
        else
            bad "moekit-mpi $what: exit $rc, $1 logits, max relative difference $2, or other greedy ids" "$MPI_LOG/p$P.txt"
        fi
    done
    # fails NAME WANT ARGS...: the job ends (exit != 0) in time, and rank 0's line says WANT
    fails() {
        name=$1 want=$2
        shift 2
        timeout 120 $MPIRUN "$@" >"$MPI_LOG/$name.txt" 2>&1
        rc=$?
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep "^moekit-mpi: " "$MPI_LOG/$name.txt" | grep -qF "$want"; then
            ok "moekit-mpi $name: \"$want\", exit $rc"
        else
            bad "moekit-mpi $name: exit $rc (124: it hung), no line \"$want\"" "$MPI_LOG/$name.txt"
        fi
    }
    args="logits --ids 1 --out /dev/null"
    fails "with more ranks than experts" "9 ranks for 8 experts" -np 9 "$MPI_CLI" $args --model data/model
    fails "with a rank that cannot read its model" "rank 1 of 2: $MPI_LOG/none/config.json" \
        -np 1 "$MPI_CLI" $args --model data/model : -np 1 "$MPI_CLI" $args --model "$MPI_LOG/none"
    fails "with different configs" "the ranks loaded different configs" \
        -np 1 "$MPI_CLI" $args --model data/model : -np 1 "$MPI_CLI" $args --model data/models/qwen3-moe-tiny
fi
