/*
 * Lesson 03: RoPE, rotary position embedding. Attention itself has no idea of order;
 * RoPE rotates q and k by an angle that grows with the position, so the score q . k
 * depends on how far apart the two tokens are.
 *
 * For each head x (head_dim), for i < head_dim/2 (rotate-half / NeoX pairing):
 *     f_i = rope_theta^(-2i / head_dim),  a = pos * f_i
 *     (x[i], x[i + head_dim/2]) -> (x[i] cos a - x[i + head_dim/2] sin a,
 *                                   x[i + head_dim/2] cos a + x[i] sin a)
 *
 * PyTorch (Hugging Face): q * cos + rotate_half(q) * sin,
 *     rotate_half(x) = torch.cat((-x[..., d/2:], x[..., :d/2]), dim=-1)
 */
#include <math.h>

#include "moekit.h"

/* Angles are computed in double: at pos 4095 a float angle would already be off by ~1e-4. */
void rope(float *x, int n_heads, int head_dim, int pos, float rope_theta) {
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        double freq = pow((double)rope_theta, -2.0 * i / head_dim);
        double a = pos * freq;
        float c = (float)cos(a), s = (float)sin(a);
        for (int h = 0; h < n_heads; h++) {
            float *head = x + (size_t)h * head_dim;
            float x0 = head[i], x1 = head[i + half];
            head[i] = x0 * c - x1 * s;
            head[i + half] = x1 * c + x0 * s;
        }
    }
}
