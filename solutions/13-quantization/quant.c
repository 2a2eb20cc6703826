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
 * compare your blocks byte for byte. The declarations are in harness/include/quant.h.
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

uint16_t f32_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    /* a NaN whose payload sits in the low 16 bits would round to inf: keep it a NaN */
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    /* add just under half an ulp of bf16, plus the kept bit's parity: ties go to even */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

float bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* ------------------------------------------------------------------------------------
 * q8_0: 32 int8 per fp16 scale
 * ---------------------------------------------------------------------------------- */

void q8_0_quantize(BlockQ8_0 *y, const float *x, long n) {
    for (long b = 0; b < n / QK; b++, x += QK) {
        float amax = 0.0f;
        for (int i = 0; i < QK; i++) amax = fmaxf(amax, fabsf(x[i]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fp16_from_float(d);
        /* q from the float32 d, as llama.cpp does; only the stored d is rounded to fp16 */
        for (int i = 0; i < QK; i++) y[b].qs[i] = (int8_t)lroundf(x[i] * id);
    }
}

void q8_0_dequantize(float *x, const BlockQ8_0 *y, long n) {
    for (long b = 0; b < n / QK; b++) {
        float d = fp16_to_float(y[b].d);
        for (int i = 0; i < QK; i++) x[b * QK + i] = d * (float)y[b].qs[i];
    }
}

/* ------------------------------------------------------------------------------------
 * q4_0: 32 nibbles per fp16 scale, stored offset by 8
 * ---------------------------------------------------------------------------------- */

/* x / d + 8.5 is >= 0.5 (|x| <= |m| = 8 |d|), so the cast truncates toward floor: round
 * half up of x / d, plus 8 */
static uint8_t q4_level(float v) {
    int q = (int)(v + 8.5f);
    return (uint8_t)(q < 15 ? q : 15);
}

void q4_0_quantize(BlockQ4_0 *y, const float *x, long n) {
    for (long b = 0; b < n / QK; b++, x += QK) {
        float amax = 0.0f, m = 0.0f;
        for (int i = 0; i < QK; i++)
            if (fabsf(x[i]) > amax) amax = fabsf(x[i]), m = x[i];
        float d = m / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fp16_from_float(d);
        for (int j = 0; j < QK / 2; j++)
            y[b].qs[j] = (uint8_t)(q4_level(x[j] * id) | q4_level(x[j + QK / 2] * id) << 4);
    }
}

void q4_0_dequantize(float *x, const BlockQ4_0 *y, long n) {
    for (long b = 0; b < n / QK; b++) {
        float d = fp16_to_float(y[b].d);
        for (int j = 0; j < QK / 2; j++) {
            x[b * QK + j] = d * (float)((y[b].qs[j] & 15) - 8);
            x[b * QK + j + QK / 2] = d * (float)((y[b].qs[j] >> 4) - 8);
        }
    }
}

/* ------------------------------------------------------------------------------------
 * products on q8_0 blocks
 * ---------------------------------------------------------------------------------- */

float q8_0_dot(const BlockQ8_0 *a, const BlockQ8_0 *b, int n) {
    float s = 0.0f;
    for (int k = 0; k < n / QK; k++) {
        int sum = 0; /* at most 32 * 127 * 127: no overflow */
        for (int i = 0; i < QK; i++) sum += a[k].qs[i] * b[k].qs[i];
        s += fp16_to_float(a[k].d) * fp16_to_float(b[k].d) * (float)sum;
    }
    return s;
}

void q8_0_matvec(float *y, const BlockQ8_0 *w, const float *x, int rows, int cols,
                 BlockQ8_0 *xq) {
    q8_0_quantize(xq, x, cols);
    for (int r = 0; r < rows; r++) y[r] = q8_0_dot(w + (long)r * (cols / QK), xq, cols);
}
