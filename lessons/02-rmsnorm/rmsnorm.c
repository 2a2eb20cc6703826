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
    /* TODO: out[i] must equal x[i] / sqrt(mean(x^2) + eps) * weight[i] for every i < n.
     * Think about: the one number the whole vector contributes, and that it must be known
     * before the first out[i] is written (out may be the same array as x); where eps goes
     * (inside the square root: README "Where eps goes"); that a divide per element costs
     * more than one divide and a multiply per element. */
    TODO("out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i]");
}
