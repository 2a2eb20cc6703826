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
 */
#include <math.h>

#include "moekit.h"

void rmsnorm(float *out, const float *x, const float *weight, int n, float eps) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++) {
        ss += x[i] * x[i];
    }
    float inv_rms = 1.0f / sqrtf(ss / n + eps);
    for (int i = 0; i < n; i++) {
        out[i] = x[i] * inv_rms * weight[i];
    }
}
