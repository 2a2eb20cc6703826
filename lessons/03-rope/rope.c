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
 *
 * Test it: make check LESSON=03   (or `make check` in this directory)
 */
#include <math.h>

#include "moekit.h"

/* Angles are computed in double: at pos 4095 a float angle would already be off by ~1e-4. */
void rope(float *x, int n_heads, int head_dim, int pos, float rope_theta) {
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        /* TODO: pair i of every head (head h starts at x + h * head_dim) must be rotated by
         * the angle a = pos * f_i, f_i = rope_theta^(-2i / head_dim), as in the block
         * comment above. Think about: what depends on the head and what does not (compute
         * that once per pair); the precision of a at large pos (README "Why the angles are
         * in double"); integer division in the exponent; both new values need both old
         * ones. */
        TODO("rotate (x[i], x[i + head_dim/2]) of every head by pos * theta^(-2i/head_dim)");
    }
}
