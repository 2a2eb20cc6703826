# weights.sh (kit test section): the typed weights (harness/src/weights.h, typed_model.h):
# conversions, quantized blocks, each kernel against plain C, each type's product against
# float32, and the typed model's logits against the lessons' float32 model on every test
# checkpoint and the demo model; with the vector kernels, with the plain C ones
# (MOEKIT_KERNELS=scalar), and built without -march=native (NATIVE=0: the AVX2 kernels
# are still chosen at run time).
# Sourced by kit_test.sh (ok, bad, $LOG, $OPTS, $MAKE).

echo "typed weights: kernels, quantization, the typed model"

# weights_run NAME MAKE-ARGS... (ENV from $WENV): builds weights_test, runs it
weights_run() {
    name=$1
    shift
    if $MAKE -s --no-print-directory $OPTS SRC=solutions "$@" weights-test-build \
        >"$LOG/weights-$name.txt" 2>&1; then
        bin=$($MAKE -s --no-print-directory $OPTS SRC=solutions "$@" print-weights-test)
        if env $WENV "$bin" data/models/*/ data/model >"$LOG/weights-$name.txt" 2>&1; then
            ok "typed weights, $name: $(tail -1 "$LOG/weights-$name.txt")"
        else
            bad "typed weights, $name: $(tail -1 "$LOG/weights-$name.txt")" "$LOG/weights-$name.txt"
        fi
    else
        bad "typed weights, $name: does not build" "$LOG/weights-$name.txt"
    fi
}

flavor=$(basename "${CC:-cc}")${SANITIZE:+-san}
WENV= weights_run "vector kernels"
WENV=MOEKIT_KERNELS=scalar weights_run "plain C kernels (MOEKIT_KERNELS=scalar)"
WENV= weights_run "without -march=native (NATIVE=0)" NATIVE=0 BUILD="build/$flavor-base"

# moekit quantize: a checkpoint written in q8_0 / q4_0 blocks must give, loaded as it lies
# (--weights auto), the very logits of --weights q8_0 / q4_0 on the original (the same
# quantizer on the same rows); a tampered block must change them (the check can fail); and
# the refusals, one line each.
echo "moekit quantize: a checkpoint in blocks"
if ! $MAKE -s --no-print-directory $OPTS SRC=solutions cli-build >"$LOG/quantize-build.txt" 2>&1; then
    bad "moekit quantize: the CLI does not build" "$LOG/quantize-build.txt"
else
    qcli=$($MAKE -s --no-print-directory $OPTS SRC=solutions print-cli-bin)
    qdir=$LOG/quantized
    rm -rf "$qdir" && mkdir -p "$qdir"
    # quantize_same MODEL TYPE: "" when the quantized checkpoint's logits are the same
    quantize_same() {
        out=$qdir/$(basename "$1")-$2
        ids=$(seq 1 11 | awk -v V="$(sed -n 's/.*"vocab_size": *\([0-9]*\).*/\1/p' "$1/config.json")" \
              '{ printf "%d ", ($1 * 37) % V }')
        "$qcli" quantize --type "$2" "$1" "$out" 2>>"$LOG/quantize.txt" &&
            "$qcli" logits --model "$1" --weights "$2" --ids "$ids" --out "$out.want" 2>>"$LOG/quantize.txt" &&
            "$qcli" logits --model "$out" --weights auto --ids "$ids" --out "$out.got" 2>>"$LOG/quantize.txt" &&
            cmp -s "$out.want" "$out.got" && return 0
        echo "$1 $2: the logits differ or a step failed" >>"$LOG/quantize.txt"
        return 1
    }
    n=0 fails=0
    for m in data/models/*/ data/model; do
        for t in q8_0 q4_0; do
            n=$((n + 1))
            quantize_same "${m%/}" "$t" || fails=$((fails + 1))
        done
    done
    if [ "$fails" -eq 0 ]; then
        ok "moekit quantize: $n checkpoints x types, logits equal to --weights on the original"
    else
        bad "moekit quantize: $fails of $n differ" "$LOG/quantize.txt"
    fi
    # the check can fail: one q8_0 scale in the demo model's first matrix changed (its high
    # byte to 0x3c, a finite scale near 1)
    q=$qdir/model-q8_0
    cp -R "$q" "$q-tampered"
    # the first U8 tensor's offset in the file: 8 bytes of header length, the JSON header,
    # then the data (no Python here: the README's install line has none)
    hdr=$(od -An -tu8 -N8 "$q/model.safetensors" | tr -d ' ')
    first=$(tail -c +9 "$q/model.safetensors" | head -c "$hdr" | awk 'BEGIN { RS = "}" }
        /"dtype":"U8"/ { sub(/.*"data_offsets":\[/, ""); v = $0 + 0; if (m == "" || v < m) m = v }
        END { print m }')
    off=
    [ -n "$first" ] && off=$((8 + hdr + first))
    if [ -n "$off" ] && printf '<' | dd of="$q-tampered/model.safetensors" bs=1 seek=$((off + 1)) conv=notrunc 2>/dev/null &&
        "$qcli" logits --model "$q-tampered" --weights auto --ids "1 2 3" --out "$q.tampered" 2>/dev/null &&
        "$qcli" logits --model "$q" --weights auto --ids "1 2 3" --out "$q.untampered" 2>/dev/null &&
        ! cmp -s "$q.tampered" "$q.untampered"; then
        ok "moekit quantize: a tampered q8_0 scale changes the logits (the comparison can fail)"
    else
        bad "moekit quantize: a tampered block went unnoticed" "$LOG/quantize.txt"
    fi
    # refusals: one line naming the file or argument, non-zero exit
    refuse() { # WHAT EXPECTED-TEXT COMMAND...
        what=$1 want=$2
        shift 2
        if "$@" >"$LOG/refuse.txt" 2>&1; then
            bad "moekit quantize: $what was accepted" "$LOG/refuse.txt"
        elif grep -q "$want" "$LOG/refuse.txt"; then
            ok "moekit quantize: $what: \"$(grep -m1 "$want" "$LOG/refuse.txt" | cut -c1-90)\""
        else
            bad "moekit quantize: $what: no \"$want\"" "$LOG/refuse.txt"
        fi
    }
    refuse "a quantized input" "quantized already" "$qcli" quantize --type q4_0 "$q" "$qdir/again"
    refuse "another --weights type on blocks" "is q8_0 already" \
        "$qcli" logits --model "$q" --weights q4_0 --ids "1" --out "$qdir/x"
    refuse "the input as output" "another directory" "$qcli" quantize --type q8_0 data/model data/model/
    refuse "--type q5" "give q8_0 or q4_0" "$qcli" quantize --type q5 data/model "$qdir/q5"
    # the typed model's logits do not depend on the threads: a MoE layer's experts run on
    # the threads at once and are summed in expert order (typed_model.c); --top-k 8 routes
    # more rows than its scratch holds, so the experts also run in batches
    ids=$(seq 1 40 | awk '{ printf "%d ", ($1 * 37) % 256 }')
    same=0
    for w in q8_0 bf16; do
        for k in 2 8; do
            OMP_NUM_THREADS=1 "$qcli" logits --model data/model --weights "$w" --top-k "$k" \
                --ids "$ids" --out "$qdir/t1.bin" 2>>"$LOG/quantize.txt" &&
                OMP_NUM_THREADS=2 "$qcli" logits --model data/model --weights "$w" --top-k "$k" \
                    --ids "$ids" --out "$qdir/t2.bin" 2>>"$LOG/quantize.txt" &&
                cmp -s "$qdir/t1.bin" "$qdir/t2.bin" && same=$((same + 1))
        done
    done
    if [ "$same" -eq 4 ]; then
        ok "typed model: the same logits, bit for bit, on 1 and 2 threads (q8_0 and bf16, top-k 2 and 8)"
    else
        bad "typed model: the logits differ between 1 and 2 threads ($same of 4 runs the same)" \
            "$LOG/quantize.txt"
    fi
fi
