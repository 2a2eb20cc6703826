/*
 * weights.c: typed weights, their conversions and their dot-product kernels (weights.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "weights.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "moekit.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86_KERNELS 1
#endif

/* ------------------------------------------------------------------------------------
 * names and sizes
 * ---------------------------------------------------------------------------------- */

static const char *const names[WT_COUNT] = {"f32", "bf16", "f16", "q8_0", "q4_0"};

const char *wtype_name(WType t) { return t >= 0 && t < WT_COUNT ? names[t] : "?"; }

int wtype_parse(const char *name) {
    for (int t = 0; t < WT_COUNT; t++)
        if (!strcmp(name, names[t])) return t;
    return -1;
}

size_t wtype_row_bytes(WType t, long cols) {
    switch (t) {
    case WT_F32: return sizeof(float) * (size_t)cols;
    case WT_BF16:
    case WT_F16: return sizeof(uint16_t) * (size_t)cols;
    case WT_Q8_0: return sizeof(BlockQ8_0) * (size_t)(cols / QK);
    case WT_Q4_0: return sizeof(BlockQ4_0) * (size_t)(cols / QK);
    default: return 0;
    }
}

/* ------------------------------------------------------------------------------------
 * scalar conversions
 * ---------------------------------------------------------------------------------- */

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float bf16_to_float(uint16_t b) { return float_of((uint32_t)b << 16); }

uint16_t bf16_round(float f) {
    uint32_t u = bits_of(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

float fp16_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 31, man = h & 0x3ff;
    if (exp == 0) { /* zero or subnormal: man * 2^-24 */
        float v = ldexpf((float)man, -24);
        return sign ? -v : v;
    }
    if (exp == 31) return float_of(sign | 0x7f800000u | man << 13);
    return float_of(sign | (exp + 112) << 23 | man << 13);
}

/* Round to nearest even with the float unit doing the rounding: the same bit trick as
 * ggml's fp32_to_fp16 (ggml/src/ggml-impl.h, from the FP16 library by M. Dukhan). */
uint16_t fp16_from_float(float f) {
    float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
    uint32_t w = bits_of(f), shl1_w = w + w, sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xff000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    base = float_of((bias >> 1) + 0x07800000u) + base;
    uint32_t bits = bits_of(base);
    uint32_t nonsign = ((bits >> 13) & 0x7c00u) + (bits & 0x0fffu);
    return (uint16_t)((sign >> 16) | (shl1_w > 0xff000000u ? 0x7e00u : nonsign));
}

/* ------------------------------------------------------------------------------------
 * quantizing blocks
 * ---------------------------------------------------------------------------------- */

/* A block holding NaN or Inf (a poisoned weight or activation) cannot be rounded to
 * integers (the cast would be undefined): it becomes a NaN scale and zero levels, so it
 * dequantizes to NaN and the logits come out non-finite, which the CLI reports. */
static int block_finite(const float *x) {
    for (int i = 0; i < QK; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

#define FP16_NAN 0x7e00u

void quantize_q8_0(BlockQ8_0 *dst, const float *src, long n) {
    for (long b = 0; b < n / QK; b++) {
        const float *x = src + b * QK;
        if (!block_finite(x)) {
            dst[b].d = FP16_NAN;
            memset(dst[b].qs, 0, sizeof dst[b].qs);
            continue;
        }
        float amax = 0.0f;
        for (int i = 0; i < QK; i++) amax = fmaxf(amax, fabsf(x[i]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        dst[b].d = fp16_from_float(d);
        for (int i = 0; i < QK; i++) dst[b].qs[i] = (int8_t)roundf(x[i] * id);
    }
}

void quantize_q4_0(BlockQ4_0 *dst, const float *src, long n) {
    for (long b = 0; b < n / QK; b++) {
        const float *x = src + b * QK;
        if (!block_finite(x)) {
            dst[b].d = FP16_NAN;
            memset(dst[b].qs, 0x88, sizeof dst[b].qs); /* levels 8: zero */
            continue;
        }
        float amax = 0.0f, max = 0.0f;
        for (int i = 0; i < QK; i++)
            if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
        float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        dst[b].d = fp16_from_float(d);
        for (int j = 0; j < QK / 2; j++) {
            int lo = (int)(x[j] * id + 8.5f), hi = (int)(x[j + QK / 2] * id + 8.5f);
            dst[b].qs[j] = (uint8_t)((lo < 15 ? lo : 15) | (hi < 15 ? hi : 15) << 4);
        }
    }
}

void wtype_to_f32(WType t, float *dst, const void *src, long n) {
    const uint16_t *h = src;
    const BlockQ8_0 *q8 = src;
    const BlockQ4_0 *q4 = src;
    for (long i = 0; i < n; i++) {
        long b = i / QK, j = i % QK;
        switch (t) {
        case WT_F32: dst[i] = ((const float *)src)[i]; break;
        case WT_BF16: dst[i] = bf16_to_float(h[i]); break;
        case WT_F16: dst[i] = fp16_to_float(h[i]); break;
        case WT_Q8_0: dst[i] = fp16_to_float(q8[b].d) * q8[b].qs[j]; break;
        default: /* WT_Q4_0 */
            dst[i] = fp16_to_float(q4[b].d) *
                     (float)((j < QK / 2 ? q4[b].qs[j] & 15 : q4[b].qs[j - QK / 2] >> 4) - 8);
        }
    }
}

void wtype_from_f32(WType t, void *dst, const float *src, long n) {
    uint16_t *h = dst;
    switch (t) {
    case WT_F32: memcpy(dst, src, sizeof(float) * (size_t)n); break;
    case WT_BF16: for (long i = 0; i < n; i++) h[i] = bf16_round(src[i]); break;
    case WT_F16: for (long i = 0; i < n; i++) h[i] = fp16_from_float(src[i]); break;
    case WT_Q8_0: quantize_q8_0(dst, src, n); break;
    default: quantize_q4_0(dst, src, n);
    }
}

/* ------------------------------------------------------------------------------------
 * dot products, plain C: one weight row (n) . one activation row (n floats, or n / QK
 * q8_0 blocks for the block types)
 * ---------------------------------------------------------------------------------- */

static float dot_f32_c(const void *w, const void *x, int n) {
    const float *a = w, *b = x;
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static float dot_bf16_c(const void *w, const void *x, int n) {
    const uint16_t *a = w;
    const float *b = x;
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += bf16_to_float(a[i]) * b[i];
    return s;
}

static float dot_f16_c(const void *w, const void *x, int n) {
    const uint16_t *a = w;
    const float *b = x;
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += fp16_to_float(a[i]) * b[i];
    return s;
}

static float dot_q8_0_c(const void *w, const void *x, int n) {
    const BlockQ8_0 *a = w, *b = x;
    float s = 0.0f;
    for (int k = 0; k < n / QK; k++) {
        int sum = 0;
        for (int i = 0; i < QK; i++) sum += a[k].qs[i] * b[k].qs[i];
        s += fp16_to_float(a[k].d) * fp16_to_float(b[k].d) * (float)sum;
    }
    return s;
}

static float dot_q4_0_c(const void *w, const void *x, int n) {
    const BlockQ4_0 *a = w;
    const BlockQ8_0 *b = x;
    float s = 0.0f;
    for (int k = 0; k < n / QK; k++) {
        int sum = 0;
        for (int j = 0; j < QK / 2; j++)
            sum += ((a[k].qs[j] & 15) - 8) * b[k].qs[j] +
                   ((a[k].qs[j] >> 4) - 8) * b[k].qs[j + QK / 2];
        s += fp16_to_float(a[k].d) * fp16_to_float(b[k].d) * (float)sum;
    }
    return s;
}

typedef float (*DotFn)(const void *w, const void *x, int n);
typedef void (*Dot4Fn)(const void *w, const void *x, size_t stride, int n, float *out);
typedef void (*Dot4x2Fn)(const void *w, size_t wstride, const void *x, size_t stride, int n,
                         float *out);

static const DotFn dots_c[WT_COUNT] = {dot_f32_c, dot_bf16_c, dot_f16_c, dot_q8_0_c,
                                       dot_q4_0_c};

/* ------------------------------------------------------------------------------------
 * dot products, AVX2 + FMA (+ F16C for the fp16 scales and weights)
 * ---------------------------------------------------------------------------------- */

#ifdef HAVE_X86_KERNELS
#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 8 bf16 -> 8 floats: a bf16 is the top half of a float's bits */
AVX2 static __m256 load_bf16(const uint16_t *p) {
    __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}

AVX2 static __m256 load_f16(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

AVX2 static float dot_f32_avx2(const void *w, const void *x, int n) {
    const float *a = w, *b = x;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    float s = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* bf16 and f16 rows: four accumulators of 8. An FMA waits 4 cycles for its sum, so one
 * chain allows an FMA every 4 cycles; four chains keep both FMA units of a core busy.
 * With two, a 768 x 2048 bf16 product of 1 to 3 tokens (an expert's rows in a prefill)
 * took about 1.4 times the CPU time on a Zen 4 core. */
#define DOT_HALF_AVX2(name, load, to_float)                                              \
    AVX2 static float name(const void *w, const void *x, int n) {                        \
        const uint16_t *a = w;                                                           \
        const float *b = x;                                                              \
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                      \
        int i = 0;                                                                       \
        for (; i + 32 <= n; i += 32) {                                                   \
            s0 = _mm256_fmadd_ps(load(a + i), _mm256_loadu_ps(b + i), s0);               \
            s1 = _mm256_fmadd_ps(load(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);       \
            s2 = _mm256_fmadd_ps(load(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);     \
            s3 = _mm256_fmadd_ps(load(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);     \
        }                                                                                \
        for (; i + 8 <= n; i += 8)                                                       \
            s0 = _mm256_fmadd_ps(load(a + i), _mm256_loadu_ps(b + i), s0);               \
        float s = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));    \
        for (; i < n; i++) s += to_float(a[i]) * b[i];                                   \
        return s;                                                                        \
    }
DOT_HALF_AVX2(dot_bf16_avx2, load_bf16, bf16_to_float)
DOT_HALF_AVX2(dot_f16_avx2, load_f16, fp16_to_float)

/* 32 int8 . 32 int8 -> 8 int32 partial sums as floats. maddubs multiplies unsigned by
 * signed bytes, so the sign of w moves onto x: |w| * (x * sign(w)); |w|, |x| <= 127 keep
 * each pair sum under maddubs's int16 saturation (2 * 127 * 127 = 32258). */
AVX2 static __m256 dot32_i8(__m256i w, __m256i x) {
    __m256i prod = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(prod, _mm256_set1_epi16(1)));
}

AVX2 static float scale2(uint16_t a, uint16_t b) {
    return _cvtsh_ss(a) * _cvtsh_ss(b);
}

AVX2 static float dot_q8_0_avx2(const void *w, const void *x, int n) {
    const BlockQ8_0 *a = w, *b = x;
    __m256 acc = _mm256_setzero_ps();
    for (int k = 0; k < n / QK; k++) {
        __m256 p = dot32_i8(_mm256_loadu_si256((const __m256i *)a[k].qs),
                            _mm256_loadu_si256((const __m256i *)b[k].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(scale2(a[k].d, b[k].d)), p, acc);
    }
    return hsum8(acc);
}

/* 16 bytes of nibbles -> 32 int8 in -8..7: the low nibbles are weights 0-15, the high
 * ones 16-31 (block_q4_0's order) */
AVX2 static __m256i unpack_q4(const uint8_t *qs) {
    __m128i packed = _mm_loadu_si128((const __m128i *)qs);
    __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
    __m256i nib = _mm256_and_si256(both, _mm256_set1_epi8(15));
    return _mm256_sub_epi8(nib, _mm256_set1_epi8(8));
}

AVX2 static float dot_q4_0_avx2(const void *w, const void *x, int n) {
    const BlockQ4_0 *a = w;
    const BlockQ8_0 *b = x;
    __m256 acc = _mm256_setzero_ps();
    for (int k = 0; k < n / QK; k++) {
        __m256 p = dot32_i8(unpack_q4(a[k].qs), _mm256_loadu_si256((const __m256i *)b[k].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(scale2(a[k].d, b[k].d)), p, acc);
    }
    return hsum8(acc);
}

/* Four tokens at once: each weight vector is loaded (and widened, or unpacked) once for
 * four activation rows x + k * stride; out (4). Prefill and the experts' rows use it. */
#define DOT4_HALF_AVX2(name, load)                                                       \
    AVX2 static void name(const void *w, const void *x, size_t stride, int n, float *out) { \
        const uint16_t *a = w;                                                           \
        const float *b = x;                                                              \
        size_t s = stride / sizeof(float);                                               \
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                      \
        __m256 t0 = s0, t1 = s0, t2 = s0, t3 = s0; /* two chains a token (DOT_HALF_AVX2) */ \
        int i = 0;                                                                       \
        for (; i + 16 <= n; i += 16) {                                                   \
            __m256 wv = load(a + i), wu = load(a + i + 8);                               \
            s0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(b + i), s0);                        \
            s1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(b + s + i), s1);                    \
            s2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(b + 2 * s + i), s2);                \
            s3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(b + 3 * s + i), s3);                \
            t0 = _mm256_fmadd_ps(wu, _mm256_loadu_ps(b + i + 8), t0);                    \
            t1 = _mm256_fmadd_ps(wu, _mm256_loadu_ps(b + s + i + 8), t1);                \
            t2 = _mm256_fmadd_ps(wu, _mm256_loadu_ps(b + 2 * s + i + 8), t2);            \
            t3 = _mm256_fmadd_ps(wu, _mm256_loadu_ps(b + 3 * s + i + 8), t3);            \
        }                                                                                \
        for (; i + 8 <= n; i += 8) {                                                     \
            __m256 wv = load(a + i);                                                     \
            s0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(b + i), s0);                        \
            s1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(b + s + i), s1);                    \
            s2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(b + 2 * s + i), s2);                \
            s3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(b + 3 * s + i), s3);                \
        }                                                                                \
        out[0] = hsum8(_mm256_add_ps(s0, t0)), out[1] = hsum8(_mm256_add_ps(s1, t1));    \
        out[2] = hsum8(_mm256_add_ps(s2, t2)), out[3] = hsum8(_mm256_add_ps(s3, t3));    \
        for (int k = 0; k < 4; k++)                                                      \
            for (int j = i; j < n; j++) out[k] += bf16_or_f16(a[j], load) * b[k * s + j]; \
    }
#define bf16_or_f16(h, load) ((load) == load_bf16 ? bf16_to_float(h) : fp16_to_float(h))
DOT4_HALF_AVX2(dot4_bf16_avx2, load_bf16)
DOT4_HALF_AVX2(dot4_f16_avx2, load_f16)

/* Two weight rows (w, w + wstride bytes) times four tokens: out (2, 4). Eight
 * accumulators, and per eight columns two weight loads and four activation loads for
 * eight FMAs (the 4-token kernel needs five loads for four): prefill is bound by loads
 * and FMAs, not by memory, once a weight row serves four tokens. */
#define DOT4X2_HALF_AVX2(name, load)                                                      \
    AVX2 static void name(const void *w, size_t wstride, const void *x, size_t stride, int n, \
                          float *out) {                                                   \
        const uint16_t *a0 = w, *a1 = (const uint16_t *)((const char *)w + wstride);      \
        const float *b0 = x, *b1 = b0 + stride / sizeof(float), *b2 = b1 + stride / sizeof(float), \
                    *b3 = b2 + stride / sizeof(float);                                    \
        __m256 r00 = _mm256_setzero_ps(), r01 = r00, r02 = r00, r03 = r00;                \
        __m256 r10 = r00, r11 = r00, r12 = r00, r13 = r00;                                \
        int i = 0;                                                                        \
        for (; i + 8 <= n; i += 8) {                                                      \
            __m256 w0 = load(a0 + i), w1 = load(a1 + i), xv;                              \
            xv = _mm256_loadu_ps(b0 + i);                                                 \
            r00 = _mm256_fmadd_ps(w0, xv, r00), r10 = _mm256_fmadd_ps(w1, xv, r10);       \
            xv = _mm256_loadu_ps(b1 + i);                                                 \
            r01 = _mm256_fmadd_ps(w0, xv, r01), r11 = _mm256_fmadd_ps(w1, xv, r11);       \
            xv = _mm256_loadu_ps(b2 + i);                                                 \
            r02 = _mm256_fmadd_ps(w0, xv, r02), r12 = _mm256_fmadd_ps(w1, xv, r12);       \
            xv = _mm256_loadu_ps(b3 + i);                                                 \
            r03 = _mm256_fmadd_ps(w0, xv, r03), r13 = _mm256_fmadd_ps(w1, xv, r13);       \
        }                                                                                 \
        out[0] = hsum8(r00), out[1] = hsum8(r01), out[2] = hsum8(r02), out[3] = hsum8(r03); \
        out[4] = hsum8(r10), out[5] = hsum8(r11), out[6] = hsum8(r12), out[7] = hsum8(r13); \
        const float *b[4] = {b0, b1, b2, b3};                                             \
        for (int k = 0; k < 4; k++)                                                       \
            for (int j = i; j < n; j++) {                                                 \
                out[k] += bf16_or_f16(a0[j], load) * b[k][j];                             \
                out[4 + k] += bf16_or_f16(a1[j], load) * b[k][j];                         \
            }                                                                             \
    }
DOT4X2_HALF_AVX2(dot4x2_bf16_avx2, load_bf16)
DOT4X2_HALF_AVX2(dot4x2_f16_avx2, load_f16)
#undef bf16_or_f16

/* q8_0 and q4_0 weights: each block's int8 weights once for four q8_0 activation rows */
#define DOT4_BLOCK_AVX2(name, Block, weights_of)                                          \
    AVX2 static void name(const void *w, const void *x, size_t stride, int n, float *out) { \
        const Block *a = w;                                                               \
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),   \
                         _mm256_setzero_ps()};                                            \
        for (int k = 0; k < n / QK; k++) {                                                \
            __m256i wq = weights_of(a[k]);                                                \
            float dw = _cvtsh_ss(a[k].d);                                                 \
            for (int t = 0; t < 4; t++) {                                                 \
                const BlockQ8_0 *b = (const BlockQ8_0 *)((const char *)x + t * stride) + k; \
                __m256 p = dot32_i8(wq, _mm256_loadu_si256((const __m256i *)b->qs));      \
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * _cvtsh_ss(b->d)), p, acc[t]); \
            }                                                                             \
        }                                                                                 \
        for (int t = 0; t < 4; t++) out[t] = hsum8(acc[t]);                               \
    }
#define Q8_WEIGHTS(blk) _mm256_loadu_si256((const __m256i *)(blk).qs)
#define Q4_WEIGHTS(blk) unpack_q4((blk).qs)
DOT4_BLOCK_AVX2(dot4_q8_0_avx2, BlockQ8_0, Q8_WEIGHTS)
DOT4_BLOCK_AVX2(dot4_q4_0_avx2, BlockQ4_0, Q4_WEIGHTS)

static const DotFn dots_avx2[WT_COUNT] = {dot_f32_avx2, dot_bf16_avx2, dot_f16_avx2,
                                          dot_q8_0_avx2, dot_q4_0_avx2};
static const Dot4Fn dots4_avx2[WT_COUNT] = {NULL, dot4_bf16_avx2, dot4_f16_avx2,
                                            dot4_q8_0_avx2, dot4_q4_0_avx2};
static const Dot4x2Fn dots4x2_avx2[WT_COUNT] = {NULL, dot4x2_bf16_avx2, dot4x2_f16_avx2, NULL,
                                                NULL};
#endif /* HAVE_X86_KERNELS */

/* ------------------------------------------------------------------------------------
 * choosing the kernels once per process
 * ---------------------------------------------------------------------------------- */

static const DotFn *dots;
static const Dot4Fn *dots4; /* NULL entries: four calls of dots[] */
static const Dot4x2Fn *dots4x2; /* NULL entries: two calls of dots4[] */
static const char *isa = "scalar";
static const Dot4Fn no_dots4[WT_COUNT];
static const Dot4x2Fn no_dots4x2[WT_COUNT];

#ifdef HAVE_X86_KERNELS
/* F16C from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports has no "f16c" */
static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

static void choose_kernels(void) {
    if (dots) return;
    const char *env = getenv("MOEKIT_KERNELS");
    dots = dots_c;
    dots4 = no_dots4;
    dots4x2 = no_dots4x2;
#ifdef HAVE_X86_KERNELS
    __builtin_cpu_init();
    if (!(env && !strcmp(env, "scalar")) && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma") && has_f16c()) {
        dots4 = dots4_avx2;
        dots4x2 = dots4x2_avx2;
        dots = dots_avx2;
        isa = "avx2";
    }
#else
    (void)env;
#endif
}

const char *wdot_isa(void) {
    choose_kernels();
    return isa;
}

float wdot(WType t, const void *w_row, const void *x_row, int n) {
    choose_kernels();
    return dots[t](w_row, x_row, n);
}

void wdot4(WType t, const void *w_row, const void *x_rows, size_t stride, int n, float *out) {
    choose_kernels();
    if (dots4[t]) {
        dots4[t](w_row, x_rows, stride, n, out);
        return;
    }
    for (int k = 0; k < 4; k++) out[k] = dots[t](w_row, (const char *)x_rows + k * stride, n);
}

float wdot_ref(WType t, const void *w_row, const void *x_row, int n) {
    return dots_c[t](w_row, x_row, n);
}

/* ------------------------------------------------------------------------------------
 * the product
 * ---------------------------------------------------------------------------------- */

void tensor_row(float *out, const Tensor *w, int r) {
    size_t rb = wtype_row_bytes(w->type, w->cols);
    wtype_to_f32(w->type, out, (const unsigned char *)w->data + (size_t)r * rb, w->cols);
}

size_t tensor_matmul_scratch(int T, int in_features) {
    size_t q8 = sizeof(BlockQ8_0) * (size_t)T * (size_t)(in_features / QK);
    return q8 + 4 * sizeof(float) * (size_t)in_features; /* and rows_times_tokens' tail */
}

/* Below this many multiply-adds a product runs on one thread: lesson 09's threshold and
 * its reasons (solutions/09-fast-matmul/fast_matmul.c, PARALLEL_MIN_WORK): a fork-join
 * with sleeping threads costs 20-25 us, far more on a loaded machine. With 2^17 the demo
 * model's bf16 perplexity took 10x longer on 2 threads than on 1 at load 10. */
#define TYPED_PARALLEL_MIN_WORK (1L << 22)

/* The last T % 4 rows of x when they are 3, copied into tail and padded to four with a
 * copy of the last, so that the 4-token kernels read each weight row once for them too
 * (an expert's few rows in a prefill are mostly such tails). 2 rows are not worth it:
 * on a Zen 4 core, bf16 768 x 2048 experts, two one-row dots took less time than the
 * padded four (the products are bound by the widening and the FMAs, not by memory).
 * Returns how many rows are real, or 0. */
static int tail_rows(char *tail, const char *x, size_t x_stride, int T) {
    int r = T % 4;
    if (!tail || r != 3) return 0;
    for (int k = 0; k < 4; k++)
        memcpy(tail + k * x_stride, x + (size_t)(T - r + (k < r ? k : r - 1)) * x_stride, x_stride);
    return r;
}

/* What rows_times_tokens multiplies: x (T rows of x_stride bytes), the padded tail (the
 * last in_tail rows, four rows of x_stride bytes) and w. */
typedef struct {
    const char *x, *tail;
    size_t x_stride, rb; /* bytes per activation row, per weight row */
    int T, full, in_tail; /* tokens; those in groups of four; those in the tail */
    const Tensor *w;
} Product;

/* y[., o] for weight row o: a group of four tokens per wdot4, the rest one by one */
static void one_row(float *y, const Product *p, int o) {
    const char *row = (const char *)p->w->data + (size_t)o * p->rb;
    int rows = p->w->rows, cols = p->w->cols;
    float four[4];
    for (int t = 0; t < p->full; t += 4) {
        wdot4(p->w->type, row, p->x + (size_t)t * p->x_stride, p->x_stride, cols, four);
        for (int k = 0; k < 4; k++) y[(size_t)(t + k) * rows + o] = four[k];
    }
    if (p->in_tail) {
        wdot4(p->w->type, row, p->tail, p->x_stride, cols, four);
        for (int k = 0; k < p->in_tail; k++) y[(size_t)(p->full + k) * rows + o] = four[k];
    } else
        for (int t = p->full; t < p->T; t++)
            y[(size_t)t * rows + o] = dots[p->w->type](row, p->x + (size_t)t * p->x_stride, cols);
}

/* y[., o] and y[., o + 1] at once, when the type has a two-row kernel and there are at
 * least four tokens; else one_row twice */
static void two_rows(float *y, const Product *p, int o) {
    Dot4x2Fn k2 = dots4x2[p->w->type];
    if (!k2 || p->T < 4) {
        one_row(y, p, o), one_row(y, p, o + 1);
        return;
    }
    const char *row = (const char *)p->w->data + (size_t)o * p->rb;
    int rows = p->w->rows, cols = p->w->cols;
    float eight[8];
    for (int t = 0; t < p->full + (p->in_tail ? 4 : 0); t += 4) {
        const char *x = t < p->full ? p->x + (size_t)t * p->x_stride : p->tail;
        int n = t < p->full ? 4 : p->in_tail;
        k2(row, p->rb, x, p->x_stride, cols, eight);
        for (int k = 0; k < n; k++)
            y[(size_t)(t + k) * rows + o] = eight[k], y[(size_t)(t + k) * rows + o + 1] = eight[4 + k];
    }
    for (int t = p->full + (p->in_tail ? p->in_tail : 0); t < p->T; t++)
        for (int r = 0; r < 2; r++)
            y[(size_t)t * rows + o + r] =
                dots[p->w->type](row + r * p->rb, p->x + (size_t)t * p->x_stride, cols);
}

/* y (T, rows) = x . W^T, each weight row read once per four tokens (and, where the type
 * has the kernel, two rows at a time). tail: 4 rows of scratch, or NULL. Threads share
 * the rows when the product is big enough. */
static void rows_times_tokens(float *y, const char *x, size_t x_stride, int T, const Tensor *w,
                              char *tail) {
    Product p = {x, tail, x_stride, wtype_row_bytes(w->type, w->cols), T, T - T % 4,
                 tail_rows(tail, x, x_stride, T), w};
    int rows = w->rows;
#pragma omp parallel for schedule(static) if ((long)rows * w->cols * T >= TYPED_PARALLEL_MIN_WORK)
    for (int o = 0; o < rows - 1; o += 2) two_rows(y, &p, o);
    if (rows % 2) one_row(y, &p, rows - 1);
}

void tensor_matmul(float *y, const float *x, int T, const Tensor *w, void *scratch) {
    choose_kernels();
    switch (w->type) {
    case WT_F32: /* the lessons' product: lesson 01's loop or lesson 09's kernel (linear.c) */
        linear_tokens(y, x, w->data, T, w->cols, w->rows);
        return;
    case WT_BF16:
    case WT_F16:
        rows_times_tokens(y, (const char *)x, sizeof(float) * (size_t)w->cols, T, w, scratch);
        return;
    case WT_Q8_0:
    case WT_Q4_0: {
        size_t nb = (size_t)(w->cols / QK);
        BlockQ8_0 *xq = scratch;
        for (int t = 0; t < T; t++) /* scratch holds T * nb blocks, then the tail */
            quantize_q8_0(xq + (size_t)t * nb, x + (size_t)t * w->cols, w->cols);
        rows_times_tokens(y, (const char *)xq, sizeof(BlockQ8_0) * nb, T, w,
                          scratch ? (char *)(xq + (size_t)T * nb) : NULL);
        return;
    }
    default:
        break;
    }
}
