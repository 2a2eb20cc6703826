/*
 * weights.h: typed weight tensors and the matrix products on them.
 *
 * A weight matrix (rows, cols), row-major like nn.Linear's [out_features, in_features], is
 * stored in one of five types:
 *
 *   WT_F32   float32
 *   WT_BF16  the top 16 bits of a float32 (PyTorch's bfloat16)
 *   WT_F16   IEEE half (PyTorch's float16)
 *   WT_Q8_0  blocks of 32 weights: an fp16 scale d and 32 int8 q, w = d * q
 *   WT_Q4_0  blocks of 32 weights: an fp16 scale d and 32 4-bit q in 16 bytes, w = d * (q - 8)
 *
 * The two block types have llama.cpp's layouts byte for byte (block_q8_0 and block_q4_0 in
 * ggml/src/ggml-common.h; docs/quantization.md): a row of cols weights is cols / 32 blocks,
 * so cols must be a multiple of 32.
 *
 * tensor_matmul() is the one product the typed model runs: it switches on the weight's type
 * and calls that type's kernel, so a reader sees which kernel runs. The q8_0 and q4_0
 * kernels quantize the activations to q8_0 first (as llama.cpp's ggml_vec_dot_q8_0_q8_0 and
 * ggml_vec_dot_q4_0_q8_0 do) and multiply int8 by int8. Each kernel has a plain C version
 * and an AVX2 one (x86-64, chosen at run time with __builtin_cpu_supports, so a build
 * without -march=native still gets it).
 */
#ifndef MOEKIT_WEIGHTS_H
#define MOEKIT_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "quant.h"

typedef enum { WT_F32, WT_BF16, WT_F16, WT_Q8_0, WT_Q4_0, WT_COUNT } WType;

/* QK, BlockQ8_0, BlockQ4_0 and the fp16 conversions are declared in quant.h (harness/include:
 * lesson 13 writes the same formats, and a graded lesson sees only harness/include/). */

/* A weight matrix (rows, cols) in one type. data is rows * wtype_row_bytes(type, cols)
 * bytes, possibly inside a mapped checkpoint (not owned). */
typedef struct {
    WType type;
    int rows, cols;
    const void *data;
} Tensor;

/* "f32", "bf16", "f16", "q8_0", "q4_0"; and back (-1 for an unknown name). */
const char *wtype_name(WType t);
int wtype_parse(const char *name);
/* Bytes of one row of cols weights (cols a multiple of QK for the block types). */
size_t wtype_row_bytes(WType t, long cols);

/* Scalar conversions: round to nearest even, like PyTorch's .bfloat16() (fp16: quant.h). */
uint16_t bf16_round(float f);
float bf16_to_float(uint16_t b);

/* Quantizing n floats (n a multiple of QK), llama.cpp's reference rules
 * (quantize_row_q8_0_ref, quantize_row_q4_0_ref in ggml/src/ggml-quants.c):
 *   q8_0: d = max|x| / 127, q = round(x / d)
 *   q4_0: m = the x of largest magnitude (with its sign), d = m / -8,
 *         q = min(15, (int)(x / d + 8.5)), so m itself is q = 0 */
void quantize_q8_0(BlockQ8_0 *dst, const float *src, long n);
void quantize_q4_0(BlockQ4_0 *dst, const float *src, long n);
/* Any type -> n floats, and n floats -> any type (dst: n / QK blocks or n elements). */
void wtype_to_f32(WType t, float *dst, const void *src, long n);
void wtype_from_f32(WType t, void *dst, const float *src, long n);

/* Row r of w as w->cols floats (nn.Embedding's lookup, in any type). */
void tensor_row(float *out, const Tensor *w, int r);

/* Bytes of activation scratch tensor_matmul needs for T rows of in features. */
size_t tensor_matmul_scratch(int T, int in_features);

/* y (T, w->rows) = x (T, w->cols) . W^T, by the kernel of w->type. scratch:
 * tensor_matmul_scratch(T, w->cols) bytes (q8_0 activations, and four rows that let the
 * last 2 or 3 tokens share the weights' reads); may be NULL for float types (slower). */
void tensor_matmul(float *y, const float *x, int T, const Tensor *w, void *scratch);

/* One row of the weights times one row of activations, for the tests: the kernel
 * tensor_matmul runs for that type (x already in q8_0 blocks for the block types). */
float wdot(WType t, const void *w_row, const void *x_row, int n);
/* Four rows of activations at once, x_rows + k * stride bytes (k < 4) -> out (4): the
 * weight row is loaded once (the vector kernels; four wdot calls in plain C). */
void wdot4(WType t, const void *w_row, const void *x_rows, size_t stride, int n, float *out);
/* The same in plain C (no SIMD), the reference the tests compare wdot against. */
float wdot_ref(WType t, const void *w_row, const void *x_row, int n);
/* "avx2" or "scalar": which version wdot runs on this CPU. MOEKIT_KERNELS=scalar forces C. */
const char *wdot_isa(void);

#endif /* MOEKIT_WEIGHTS_H */
