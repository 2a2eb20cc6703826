/*
 * quant.h: lesson 13, quantization (lessons/13-quantization/quant.c): the number formats
 * the kit's typed weights use (harness/src/weights.c, `moekit --weights TYPE`), written by
 * you. Its own header, beside moekit.h: the lessons' model stays float32.
 *
 *   float32 ──f32_to_bf16──> bf16 (the top 16 bits, rounded) ──bf16_to_f32──> float32
 *   32 floats ──q8_0_quantize──> BlockQ8_0: fp16 d + 32 int8 q          (34 bytes)
 *   32 floats ──q4_0_quantize──> BlockQ4_0: fp16 d + 16 bytes of nibbles (18 bytes)
 *   W (rows, cols) in q8_0 . x (cols) ──q8_0_matvec──> y (rows): x to q8_0 first, then
 *   q8_0_dot per row, int8 x int8 summed in int, as llama.cpp's ggml_vec_dot_q8_0_q8_0
 *
 * The block structs, QK (32) and the fp16 conversions (ready-made) are below; the harness's
 * typed weights (harness/src/weights.h) use the same. The layouts are llama.cpp's byte for
 * byte (block_q8_0, block_q4_0 in ggml/src/ggml-common.h).
 */
#ifndef MOEKIT_QUANT_H
#define MOEKIT_QUANT_H

#include <stdint.h>

#include "moekit.h"

/* ------------------------------------------------------------------------------------
 * ready-made: the blocks and fp16 (harness/src/weights.c)
 * ---------------------------------------------------------------------------------- */

#define QK 32 /* values per block, both block types (llama.cpp's QK8_0 = QK4_0 = 32) */

typedef struct {
    uint16_t d;     /* fp16 scale */
    int8_t qs[QK];  /* w[i] = d * qs[i] */
} BlockQ8_0;        /* 34 bytes: 8.5 bits per weight */

typedef struct {
    uint16_t d;          /* fp16 scale */
    uint8_t qs[QK / 2];  /* w[j] = d * ((qs[j] & 15) - 8), w[j + 16] = d * ((qs[j] >> 4) - 8) */
} BlockQ4_0;             /* 18 bytes: 4.5 bits per weight */

/* float32 <-> IEEE half, round to nearest even, like PyTorch's .half() (ggml's
 * GGML_FP32_TO_FP16 / GGML_FP16_TO_FP32). */
uint16_t fp16_from_float(float f);
float fp16_to_float(uint16_t h);

/* ------------------------------------------------------------------------------------
 * lesson 13: what you write (lessons/13-quantization/quant.c)
 * ---------------------------------------------------------------------------------- */

/* float32 -> bf16: the top 16 bits of x's bits, rounded to nearest, ties to even (PyTorch's
 * x.bfloat16()); a NaN stays a NaN. */
uint16_t f32_to_bf16(float x);
/* bf16 -> float32: exact (b becomes the top 16 bits). */
float bf16_to_f32(uint16_t b);

/* x (n floats, n a multiple of QK) -> y (n / QK blocks), llama.cpp's quantize_row_q8_0_ref:
 * per block d = max|x| / 127, q = round(x / d) (x times 1/d, halves away from zero). */
void q8_0_quantize(BlockQ8_0 *y, const float *x, long n);
/* y (n / QK blocks) -> x (n floats): x = d * q. */
void q8_0_dequantize(float *x, const BlockQ8_0 *y, long n);

/* x (n floats) -> y (n / QK blocks), llama.cpp's quantize_row_q4_0_ref: per block m = the x
 * of largest magnitude, with its sign (the first one on a tie), d = m / -8,
 * q = min(15, (int)(x / d + 8.5)); element j in the low nibble of byte j, element j + 16 in
 * its high nibble. */
void q4_0_quantize(BlockQ4_0 *y, const float *x, long n);
/* y -> x (n floats): x = d * (q - 8). */
void q4_0_dequantize(float *x, const BlockQ4_0 *y, long n);

/* a . b over n values (n / QK blocks each): per block the int sum of qa * qb, times both
 * scales, summed in float (ggml_vec_dot_q8_0_q8_0). */
float q8_0_dot(const BlockQ8_0 *a, const BlockQ8_0 *b, int n);
/* y (rows) = W x: w (rows, cols) as rows * cols / QK blocks, row by row; x (cols floats) is
 * quantized to q8_0 into xq (cols / QK blocks, scratch) first. */
void q8_0_matvec(float *y, const BlockQ8_0 *w, const float *x, int rows, int cols,
                 BlockQ8_0 *xq);

#endif /* MOEKIT_QUANT_H */
