/*
 * weights_test.c: the typed weights (harness/src/weights.h) and the typed model.
 *
 *   1. fp16 and bf16 conversions: every fp16 bit pattern against the safetensors reader's
 *      own conversion, and back;
 *   2. quantizing a block: each weight within the documented error of its block's scale;
 *   3. each dot-product kernel (the vector one this CPU runs) against its plain C version on
 *      random rows, within float rounding of the sum of |w x|;
 *   4. tensor_matmul of each type against the product of the float32 weights, in double,
 *      within that type's error bound (computed from the data, docs/quantization.md);
 *   5. with DIR arguments (Hugging Face checkpoints): the typed model's logits against the
 *      lessons' float32 model, prefill and decode: --weights auto (the file's type) and f32
 *      within 1e-5, the others within a bound per type.
 * Also proves the checks can fail: the q4_0 kernel with its nibbles swapped must fail 3.
 * usage: weights_test [DIR...]   Ends with "N passed, N failed".
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_load.h"
#include "weights.h"

static int passed, failed;

static void report(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(int ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("  %-7s ", ok ? "ok" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    ok ? passed++ : failed++;
}

static unsigned long long rng = 0x9e3779b97f4a7c15ULL;

/* uniform in [-1, 1), times a scale drawn per call so blocks differ in magnitude */
static float uniform(void) {
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (float)((rng * 0x2545F4914F6CDD1DULL) >> 40) / 8388608.0f - 1.0f;
}

static void fill(float *x, long n) {
    for (long i = 0; i < n; i++) x[i] = uniform() * (i % 97 == 0 ? 8.0f : 1.0f);
}

/* ------------------------------------------------------------------------------------
 * 1. conversions
 * ---------------------------------------------------------------------------------- */

static void test_conversions(void) {
    int bad_to = 0, bad_back = 0;
    for (unsigned h = 0; h < 65536; h++) {
        uint16_t bits = (uint16_t)h;
        StTensor t = {.dtype = ST_F16, .numel = 1, .nbytes = 2, .data = &bits};
        float want, got = fp16_to_float(bits);
        st_to_f32(&t, &want);
        if (memcmp(&want, &got, sizeof got) != 0 && !(isnan(want) && isnan(got))) bad_to++;
        if (!isnan(got) && fp16_from_float(got) != bits) bad_back++;
    }
    /* halfway cases round to even: 1 + 2^-11 lies between 1 and 1 + 2^-10 */
    int even = fp16_from_float(1.0f + 0x1p-11f) == 0x3c00 &&
               fp16_from_float(1.0f + 3 * 0x1p-11f) == 0x3c02 &&
               bf16_round(1.0f + 0x1p-8f) == 0x3f80 && bf16_round(1.0f + 3 * 0x1p-8f) == 0x3f82;
    report(!bad_to && !bad_back && even,
           "fp16: all 65536 patterns as the safetensors reader reads them (%d differ), back "
           "unchanged (%d differ); fp16 and bf16 round halfway cases to even", bad_to, bad_back);
}

/* ------------------------------------------------------------------------------------
 * 2. quantizing blocks
 * ---------------------------------------------------------------------------------- */

/* The worst |dequantized - x| over n values, in units of each block's largest |x|. */
static double worst_block_error(WType t, const float *x, long n) {
    void *q = malloc(wtype_row_bytes(t, n));
    float *back = malloc(sizeof(float) * (size_t)n);
    wtype_from_f32(t, q, x, n);
    wtype_to_f32(t, back, q, n);
    double worst = 0.0;
    for (long b = 0; b < n / QK; b++) {
        double amax = 0.0;
        for (int i = 0; i < QK; i++) amax = fmax(amax, fabs(x[b * QK + i]));
        for (int i = 0; i < QK && amax > 0; i++)
            worst = fmax(worst, fabs(back[b * QK + i] - x[b * QK + i]) / amax);
    }
    free(q), free(back);
    return worst;
}

static void test_quantize(void) {
    long n = 32 * 4096;
    float *x = malloc(sizeof(float) * (size_t)n);
    fill(x, n);
    for (int i = 0; i < QK; i++) x[i] = 0.0f; /* an all-zero block: scale 0, no division */
    /* q8_0: q = round(x / d), d = amax / 127: half a step, plus the fp16 rounding of d
     * (2^-11 relative) over up to 127 steps: 0.5 / 127 + 2^-11 */
    double q8 = worst_block_error(WT_Q8_0, x, n), q8_bound = 0.5 / 127 + 0x1p-11;
    /* q4_0: d = m / -8; the side opposite m reaches +8 steps, clamped to 7: one step, 1/8,
     * plus the fp16 rounding of d over 8 steps */
    double q4 = worst_block_error(WT_Q4_0, x, n), q4_bound = 1.0 / 8 + 8 * 0x1p-11;
    report(q8 <= q8_bound, "q8_0 block: worst error %.5f of the block's max |x| (bound %.5f)", q8,
           q8_bound);
    report(q4 <= q4_bound, "q4_0 block: worst error %.5f of the block's max |x| (bound %.5f)", q4,
           q4_bound);
    free(x);
}

/* ------------------------------------------------------------------------------------
 * 3. kernels against plain C
 * ---------------------------------------------------------------------------------- */

typedef float (*Dot)(WType t, const void *w, const void *x, int n);

/* q4_0 with the two halves of each byte swapped: the mistake 3 must catch */
static float swapped_nibbles(WType t, const void *w, const void *x, int n) {
    BlockQ4_0 *copy = malloc(sizeof(BlockQ4_0) * (size_t)(n / QK));
    memcpy(copy, w, sizeof(BlockQ4_0) * (size_t)(n / QK));
    for (int b = 0; b < n / QK; b++)
        for (int j = 0; j < QK / 2; j++)
            copy[b].qs[j] = (uint8_t)(copy[b].qs[j] >> 4 | copy[b].qs[j] << 4);
    float s = wdot(t, copy, x, n);
    free(copy);
    return s;
}

/* The worst |dot - ref| / sum |w x| over random rows of several lengths. */
static double kernel_error(WType t, Dot dot) {
    static const int sizes[] = {32, 64, 96, 160, 768, 2048, 4096};
    double worst = 0.0;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int n = sizes[k];
        float *w = malloc(sizeof(float) * n), *x = malloc(sizeof(float) * n);
        float *wf = malloc(sizeof(float) * n), *xf = malloc(sizeof(float) * n);
        void *wq = malloc(wtype_row_bytes(t, n)), *xq = malloc(wtype_row_bytes(WT_Q8_0, n));
        fill(w, n), fill(x, n);
        int block = t == WT_Q8_0 || t == WT_Q4_0;
        wtype_from_f32(t, wq, w, n);
        wtype_to_f32(t, wf, wq, n);
        if (block) {
            quantize_q8_0(xq, x, n);
            wtype_to_f32(WT_Q8_0, xf, xq, n);
        } else {
            memcpy(xf, x, sizeof(float) * n);
        }
        const void *xin = block ? xq : (const void *)x;
        double abs_sum = 0.0;
        for (int i = 0; i < n; i++) abs_sum += fabs((double)wf[i] * xf[i]);
        double err = fabs((double)dot(t, wq, xin, n) - wdot_ref(t, wq, xin, n));
        worst = fmax(worst, err / abs_sum);
        free(w), free(x), free(wf), free(xf), free(wq), free(xq);
    }
    return worst;
}

static float wdot_fn(WType t, const void *w, const void *x, int n) { return wdot(t, w, x, n); }

/* wdot4's result for the first of four rows, the other three rows being copies of x at a
 * stride of one row plus 16 bytes: all four outputs must be equal */
static float wdot4_fn(WType t, const void *w, const void *x, int n) {
    size_t row = t == WT_Q8_0 || t == WT_Q4_0 ? wtype_row_bytes(WT_Q8_0, n) : sizeof(float) * n;
    size_t stride = row + 16;
    char *xs = malloc(4 * stride);
    for (int k = 0; k < 4; k++) memcpy(xs + k * stride, x, row);
    float out[4];
    wdot4(t, w, xs, stride, n, out);
    free(xs);
    return out[0] == out[1] && out[1] == out[2] && out[2] == out[3] ? out[0] : NAN;
}

static void test_kernels(void) {
    /* float sums in a different order: a few ulp of the sum of |w x| */
    const double bound = 1e-5;
    for (int t = 0; t < WT_COUNT; t++) {
        double e = kernel_error((WType)t, wdot_fn);
        report(e <= bound, "%s kernel (%s) against plain C: worst error %.2e of sum |w x| (bound %.0e)",
               wtype_name((WType)t), wdot_isa(), e, bound);
    }
    for (int t = 0; t < WT_COUNT; t++) {
        double e = kernel_error((WType)t, wdot4_fn);
        report(e <= bound, "%s kernel, four tokens at once (%s): worst error %.2e of sum |w x| "
                           "(bound %.0e)", wtype_name((WType)t), wdot_isa(), e, bound);
    }
    double e = kernel_error(WT_Q4_0, swapped_nibbles);
    report(e > bound, "the check catches a q4_0 kernel that swaps the nibbles: error %.2e", e);
}

/* ------------------------------------------------------------------------------------
 * 4. tensor_matmul against float32 weights
 * ---------------------------------------------------------------------------------- */

/* The error bound of one output, from the data: sum over blocks of
 * ew * sum |x| + ex * sum |w| + QK * ew * ex, where ew, ex are the worst errors of one
 * weight and one activation of that block in this type (2 above; bf16 and f16 round each
 * weight by half an ulp, 2^-9 and 2^-12 relative, activations stay float32), plus float32
 * rounding of the sum (1e-6 of sum |w x|). */
static double bound_of(WType t, const float *w, const float *x, int n) {
    double b = 0.0;
    for (int k = 0; k < n / QK; k++) {
        double aw = 0, ax = 0, sw = 0, sx = 0, swx = 0;
        for (int i = k * QK; i < (k + 1) * QK; i++) {
            aw = fmax(aw, fabs(w[i])), ax = fmax(ax, fabs(x[i]));
            sw += fabs(w[i]), sx += fabs(x[i]), swx += fabs((double)w[i] * x[i]);
        }
        double q8 = 0.5 / 127 + 0x1p-11, ex = 0, ew = 0;
        if (t == WT_BF16 || t == WT_F16) ew = 0; /* relative, below */
        if (t == WT_Q8_0) ew = q8 * aw, ex = q8 * ax;
        if (t == WT_Q4_0) ew = (1.0 / 8 + 8 * 0x1p-11) * aw, ex = q8 * ax;
        double rel = t == WT_BF16 ? 0x1p-9 : t == WT_F16 ? 0x1p-12 : 0.0;
        b += ew * sx + ex * sw + QK * ew * ex + rel * swx + 1e-6 * swx;
    }
    return b;
}

/* T = 5, 6, 7: four tokens and one more on its own, or 2 or 3 in the padded tail
 * (rows_times_tokens) */
static void test_matmul(int T) {
    enum { IN = 160, OUT = 37 };
    float *x = malloc(sizeof(float) * T * IN), *w = malloc(sizeof(float) * OUT * IN);
    float *y = malloc(sizeof(float) * T * OUT);
    void *wq = malloc(wtype_row_bytes(WT_F32, IN) * OUT);
    void *scratch = malloc(tensor_matmul_scratch(T, IN));
    fill(x, T * IN), fill(w, OUT * IN);
    for (int t = 0; t < WT_COUNT; t++) {
        for (int o = 0; o < OUT; o++)
            wtype_from_f32((WType)t, (char *)wq + o * wtype_row_bytes((WType)t, IN), w + o * IN, IN);
        Tensor tw = {(WType)t, OUT, IN, wq};
        tensor_matmul(y, x, T, &tw, scratch);
        double worst = 0.0, rms_err = 0.0, rms_y = 0.0;
        for (int i = 0; i < T; i++)
            for (int o = 0; o < OUT; o++) {
                double ref = 0.0;
                for (int k = 0; k < IN; k++) ref += (double)x[i * IN + k] * w[o * IN + k];
                double err = fabs(y[i * OUT + o] - ref);
                worst = fmax(worst, err / bound_of((WType)t, w + o * IN, x + i * IN, IN));
                rms_err += err * err, rms_y += ref * ref;
            }
        report(worst <= 1.0, "tensor_matmul %s, %d x %d x %d: worst error %.2f of its bound, "
                             "relative RMS error %.1e", wtype_name((WType)t), T, IN, OUT, worst,
               sqrt(rms_err / rms_y));
    }
    free(x), free(w), free(y), free(wq), free(scratch);
}

/* ------------------------------------------------------------------------------------
 * 5. the typed model against the lessons' float32 model
 * ---------------------------------------------------------------------------------- */

/* Prefill logits of ids (T) and the same T tokens decoded one at a time: (2, T, V). */
static int logits_of(const char *dir, const char *weights, const int *ids, int T, float *out) {
    ModelOptions o = {.weights = weights};
    Model m;
    char err[1024];
    if (model_load_dir(&m, dir, &o, err, sizeof err) != 0) {
        printf("  FAIL    %s: %s\n", dir, err);
        return -1;
    }
    int V = m.config.vocab_size;
    float *x = malloc(sizeof(float) * (size_t)m.state.max_tokens * m.config.hidden_size);
    TypedRun *run;
    const TypedWeights *tw = model_typed(&m, &run);
    for (int pass = 0; pass < 2; pass++)
        for (int t = 0; t < (pass ? T : 1); t++) {
            int n = pass ? 1 : T, p0 = pass ? t : 0;
            float *dst = out + (size_t)pass * T * V + (size_t)p0 * V;
            if (tw) typed_forward(&m, tw, run, ids + p0, n, p0, x, dst, 0);
            else model_forward(&m, ids + p0, n, p0, x, dst);
        }
    free(x);
    model_free(&m);
    return 0;
}

static void test_model(const char *dir) {
    static const char *types[] = {"auto", "f32", "bf16", "f16", "q8_0", "q4_0"};
    /* bounds on the largest |logit difference| to float32, per type: auto and f32 do the
     * same float products, summed in another order: 1e-5 absolute, or 1e-6 of the largest
     * |logit| where that is more (the demo model's logits reach 14, and a clang ASan build
     * summed them 1.05e-5 apart); for the others, a fraction of the largest
     * |logit|: measured worst on the kit's test checkpoints and the demo model 0.015 (bf16),
     * 0.0014 (f16), 0.17 (q8_0), 0.55 (q4_0), with a margin (docs/quantization.md: the
     * held-out bits per byte are the measure that matters) */
    static const double limits[] = {1e-5, 1e-5, 0.05, 0.005, 0.3, 0.8};
    enum { T = 12 };
    int ids[T];
    Model probe;
    char err[1024];
    ModelOptions small = {.max_seq = 64};
    if (model_load_dir(&probe, dir, &small, err, sizeof err) != 0) {
        printf("  FAIL    %s: %s\n", dir, err);
        failed++;
        return;
    }
    int V = probe.config.vocab_size;
    model_free(&probe);
    for (int t = 0; t < T; t++) ids[t] = (t * 7919 + 13) % V;
    float *ref = malloc(sizeof(float) * 2 * T * V), *got = malloc(sizeof(float) * 2 * T * V);
    if (logits_of(dir, NULL, ids, T, ref) == 0)
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
            if (logits_of(dir, types[k], ids, T, got) != 0) {
                failed++;
                continue;
            }
            double worst = 0.0, range = 0.0;
            for (long i = 0; i < 2L * T * V; i++) {
                double d = fabs(got[i] - ref[i]);
                if (!(d <= worst)) worst = d;
                range = fmax(range, fabs(ref[i]));
            }
            double limit = k < 2 ? fmax(limits[k], 1e-6 * range) : limits[k] * range;
            report(worst <= limit, "%s --weights %s: logits max abs diff to float32 %.2e = %.4f "
                                   "of max |logit| (limit %.2g)", dir, types[k], worst,
                   worst / range, limit);
        }
    else
        failed++;
    free(ref), free(got);
}

int main(int argc, char **argv) {
    test_conversions();
    test_quantize();
    test_kernels();
    for (int T = 5; T <= 7; T++) test_matmul(T);
    for (int i = 1; i < argc; i++) test_model(argv[i]);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
