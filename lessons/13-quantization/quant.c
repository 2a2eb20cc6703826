/*
 * Lesson 13 (optional): quantization, the formats behind `moekit --weights TYPE`.
 *
 *   f32_to_bf16, bf16_to_f32   float32 <-> bf16, round to nearest even, NaN kept
 *   q8_0_quantize/dequantize   x (n) <-> n / 32 blocks: fp16 d + 32 int8 q, x = d q
 *   q4_0_quantize/dequantize   x (n) <-> n / 32 blocks: fp16 d + 16 bytes of nibbles,
 *                              x = d (q - 8)
 *   q8_0_dot, q8_0_matvec      int8 x int8 block products, activations quantized first
 *
 * The rules and byte layouts are llama.cpp's (ggml/src/ggml-quants.c: quantize_row_q8_0_ref,
 * quantize_row_q4_0_ref, dequantize_row_q4_0; ggml_vec_dot_q8_0_q8_0), so the fixtures
 * compare your blocks byte for byte. The declarations are in harness/include/quant.h;
 * fp16_from_float and fp16_to_float (declared there) are ready-made.
 * Test it: make check LESSON=13   (or `make check` in this directory)
 *
 * PyTorch: x.bfloat16() is f32_to_bf16; the blocks have no PyTorch type (they are GGUF's
 * GGML_TYPE_Q8_0 and GGML_TYPE_Q4_0).
 */
#include <math.h>
#include <string.h>

#include "quant.h"

/* ------------------------------------------------------------------------------------
 * bf16: the top half of a float32
 * ---------------------------------------------------------------------------------- */

/* x's top 16 bits, rounded to nearest, ties to even; a NaN stays a NaN */
uint16_t f32_to_bf16(float x) {
    /* TODO: take x's 32 bits (memcpy into a uint32_t), round them to their top 16 bits
     * to nearest, ties to even, and return those (README "bf16"). Think about: which bit
     * says a tie goes up, and what does adding to a NaN whose payload is only in the low
     * 16 bits turn it into? */
    TODO("the top 16 bits of x, rounded to nearest even; NaN stays NaN");
    return 0;
}

/* b as the top 16 bits of a float32, the low 16 zero */
float bf16_to_f32(uint16_t b) {
    /* TODO: shift b into the top half of a uint32_t and return those bits as a float. */
    TODO("b << 16, read as a float");
    return 0.0f;
}

/* ------------------------------------------------------------------------------------
 * q8_0: 32 int8 per fp16 scale
 * ---------------------------------------------------------------------------------- */

/* x (n floats, n a multiple of QK) -> y (n / QK blocks): d = max|x| / 127, q = round(x / d) */
void q8_0_quantize(BlockQ8_0 *y, const float *x, long n) {
    for (long b = 0; b < n / QK; b++) {
        /* TODO: for the block x[b * QK .. b * QK + QK): amax = max |x|, d = amax / 127,
         * id = 1 / d (0 when d is 0); y[b].d = fp16_from_float(d) and each
         * y[b].qs[i] = x * id rounded to nearest, halves away from zero (README "q8_0").
         * Think about: which d do you divide by, the float32 one or the fp16 one you store? */
        TODO("d = amax / 127 stored as fp16, q = round(x * (1 / d))");
    }
}

/* y (n / QK blocks) -> x (n floats): x = d * q */
void q8_0_dequantize(float *x, const BlockQ8_0 *y, long n) {
    /* TODO: x[b * QK + i] = fp16_to_float(y[b].d) * y[b].qs[i] for every block b. */
    TODO("x = d * q, block by block");
}

/* ------------------------------------------------------------------------------------
 * q4_0: 32 nibbles per fp16 scale, stored offset by 8
 * ---------------------------------------------------------------------------------- */

/* x (n floats) -> y (n / QK blocks): m = the x of largest |x| (its sign kept, the first on
 * a tie), d = m / -8, q = min(15, (int)(x / d + 8.5)); element j in the low nibble of
 * byte j, element j + 16 in its high nibble */
void q4_0_quantize(BlockQ4_0 *y, const float *x, long n) {
    for (long b = 0; b < n / QK; b++) {
        /* TODO: find m (README "q4_0"), d = m / -8, id = 1 / d (0 when d is 0),
         * y[b].d = fp16_from_float(d); then for j in 0 .. 15: the levels of x[j] * id and
         * x[j + 16] * id, each min(15, (int)(v + 8.5)), packed as low | high << 4.
         * Think about: why + 8.5 and a cast, and not roundf? Which level does m get? */
        TODO("d = m / -8, levels (int)(x / d + 8.5) capped at 15, j low and j + 16 high");
    }
}

/* y -> x (n floats): x = d * (q - 8) */
void q4_0_dequantize(float *x, const BlockQ4_0 *y, long n) {
    /* TODO: byte j of block b gives x[b * QK + j] from its low nibble and
     * x[b * QK + j + 16] from its high nibble, each d * (nibble - 8). */
    TODO("low nibble -> element j, high nibble -> element j + 16, x = d * (q - 8)");
}

/* ------------------------------------------------------------------------------------
 * products on q8_0 blocks
 * ---------------------------------------------------------------------------------- */

/* a . b over n values (n / QK blocks each), as ggml_vec_dot_q8_0_q8_0 */
float q8_0_dot(const BlockQ8_0 *a, const BlockQ8_0 *b, int n) {
    /* TODO: per block k, sum qa * qb in an int (README "The block dot product"), then add
     * d_a * d_b * sum to a float total. */
    TODO("per block: int sum of qa * qb, times both scales; add the blocks up");
    return 0.0f;
}

/* y (rows) = W x: w (rows, cols / QK blocks per row), x (cols) quantized into xq first */
void q8_0_matvec(float *y, const BlockQ8_0 *w, const float *x, int rows, int cols,
                 BlockQ8_0 *xq) {
    /* TODO: quantize x into xq (your q8_0_quantize), then y[r] = q8_0_dot of row r
     * (w + r * (cols / QK)) with xq. */
    TODO("x to q8_0 once, then one q8_0_dot per row");
}
