/*
 * Lesson 02: RMSNorm, applied before attention (input_layernorm), before the MLP
 * (post_attention_layernorm), to each q and k head (q_norm, k_norm) and at the end
 * (model.norm).
 *
 *     out (n) = x (n) / sqrt(mean(x^2) + eps) * weight (n)
 *
 * PyTorch: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight
 *
 * Unlike LayerNorm there is no mean subtraction and no bias: only the scale of the
 * vector is normalised, and weight gives each channel its own gain back.
 *
 * Test it: make check LESSON=02   (or `make check` in this directory)
 */
#include <math.h>

#include "moekit.h"

void rmsnorm(float *out, const float *x, const float *weight, int n, float eps) {
    /* TODO: 1. ss = sum of x[i]^2 over the n values;
     *       2. inv_rms = 1 / sqrt(ss / n + eps)    (eps inside the square root);
     *       3. out[i] = x[i] * inv_rms * weight[i].
     * out may be the same array as x: read all of x before writing out. */
    TODO("out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i]");
}
