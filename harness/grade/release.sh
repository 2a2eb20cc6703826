#!/bin/sh
# release.sh: the kit as students get it (`make student-release`): a tarball without
# solutions/ and without what would give them away.
#
# Left out: solutions/; harness/mistakes/ (diffs against the solutions); harness/grade/
# (the grader builds against the solutions); the kit's own tests (harness/test/kit_test.d/,
# harness/test/hostile/, .ci/); build/, .git/ and editor leftovers. harness/test/kit_test.sh becomes a stub, so
# that `make test` tests the student's lessons (`make check`) instead of failing for want
# of solutions/; harness/src/typed_model.c becomes a stand-in (the typed forward pass
# repeats lessons 04-08), so that `--weights` says it is not in the release, and so does
# the second half of harness/src/weights.c (its quantizers and kernels are lesson 13's).
#
# Before it writes the tarball it checks that no file left in holds a line of a solution
# that is not also in the skeletons or the API header: not the READMEs, and not the hints
# (lessons/*/hints.md, shipped for `make hint`), which describe the code and never quote it.
# MODE=hard gives out the hard-mode skeletons (harness/student/hard.awk: each function to
# write reduced to its signature and contract), made from the same skeletons.
# Environment: RELEASE (the tarball to write), MODE (normal or hard), MAKE.
set -u
RELEASE=${RELEASE:-build/release/moekit-student.tar.gz}
MODE=${MODE:-normal}
case $MODE in normal | hard) ;; *) echo "make student-release: MODE must be normal or hard, not '$MODE'" >&2; exit 2 ;; esac
case $RELEASE in *.tar.gz | *.tgz) ;; *) echo "make student-release: RELEASE must end in .tar.gz or .tgz" >&2; exit 2 ;; esac
stage=build/release/stage
rm -rf "$stage" && mkdir -p "$stage/moekit" "$(dirname "$RELEASE")" || exit 2

tar -cf - \
    --exclude=./build --exclude=./.git --exclude=./solutions --exclude=./.ci \
    --exclude=./harness/mistakes --exclude=./harness/grade --exclude=./harness/test/kit_test.d \
    --exclude=./harness/test/hostile \
    --exclude=./.moekit-hints --exclude='*.orig' --exclude='*.rej' --exclude='*~' \
    --exclude='*.swp' --exclude=__pycache__ --exclude='*.pyc' . |
    (cd "$stage/moekit" && tar -xf -) || { echo "make student-release: copying the kit failed" >&2; exit 2; }

if [ "$MODE" = hard ]; then
    for f in lessons/[0-9][0-9]-*/*.c; do
        awk -f harness/student/hard.awk "$f" >"$stage/moekit/$f" ||
            { echo "make student-release: $f: the hard skeleton failed" >&2; exit 2; }
    done
fi

cat >"$stage/moekit/harness/test/kit_test.sh" <<'EOF'
#!/bin/sh
# kit_test.sh, student release: `make test` is the kit's own test, and it needs the
# solutions a student release leaves out. Here it tests your lessons, like `make check`.
echo "make test: this is the student release, so it tests your lessons (the same as make check)."
exec ${MAKE:-make} --no-print-directory check CC="${CC:-cc}" SANITIZE="${SANITIZE:-}" \
    FIXTURES="${FIXTURES:-data/fixtures}"
EOF

# the typed forward pass (--weights) repeats the control flow of lessons 04-08: a stand-in
# that makes --weights say so (typed_model.h, typed_available)
cat >"$stage/moekit/harness/src/typed_model.c" <<'EOF'
/* typed_model.c, student release: the typed forward pass behind `--weights` repeats the
 * control flow of lessons 04-08, so the release leaves it out; --weights says so. */
#include "typed_model.h"

const int typed_available = 0;

int typed_run_init(TypedRun *r, const Model *m) {
    (void)r, (void)m;
    return -1;
}

void typed_run_free(TypedRun *r) { (void)r; }

void typed_forward(Model *m, const TypedWeights *w, TypedRun *r, const int *ids, int T,
                   int pos0, float *x, float *logits, int last_only) {
    (void)m, (void)w, (void)r, (void)ids, (void)T, (void)pos0, (void)x, (void)logits,
        (void)last_only;
}
EOF

# the quantizers and kernels of weights.c are lesson 13's answers (and only the typed
# forward pass, left out above, calls them): the release keeps the file up to its scalar
# conversions (names, sizes, fp16, which lesson 13 gets ready-made) and stands in for the
# rest, bf16_round included, with functions that say so
w=harness/src/weights.c
awk '/^ \* quantizing blocks$/ { exit } { print }' "$w" | sed '$d' |
    awk '/^uint16_t bf16_round\(float f\) \{$/ { skip = 1; next } skip { if (/^}$/) skip = 0; next } { print }' \
    >"$stage/moekit/$w" || { echo "make student-release: the stand-in for $w failed" >&2; exit 2; }
cat >>"$stage/moekit/$w" <<'EOF'
/* ------------------------------------------------------------------------------------
 * student release: the quantizers and the kernels are lesson 13's answers, and only the
 * typed forward pass (`--weights`, left out) runs them
 * ---------------------------------------------------------------------------------- */
#include <stdio.h>

static void left_out(const char *fn) {
    fprintf(stderr, "%s: not in the student release (lesson 13 writes it)\n", fn);
    abort();
}

uint16_t bf16_round(float f) {
    (void)f;
    left_out(__func__);
    return 0;
}
void quantize_q8_0(BlockQ8_0 *dst, const float *src, long n) {
    (void)dst, (void)src, (void)n;
    left_out(__func__);
}
void quantize_q4_0(BlockQ4_0 *dst, const float *src, long n) {
    (void)dst, (void)src, (void)n;
    left_out(__func__);
}
void wtype_to_f32(WType t, float *dst, const void *src, long n) {
    (void)t, (void)dst, (void)src, (void)n;
    left_out(__func__);
}
void wtype_from_f32(WType t, void *dst, const float *src, long n) {
    (void)t, (void)dst, (void)src, (void)n;
    left_out(__func__);
}
void tensor_row(float *out, const Tensor *w, int r) {
    (void)out, (void)w, (void)r;
    left_out(__func__);
}
size_t tensor_matmul_scratch(int T, int in_features) {
    (void)T, (void)in_features;
    left_out(__func__);
    return 0;
}
void tensor_matmul(float *y, const float *x, int T, const Tensor *w, void *scratch) {
    (void)y, (void)x, (void)T, (void)w, (void)scratch;
    left_out(__func__);
}
float wdot(WType t, const void *w_row, const void *x_row, int n) {
    (void)t, (void)w_row, (void)x_row, (void)n;
    left_out(__func__);
    return 0.0f;
}
void wdot4(WType t, const void *w_row, const void *x_rows, size_t stride, int n, float *out) {
    (void)t, (void)w_row, (void)x_rows, (void)stride, (void)n, (void)out;
    left_out(__func__);
}
float wdot_ref(WType t, const void *w_row, const void *x_row, int n) {
    return wdot(t, w_row, x_row, n);
}
const char *wdot_isa(void) { return "none (student release)"; }
EOF

# solution lines: in solutions/, long enough to mean something, not a bare loop header or
# comment, and in no skeleton nor in the API header
patterns=build/release/solution-lines.txt
cat lessons/*/*.c harness/include/moekit.h | sed 's/^[ 	]*//; s/[ 	]*$//' | sort -u >"$patterns.public"
cat solutions/*/*.c | sed 's/^[ 	]*//; s/[ 	]*$//' | awk 'length($0) >= 24' |
    grep -Ev '^(for \(int [a-z]+ = [0-9]+; [a-z]+ < [A-Za-z_>.-]+( / [A-Za-z0-9_]+)?; [a-z]+\+\+\) ?\{?|/?\*.*|//.*)$' |
    sort -u | comm -23 - "$patterns.public" >"$patterns"
: >"$patterns.found"
[ -s "$patterns" ] &&
    find "$stage/moekit" -type f ! -name '*.safetensors' -exec \
        awk 'FILENAME == pat { p[$0] = 1; next }
             { l = $0; sub(/^[ \t]+/, "", l); sub(/[ \t]+$/, "", l)
               if (l in p) print substr(FILENAME, length(stage) + 2) ":" FNR ": " l }' \
            stage="$stage/moekit" pat="$patterns" "$patterns" {} + >"$patterns.found"
if [ -s "$patterns.found" ]; then
    echo "make student-release: these files would give solutions away (lines of solutions/):" >&2
    head -20 "$patterns.found" | sed 's/^/  /' >&2
    echo "no tarball written." >&2
    exit 1
fi

tar -czf "$RELEASE" -C "$stage" moekit || exit 2
rm -rf "$stage"
echo "written: $RELEASE ($(wc -c <"$RELEASE" | tr -d ' ') bytes, $(tar -tzf "$RELEASE" | grep -c '[^/]$') files)"
echo "it has no solutions/, no harness/mistakes/, no grader; make test there runs make check."
[ "$MODE" = normal ] || echo "its lessons are the hard-mode skeletons: signatures and contracts only."

