/*
 * Lesson 01: matmul, the operation that does almost all of the model's work.
 *
 * Every nn.Linear in the model (q_proj, k_proj, gate_proj, the experts, lm_head ...) is
 * a matrix-vector product with a weight stored [out_features, in_features], row-major:
 *
 *     matmul:        y (out)    = W (out, in) . x (in)        PyTorch: F.linear(x, W)
 *     matmul_tokens: y (T, out) = x (T, in) . W (out, in)^T   PyTorch: x @ W.T
 *
 * Row o of W is the contiguous slice w[o * in_features .. (o + 1) * in_features).
 * Lesson 09 makes this fast; here it only has to be right.
 *
 * Test it: make check LESSON=01   (or `make check` in this directory)
 */
#include "moekit.h"

void matmul(float *y, const float *x, const float *w, int in_features, int out_features) {
    for (int o = 0; o < out_features; o++) {
        /* TODO: y[o] must equal sum over i of W[o, i] * x[i], with W[o, i] at
         * w[o * in_features + i]. Accumulate in a float local, then store it. */
        TODO("y[o] = dot(row o of W, x)");
    }
}

void matmul_tokens(float *y, const float *x, const float *w, int T, int in_features,
                   int out_features) {
    /* TODO: for every token t, row t of y (out_features values) is matmul of row t of x
     * (in_features values). Reuse matmul(). */
    TODO("y[t] = matmul(x[t]) for t in 0..T-1");
}
