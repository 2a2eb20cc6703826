/*
 * Lesson 09: fast matmul. The same product as lesson 01,
 *
 *     y (T, out) = x (T, in) . W (out, in)^T        PyTorch: y = x @ W.T
 *
 * made fast one step at a time; every step gives the same numbers (within float rounding)
 * and is tested against the naive loop on odd sizes:
 *
 *   matmul_loop_order   step 1: each row of W is read once for all T tokens (scalar)
 *   dot_simd            step 2: a dot product with SIMD intrinsics, tail included
 *   matmul_simd         step 2: step 1 with dot_simd inside
 *   matmul_tiled        step 3: a register tile of TILE_R rows x TILE_T tokens
 *   fast_matmul_tokens  step 4: cache blocking and threads over output rows (the GEMM)
 *   fast_matmul         step 5: one token (decode): TILE_GEMV rows at a time, threads
 *   fast_matmul_bf16    step 6: step 5 with W in bf16, widened to float in the kernel
 *
 * The vector unit (the section below) is chosen at compile time by the target: AVX-512 or
 * AVX2+FMA on x86-64, NEON on arm64, plain C everywhere else (`make NATIVE=0`). Threads
 * come from OpenMP when the compiler has it (-fopenmp); without it the pragmas vanish and
 * everything runs on one thread.
 *
 * Once fast_matmul and fast_matmul_tokens pass, `make run` and `make bench` send every
 * matmul() and matmul_tokens() call of the model (attention projections, experts, router,
 * LM head) here; see README.md, "How the model picks up your kernel". Until then the model
 * runs on lesson 01's matmul: you can do this lesson last, or not at all.
 *
 * The TODOs are in the order of the README's steps. The vector unit below is ready-made:
 * read it, you use vzero, vload, vload_tail, vfma and vsum.
 * Test it: make check LESSON=09   (or `make check` in this directory); time it: make bench
 */
#include <string.h>

#include "moekit.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* ------------------------------------------------------------------------------------
 * the vector unit, one section per instruction set (ready-made)
 *
 *   vec             VL floats in one register
 *   vzero()         all lanes 0
 *   vload(p)        p[0 .. VL-1]
 *   vload_tail(p,n) p[0 .. n-1] and zeros, 0 < n < VL; reads nothing past p[n-1]
 *   vfma(a, b, c)   a * b + c, lane by lane, one rounding (fused multiply-add)
 *   vsum(v)         the sum of the VL lanes of v
 *   vsum_block(acc, sums)  sums[j] = the sum of the VL lanes of acc[j], j < VL
 *   vload_bf16(p)   VL bf16 values p[0 .. VL-1], widened to float (step 6)
 *   vload_bf16_tail(p, n)  p[0 .. n-1] in bf16, widened, and zeros
 *
 * TILE_R x TILE_T is the register tile of step 3 (a multiple of VL accumulators);
 * TILE_GEMV the rows one token works on at a time in step 5 (a multiple of VL).
 * ---------------------------------------------------------------------------------- */

#if defined(__AVX512F__)
#include <immintrin.h>
#define ISA_NAME "avx512"
#define VREG "v" /* the asm constraint of a vector register */
#define VL 16
#define TILE_R 4
#define TILE_T 4
#define TILE_GEMV 16
typedef __m512 vec;
static inline vec vzero(void) { return _mm512_setzero_ps(); }
static inline vec vload(const float *p) { return _mm512_loadu_ps(p); }
static inline vec vload_tail(const float *p, int n) {
    return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), p); /* masked lanes: not read */
}
static inline vec vfma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
static inline float vsum(vec v) { return _mm512_reduce_add_ps(v); }
static inline vec vload_bf16(const bf16 *p) { /* 16 x 16 bits -> 16 x 32 bits, << 16 */
    __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}
/* 16 accumulators -> one vector of their 16 sums, by halving: each step adds the two
 * halves of pairs of vectors and packs both results into one register (45 instructions
 * for 16 sums; reducing each vector on its own would take about 8 * 16). */
static inline void vsum_block(const vec *a, float *sums) {
    vec b[8], c[4], d[2];
    for (int j = 0; j < 8; j++) /* 256-bit halves: b[j] = [a[2j] 8 lanes | a[2j+1] 8 lanes] */
        b[j] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * j], a[2 * j + 1], 0x44),
                             _mm512_shuffle_f32x4(a[2 * j], a[2 * j + 1], 0xEE));
    for (int j = 0; j < 4; j++) /* 128-bit quarters: c[j] = a[4j .. 4j+3], 4 lanes each */
        c[j] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * j], b[2 * j + 1], 0x88),
                             _mm512_shuffle_f32x4(b[2 * j], b[2 * j + 1], 0xDD));
    for (int j = 0; j < 2; j++) /* pairs of lanes inside each quarter */
        d[j] = _mm512_add_ps(_mm512_shuffle_ps(c[2 * j], c[2 * j + 1], 0x44),
                             _mm512_shuffle_ps(c[2 * j], c[2 * j + 1], 0xEE));
    vec e = _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], 0x88), _mm512_shuffle_ps(d[0], d[1], 0xDD));
    /* lane 4q + m of e is the sum of a[4m + q]: a 4 x 4 transpose puts them in order */
    float lanes[16];
    _mm512_storeu_ps(lanes, e);
    for (int m = 0; m < 4; m++)
        for (int q = 0; q < 4; q++) sums[4 * m + q] = lanes[4 * q + m];
}

#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define ISA_NAME "avx2"
#define VREG "v"
#define VL 8
#define TILE_R 4
#define TILE_T 2
#define TILE_GEMV 8
typedef __m256 vec;
static inline vec vzero(void) { return _mm256_setzero_ps(); }
static inline vec vload(const float *p) { return _mm256_loadu_ps(p); }
static inline vec vload_tail(const float *p, int n) {
    static const int ones[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_maskload_ps(p, _mm256_loadu_si256((const __m256i *)(ones + 8 - n)));
}
static inline vec vfma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
static inline vec vload_bf16(const bf16 *p) { /* 8 x 16 bits -> 8 x 32 bits, << 16 */
    __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
static inline float vsum(vec v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
static inline void vsum_block(const vec *a, float *sums) {
    /* hadd adds neighbouring lanes: three rounds leave a0..a3 in the low 128 bits and
     * a4..a7 in a second vector; adding the two 128-bit halves finishes every sum */
    vec h0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    vec h1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    vec s = _mm256_add_ps(_mm256_permute2f128_ps(h0, h1, 0x20), _mm256_permute2f128_ps(h0, h1, 0x31));
    _mm256_storeu_ps(sums, s);
}

#elif defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>
#define ISA_NAME "neon"
#define VREG "w"
#define VL 4
#define TILE_R 4
#define TILE_T 4
#define TILE_GEMV 8
typedef float32x4_t vec;
static inline vec vzero(void) { return vdupq_n_f32(0.0f); }
static inline vec vload(const float *p) { return vld1q_f32(p); }
static inline vec vload_tail(const float *p, int n) {
    float buf[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int i = 0; i < n; i++) buf[i] = p[i];
    return vld1q_f32(buf);
}
static inline vec vfma(vec a, vec b, vec c) { return vfmaq_f32(c, a, b); }
static inline vec vload_bf16(const bf16 *p) { /* 4 x 16 bits -> 4 x 32 bits, << 16 */
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}
static inline float vsum(vec v) { return vaddvq_f32(v); }
static inline void vsum_block(const vec *a, float *sums) {
    vst1q_f32(sums, vpaddq_f32(vpaddq_f32(a[0], a[1]), vpaddq_f32(a[2], a[3])));
}

#else /* plain C: the fallback, and the reference the vector versions must agree with */
#define ISA_NAME "scalar"
#define VL 1
#define TILE_R 4
#define TILE_T 4
#define TILE_GEMV 4
typedef float vec;
static inline vec vzero(void) { return 0.0f; }
static inline vec vload(const float *p) { return *p; }
static inline vec vload_tail(const float *p, int n) { return n > 0 ? *p : 0.0f; }
static inline vec vfma(vec a, vec b, vec c) { return a * b + c; }
static inline vec vload_bf16(const bf16 *p) { /* bf16 is the top half of a float32 */
    uint32_t u = (uint32_t)*p << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline float vsum(vec v) { return v; }
static inline void vsum_block(const vec *a, float *sums) { sums[0] = a[0]; }
#endif

/* The last n < VL bf16 values of a row: through a zeroed buffer, so nothing past p[n-1]
 * is read (it is only once per row). */
static inline vec vload_bf16_tail(const bf16 *p, int n) {
    bf16 buf[VL] = {0};
    for (int i = 0; i < n; i++) buf[i] = p[i];
    return vload_bf16(buf);
}

const char *fast_matmul_isa(void) { return ISA_NAME; }
int fast_matmul_lanes(void) { return VL; }

/* The threads a parallel region gets, and which one this is (1 and 0 without OpenMP). */
static int thread_count(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int fast_matmul_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* Below this many multiply-adds (T * in * out) a product runs on one thread. A fork-join
 * costs 20-25 us once idle threads sleep (harness/src/omp_wait.c wakes them through the
 * kernel), against 1.4-2.8 us when they spin. Measured here (2 cores, other builds
 * running), 2-thread / 1-thread time, median of 301 interleaved calls, gcc and clang:
 * 1.13-1.71 for 1.8 M multiply-adds (30 us), 1.15-1.49 from 2.3 to 4.3 M when the load
 * was 3.6, 0.81-0.83 at 3.9 M (62 us) when it was 3. Only products of 60 us and more can
 * win at all, so 2^22 (the demo model's products are all below it: it stays on one
 * thread). The kit test also builds this file with -DPARALLEL_MIN_WORK=0, so that the
 * small test cases take the threaded path too. */
#ifndef PARALLEL_MIN_WORK
#define PARALLEL_MIN_WORK (1L << 22)
#endif

static int min_int(int a, int b) { return a < b ? a : b; }

/* UNROLL: unroll the loop that follows completely. The loops of a tile run a fixed, small
 * number of times; unrolled, every acc[j] becomes one register instead of a memory slot.
 * in_register(v): gcc 12 tuned for AMD Zen would otherwise re-read a loaded vector from
 * memory in every FMA that uses it (20 loads per 16 FMAs instead of 8): the empty asm
 * says "v is in a register now", so it stays there. It emits no instruction. */
#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#define in_register(v) (v)
#else
#define UNROLL _Pragma("GCC unroll 16")
static inline vec in_register(vec v) {
#ifdef VREG
    __asm__("" : "+" VREG(v));
#endif
    return v;
}
#endif

/* ------------------------------------------------------------------------------------
 * step 1: loop order
 * ---------------------------------------------------------------------------------- */

void matmul_loop_order(float *y, const float *x, const float *w, int T, int in_features,
                       int out_features) {
    /* TODO: the same sums as lesson 01, y[t * out + o] = sum_i W[o, i] * x[t, i], with the
     * loop over rows o of W outside and the loop over tokens t inside, so that row o is
     * read from memory once and stays in L1 while all T tokens use it.
     * Done: every y[t * out_features + o] written, equal to lesson 01's. */
    TODO("y[t][o] = dot(W[o], x[t]), rows of W in the outer loop");
}

/* ------------------------------------------------------------------------------------
 * step 2: SIMD
 * ---------------------------------------------------------------------------------- */

float dot_simd(const float *a, const float *b, int n) {
    /* TODO: return the dot product of a and b (n >= 1 floats) with the vector helpers above
     * (vzero, vload, vfma, vload_tail, vsum), VL floats at a time.
     * Think about: where the whole vectors stop, and the n % VL values after them (README
     * "Tails": vload_tail pads with zeros, which add nothing).
     * Done: equal to the plain loop for every n, 1 and 17 included. */
    TODO("sum of a[i] * b[i] with vfma, VL at a time, then the tail");
    return 0.0f;
}

void matmul_simd(float *y, const float *x, const float *w, int T, int in_features,
                 int out_features) {
    /* TODO: matmul_loop_order with dot_simd(row o of W, token t of x, in_features) as the
     * inner loop. */
    TODO("matmul_loop_order with dot_simd inside");
}

/* ------------------------------------------------------------------------------------
 * step 3: a register tile
 * ---------------------------------------------------------------------------------- */

/* y[t0 + t][o0 + r] for r < nr <= R, t < nt <= S: R rows of W times S tokens, R * S vector
 * accumulators that live in registers for the whole dot product. Each step loads R + S
 * vectors and does R * S fused multiply-adds: the bigger the tile, the fewer loads per FMA.
 * Rows and tokens past the edge (nr < R, nt < S) repeat the last real one and are not
 * stored, so every tile does the same work and has no branches inside. R and S are
 * constants at every call, so the compiler unrolls the loops and keeps acc in registers. */
static inline __attribute__((always_inline)) void tile(float *y, const float *x, const float *w,
                                                       int in, int out, int o0, int t0, int nr,
                                                       int nt, const int R, const int S) {
    const float *wr[TILE_GEMV > TILE_R ? TILE_GEMV : TILE_R], *xt[TILE_T];
    vec acc[TILE_GEMV > TILE_R * TILE_T ? TILE_GEMV : TILE_R * TILE_T];
    UNROLL for (int r = 0; r < R; r++) wr[r] = w + (size_t)(o0 + min_int(r, nr - 1)) * in;
    UNROLL for (int s = 0; s < S; s++) xt[s] = x + (size_t)(t0 + min_int(s, nt - 1)) * in;
    float sums[TILE_GEMV > TILE_R * TILE_T ? TILE_GEMV : TILE_R * TILE_T];
    /* TODO: y[(t0 + s) * out + o0 + r] for r < nr, s < nt must be the dot product of row
     * wr[r] of W and token xt[s], computed with R * S vector accumulators in acc that stay
     * in registers over the whole loop over i (README "Step 3: a register tile").
     * Think about: each step over i loads the S token vectors and the R row vectors once
     * and does R * S vfma with them; the tail (vload_tail); adding up each accumulator's VL
     * lanes (vsum_block does VL accumulators at once when R * S is a multiple of VL, vsum
     * one); that rows past nr and tokens past nt are computed but never stored. The
     * compiler keeps acc in registers only if the loops over r, s and lanes are unrolled
     * (UNROLL before each, not before the loop over i) and in_register() wraps every loaded
     * vector (README "Two compiler details").
     * Done: matmul_tiled equals lesson 01 on every size. */
    TODO("the register tile: R x S accumulators, vfma over in, then vsum_block");
}

/* Rows o0 .. o1-1 of the output for tokens t0 .. t1-1: full TILE_T groups of tokens with
 * the TILE_R x TILE_T tile, the T % TILE_T left over one at a time with a tall tile.
 * Not for rows a multiple of 4 KiB long (in = 1024, 2048 ...): TILE_GEMV rows that far
 * apart all map to the same set of the (8-way) L1 cache and evict each other, 3x slower
 * than TILE_R rows at a time. */
static void tile_range(float *y, const float *x, const float *w, int in, int out, int o0,
                       int o1, int t0, int t1) {
    int t = t0, tall = in % 1024 != 0;
    for (; t + TILE_T <= t1; t += TILE_T)
        for (int o = o0; o < o1; o += TILE_R)
            tile(y, x, w, in, out, o, t, min_int(TILE_R, o1 - o), TILE_T, TILE_R, TILE_T);
    for (; t < t1; t++) {
        int o = o0;
        for (; tall && o + TILE_GEMV <= o1; o += TILE_GEMV)
            tile(y, x, w, in, out, o, t, TILE_GEMV, 1, TILE_GEMV, 1);
        for (; o < o1; o += TILE_R) /* the last rows: a short tile wastes less than a tall one */
            tile(y, x, w, in, out, o, t, min_int(TILE_R, o1 - o), 1, TILE_R, 1);
    }
}

void matmul_tiled(float *y, const float *x, const float *w, int T, int in_features,
                  int out_features) {
    tile_range(y, x, w, in_features, out_features, 0, out_features, 0, T);
}

/* ------------------------------------------------------------------------------------
 * step 4: cache blocking and threads (the GEMM the model runs)
 * ---------------------------------------------------------------------------------- */

/* Tokens per block: a block of x (tokens x in floats) should stay in the L2 cache (about
 * 1 MiB per core here; we aim at a quarter) while every row tile of W passes over it. */
static int tokens_per_block(int in_features) {
    int n = (int)((256 * 1024 / sizeof(float)) / (size_t)in_features);
    n -= n % TILE_T;
    return n < TILE_T ? TILE_T : n;
}

void fast_matmul_tokens(float *y, const float *x, const float *w, int T, int in_features,
                        int out_features) {
    int block = tokens_per_block(in_features);
    int tiles = (out_features + TILE_R - 1) / TILE_R;
    /* TODO: y (T, out) = x . W^T with tile_range doing the work (README "Step 4").
     * Think about: T == 1 is the matrix-vector product of step 5; walking the tokens a
     * block (`block` tokens) at a time keeps that block of x in L2; products under
     * PARALLEL_MIN_WORK multiply-adds stay on this thread (README "Threads on a busy
     * machine"); larger ones split the output rows among threads (thread_id() of
     * thread_count(), inside an OpenMP parallel region guarded by #ifdef _OPENMP) in whole
     * tiles of TILE_R rows (`tiles` of them), so no two threads write the same row and
     * every row is written.
     * Done: equal to lesson 01 for every size, with 1 thread and with several. */
    TODO("threads over output rows, tokens in cache-sized blocks, tile_range");
}

/* ------------------------------------------------------------------------------------
 * step 5: one token (decode)
 * ---------------------------------------------------------------------------------- */

void fast_matmul(float *y, const float *x, const float *w, int in_features, int out_features) {
    int tiles = (out_features + TILE_GEMV - 1) / TILE_GEMV;
    /* TODO: y (out) = W . x for one token, with tile_range(y, x, w, in, out, o0, o1, 0, 1)
     * computing rows [o0, o1) in tiles of TILE_GEMV rows.
     * Think about: the same threshold and the same split of whole tiles among threads as in
     * fast_matmul_tokens, with TILE_GEMV rows per tile.
     * Done: equal to lesson 01's matmul for one token. */
    TODO("one token: tiles of TILE_GEMV rows, threads over them");
}

/* ------------------------------------------------------------------------------------
 * step 6: bf16 weights (decode)
 * ---------------------------------------------------------------------------------- */

void bf16_from_float(bf16 *dst, const float *src, long n) {
    for (long i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], sizeof u);
        if ((u & 0x7fffffffu) > 0x7f800000u) dst[i] = (bf16)(u >> 16 | 0x40u); /* NaN stays NaN */
        else dst[i] = (bf16)((u + 0x7fffu + (u >> 16 & 1u)) >> 16); /* nearest, ties to even */
    }
}

void fast_matmul_bf16(float *y, const float *x, const bf16 *w, int in_features,
                      int out_features) {
    /* TODO: fast_matmul (step 5) with W in bf16: the same tiles and threads, each row
     * vector widened to float32 right after its load (vload_bf16, vload_bf16_tail), x and
     * the sums float32 (README "Step 6: bf16 weights").
     * Done: equal to x @ W.bfloat16().T from PyTorch, on every case. */
    TODO("one token with bf16 weights: vload_bf16 instead of vload");
}
