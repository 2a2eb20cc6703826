/*
 * linear.c: the model's nn.Linear, and which kernel computes it (moekit.h, "The model's
 * products").
 *
 * Lessons 04-08 never call a kernel by name: every product of the model is linear() (one
 * token) or linear_tokens() (T tokens). The switch below sends it to lesson 01's loop or
 * to lesson 09's kernel. The kernel is chosen once, by the program, before the first
 * forward pass: the CLI's --matmul, the bench's modes, `check --matmul fast`.
 */
#include <stdio.h>

#include "moekit.h"

static MatmulKernel kernel = KERNEL_MATMUL; /* lesson 01 until told otherwise */

void linear_use(MatmulKernel k) { kernel = k; }

MatmulKernel linear_kernel(void) { return kernel; }

/* y (out) = W (out, in) . x (in) */
void linear(float *y, const float *x, const float *w, int in_features, int out_features) {
    switch (kernel) {
    case KERNEL_FAST_MATMUL: fast_matmul(y, x, w, in_features, out_features); return;
    case KERNEL_MATMUL: matmul(y, x, w, in_features, out_features); return;
    }
}

/* x (T, in) . W (out, in)^T -> y (T, out) */
void linear_tokens(float *y, const float *x, const float *w, int T, int in_features,
                   int out_features) {
    switch (kernel) {
    case KERNEL_FAST_MATMUL: fast_matmul_tokens(y, x, w, T, in_features, out_features); return;
    case KERNEL_MATMUL: matmul_tokens(y, x, w, T, in_features, out_features); return;
    }
}

const char *linear_describe(void) {
    static char line[96];
    if (kernel == KERNEL_MATMUL) return "lesson 01 matmul";
    snprintf(line, sizeof line, "lesson 09 fast_matmul (%s, %d thread%s)", fast_matmul_isa(),
             fast_matmul_max_threads(), fast_matmul_max_threads() == 1 ? "" : "s");
    return line;
}
