/* Lesson 13 tests: f32_to_bf16 and bf16_to_f32 (bits exact), q8_0 and q4_0 quantize (the
 * blocks byte for byte) and dequantize (exact: an fp16 scale times a small integer is a
 * float32), q8_0_dot and q8_0_matvec (float sums, with a tolerance), and the q8_0 round
 * trip on random inputs. Bits and bytes are compared as float32 (exact for them) so that
 * expect_close names the mistake an output matches. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "quant.h"

_Static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18, "llama.cpp's block sizes");

/* ------------------------------------------------------------------------------------
 * bytes in and out
 * ---------------------------------------------------------------------------------- */

/* The case's I32 tensor name of n byte values, as n bytes owned by ctx. */
static void *fx_bytes(TestCtx *ctx, const char *name, long n) {
    const int *v = fx_ints(ctx, name, n);
    unsigned char *p = test_alloc(ctx, (size_t)n);
    for (long i = 0; i < n; i++) p[i] = (unsigned char)v[i];
    return p;
}

/* n bytes for the student to fill, set to 0xA5 so that "wrote nothing" shows */
static void *out_bytes(TestCtx *ctx, long n) {
    void *p = test_alloc(ctx, (size_t)n);
    memset(p, 0xA5, (size_t)n);
    return p;
}

/* n bytes -> n floats (0 .. 255) owned by ctx: what is observed and compared */
static float *bytes_as_floats(TestCtx *ctx, const void *p, long n) {
    const unsigned char *b = p;
    float *f = out_buffer(ctx, n);
    for (long i = 0; i < n; i++) f[i] = (float)b[i];
    return f;
}

/* f as an integer in 0 .. max, -1 when it is not one (NaN: nothing observed) */
static int byte_value(float f, int max) {
    return f >= 0.0f && f <= (float)max && f == floorf(f) ? (int)f : -1;
}

static float float_of_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ------------------------------------------------------------------------------------
 * bf16
 * ---------------------------------------------------------------------------------- */

static TestStatus test_f32_to_bf16(TestCtx *ctx) {
    int n = fx_int(ctx, "n");
    const int *bits = fx_ints(ctx, "x_bits", n);
    float *got = out_buffer(ctx, n);
    student_begin(ctx);
    for (int i = 0; i < n; i++) got[i] = (float)f32_to_bf16(float_of_bits((uint32_t)bits[i]));
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "bf16", got, n);
    const float *want = want_tensor(ctx, "bf16", n);
    /* a NaN in, any NaN out: PyTorch writes 0x7FC0, the kit keeps sign and payload */
    for (int i = 0; i < n; i++) {
        if (!isnan(float_of_bits((uint32_t)bits[i]))) continue;
        int g = byte_value(got[i], 0xffff);
        if (g >= 0 && (g & 0x7fff) > 0x7f80) got[i] = want[i];
    }
    Layout l = {1, {"value"}, {n}};
    return expect_close(ctx, "bf16", got, &l, 0.0f, 0.0f,
                        "f32_to_bf16, the 16 bits as a number (0x3F80 = 16256 is 1.0)");
}

static TestStatus test_bf16_to_f32(TestCtx *ctx) {
    int m = fx_int(ctx, "m");
    const int *bits = fx_ints(ctx, "b_bits", m);
    float *got = out_buffer(ctx, m);
    student_begin(ctx);
    for (int i = 0; i < m; i++) got[i] = bf16_to_f32((uint16_t)bits[i]);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "f32", got, m);
    Layout l = {1, {"value"}, {m}};
    return expect_close(ctx, "f32", got, &l, 0.0f, 0.0f, "bf16_to_f32");
}

/* ------------------------------------------------------------------------------------
 * q8_0 and q4_0 blocks
 * ---------------------------------------------------------------------------------- */

static TestStatus test_q8_0_quantize(TestCtx *ctx) {
    int n = fx_int(ctx, "n"), nb = n / QK;
    long bytes = (long)sizeof(BlockQ8_0) * nb;
    const float *x = fx_tensor(ctx, "x", n, NULL);
    BlockQ8_0 *y = out_bytes(ctx, bytes);
    student_begin(ctx);
    q8_0_quantize(y, x, n);
    if (student_todo(ctx)) return TEST_TODO;
    float *got = bytes_as_floats(ctx, y, bytes);
    observe(ctx, "blocks", got, bytes);
    Layout l = {2, {"block", "byte"}, {nb, (long)sizeof(BlockQ8_0)}};
    return expect_close(ctx, "blocks", got, &l, 0.0f, 0.0f,
                        "q8_0_quantize, the blocks' bytes (0-1: d, 2-33: q as unsigned)");
}

static TestStatus test_q8_0_dequantize(TestCtx *ctx) {
    int n = fx_int(ctx, "n");
    const BlockQ8_0 *q = fx_bytes(ctx, "q", (long)sizeof(BlockQ8_0) * (n / QK));
    float *x = out_buffer(ctx, n);
    student_begin(ctx);
    q8_0_dequantize(x, q, n);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "deq", x, n);
    Layout l = {2, {"block", "element"}, {n / QK, QK}};
    return expect_close(ctx, "deq", x, &l, 0.0f, 0.0f, "q8_0_dequantize");
}

static TestStatus test_q4_0_quantize(TestCtx *ctx) {
    int n = fx_int(ctx, "n"), nb = n / QK;
    long bytes = (long)sizeof(BlockQ4_0) * nb;
    const float *x = fx_tensor(ctx, "x", n, NULL);
    BlockQ4_0 *y = out_bytes(ctx, bytes);
    student_begin(ctx);
    q4_0_quantize(y, x, n);
    if (student_todo(ctx)) return TEST_TODO;
    float *got = bytes_as_floats(ctx, y, bytes);
    observe(ctx, "blocks", got, bytes);
    Layout l = {2, {"block", "byte"}, {nb, (long)sizeof(BlockQ4_0)}};
    return expect_close(ctx, "blocks", got, &l, 0.0f, 0.0f,
                        "q4_0_quantize, the blocks' bytes (0-1: d, 2-17: low | high << 4)");
}

static TestStatus test_q4_0_dequantize(TestCtx *ctx) {
    int n = fx_int(ctx, "n");
    const BlockQ4_0 *q = fx_bytes(ctx, "q", (long)sizeof(BlockQ4_0) * (n / QK));
    float *x = out_buffer(ctx, n);
    student_begin(ctx);
    q4_0_dequantize(x, q, n);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "deq", x, n);
    Layout l = {2, {"block", "element"}, {n / QK, QK}};
    return expect_close(ctx, "deq", x, &l, 0.0f, 0.0f, "q4_0_dequantize");
}

/* ------------------------------------------------------------------------------------
 * products
 * ---------------------------------------------------------------------------------- */

/* A float32 sum of nb block terms d_a d_b sum(qa qb) is off by a few 2^-24 of the sum of
 * the terms' magnitudes: the absolute tolerance follows the largest such sum over rows. */
static float dot_tolerance(const BlockQ8_0 *w, const BlockQ8_0 *xq, int rows, int cols) {
    double worst = 0.0;
    for (int r = 0; r < rows; r++) {
        double s = 0.0;
        for (int k = 0; k < cols / QK; k++) {
            const BlockQ8_0 *a = w + (long)r * (cols / QK) + k;
            long sum = 0;
            for (int i = 0; i < QK; i++) sum += labs((long)a->qs[i] * xq[k].qs[i]);
            s += fabs((double)fp16_to_float(a->d) * fp16_to_float(xq[k].d)) * (double)sum;
        }
        worst = s > worst ? s : worst;
    }
    return 1e-6f + (float)(1e-6 * worst);
}

static TestStatus run_product(TestCtx *ctx, int matvec) {
    int rows = fx_int(ctx, "rows"), cols = fx_int(ctx, "cols"), nb = cols / QK;
    const BlockQ8_0 *w = fx_bytes(ctx, "wq", (long)sizeof(BlockQ8_0) * rows * nb);
    const BlockQ8_0 *xq = fx_bytes(ctx, "xq", (long)sizeof(BlockQ8_0) * nb);
    const float *x = fx_tensor(ctx, "x", cols, NULL);
    BlockQ8_0 *scratch = out_bytes(ctx, (long)sizeof(BlockQ8_0) * nb);
    float *y = out_buffer(ctx, rows);
    student_begin(ctx);
    if (matvec) q8_0_matvec(y, w, x, rows, cols, scratch);
    else
        for (int r = 0; r < rows; r++) y[r] = q8_0_dot(w + (long)r * nb, xq, cols);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "y", y, rows);
    Layout l = {1, {"row"}, {rows}};
    return expect_close(ctx, "y", y, &l, dot_tolerance(w, xq, rows, cols), 1e-5f,
                        matvec ? "q8_0_matvec (x quantized to q8_0 first)"
                               : "q8_0_dot, each row of w with xq");
}

static TestStatus test_q8_0_dot(TestCtx *ctx) { return run_product(ctx, 0); }
static TestStatus test_q8_0_matvec(TestCtx *ctx) { return run_product(ctx, 1); }

/* ------------------------------------------------------------------------------------
 * property: the q8_0 round trip
 * ---------------------------------------------------------------------------------- */

/* On fresh x (the case's n; each block at its own scale, 1e-3 to 1e3):
 * |dequantize(quantize(x)) - x| <= d/2 per element, d = max|x| / 127 of the block, plus
 * what storing d as fp16 costs: q moves by |q| <= 127 steps of |d - fp16(d)| (2^-11 d when
 * d is a normal half, more when it is subnormal). Reported in units of that limit, so the
 * property is "<= 1". Truncating instead of rounding, or a scale that overflows q, goes
 * past it. */
static TestStatus test_round_trip(TestCtx *ctx) {
    int n = fx_int(ctx, "n"), nb = n / QK;
    long bytes = (long)sizeof(BlockQ8_0) * nb;
    float *x = test_alloc(ctx, sizeof(float) * (size_t)n), *back = out_buffer(ctx, n);
    random_fill(ctx, x, n, 1.0f);
    for (int b = 0; b < nb; b++) {
        float s = powf(10.0f, (float)(6.0 * random_uniform(ctx) - 3.0));
        for (int i = 0; i < QK; i++) x[b * QK + i] *= s;
    }
    BlockQ8_0 *y = out_bytes(ctx, bytes);
    student_begin(ctx);
    q8_0_quantize(y, x, n);
    q8_0_dequantize(back, y, n);
    if (student_todo(ctx)) return TEST_TODO;
    observe(ctx, "back", back, n);
    judging(ctx);
    float *err = out_buffer(ctx, n), *want = out_buffer(ctx, n);
    for (int b = 0; b < nb; b++) {
        const float *xb = x + (long)b * QK;
        float amax = 0.0f;
        for (int i = 0; i < QK; i++) amax = fmaxf(amax, fabsf(xb[i]));
        float d = amax / 127.0f, dh = fp16_to_float(fp16_from_float(d));
        float limit = 0.5f * d + 127.0f * fabsf(d - dh);
        for (int i = 0; i < QK; i++) {
            float e = back[b * QK + i] - xb[i];
            err[b * QK + i] = limit > 0.0f ? e / limit : e; /* all-zero x: exactly 0 */
            want[b * QK + i] = 0.0f;
        }
    }
    Layout l = {2, {"block", "element"}, {nb, QK}};
    /* 1e-4: float32 rounding of x / d and of d * q, ~127 * 2^-24 of the limit */
    return expect_property(ctx, "|dequantize(quantize(x)) - x| / (d/2 + 127 |d - fp16(d)|) <= 1",
                           err, want, &l, 1.0001f, 0.0f);
}

static const TestDef TESTS[] = {
    {"f32_to_bf16", "bf16_", test_f32_to_bf16},
    {"bf16_to_f32", "bf16_", test_bf16_to_f32},
    {"q8_0_quantize", "q8_", test_q8_0_quantize},
    {"q8_0_dequantize", "q8_", test_q8_0_dequantize},
    {PROPERTY "q8_0 round trip is within d/2", "q8_", test_round_trip},
    {"q4_0_quantize", "q4_", test_q4_0_quantize},
    {"q4_0_dequantize", "q4_", test_q4_0_dequantize},
    {"q8_0_dot", "dot_", test_q8_0_dot},
    {"q8_0_matvec", "dot_", test_q8_0_matvec},
    {0},
};

const LessonDef LESSON_13 = {"13", "quantization", "quant.c", "", TESTS};
