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
 */
#include "moekit.h"

void matmul(float *y, const float *x, const float *w, int in_features, int out_features) {
    for (int o = 0; o < out_features; o++) {
        const float *row = w + (size_t)o * in_features;
        float sum = 0.0f;
        for (int i = 0; i < in_features; i++) {
            sum += row[i] * x[i];
        }
        y[o] = sum;
    }
}

void matmul_tokens(float *y, const float *x, const float *w, int T, int in_features,
                   int out_features) {
    for (int t = 0; t < T; t++) {
        matmul(y + (size_t)t * out_features, x + (size_t)t * in_features, w, in_features,
               out_features);
    }
}
