/*
 * Lesson 05: the SwiGLU expert, the feed-forward network of every Qwen3-MoE layer. Each of
 * the 128 routed experts is one, the Qwen2-MoE shared expert is one, and so is the dense
 * MLP of a layer in mlp_only_layers; they differ only in their weights and sizes.
 *
 *   silu                   silu(z) = z * sigmoid(z) = z / (1 + exp(-z))    F.silu(z)
 *   expert_forward         one token:  x (C) -> out (C)
 *   expert_forward_tokens  T tokens:   x (T, C) -> out (T, C)
 *
 *   gate = x . gate_proj^T   (I)        gate_proj (I, C)
 *   up   = x . up_proj^T     (I)        up_proj   (I, C)
 *   out  = (silu(gate) * up) . down_proj^T  (C)    down_proj (C, I)
 *
 * The TODOs are the four functions below. Every product is linear() (one token) or
 * linear_tokens() (T tokens): your lesson 01 matmul, or lesson 09's kernel once the model
 * runs on it (moekit.h, "The model's products").
 * Test it: make check LESSON=05   (or `make check` in this directory)
 *
 * PyTorch (Qwen3MoeMLP.forward):
 *   down_proj = self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))
 */
#include <math.h>

#include "moekit.h"

float silu(float z) {
    /* TODO: return z * sigmoid(z), with sigmoid(z) = 1 / (1 + exp(-z)); the same thing is
     * z / (1 + expf(-z)). It must stay finite for any z: at z = -100, expf(100) is inf,
     * and z / inf = -0 is the right answer. */
    TODO("silu(z) = z / (1 + exp(-z))");
    return 0.0f;
}

/* hidden (n) = silu(gate (n)) * up (n): the gated linear unit, in place in gate. */
static void swiglu(float *gate, const float *up, long n) {
    /* TODO: gate[i] = silu(gate[i]) * up[i] for every i < n. silu goes on gate, not on up:
     * gate_proj decides how much of each up_proj feature passes. */
    TODO("gate[i] = silu(gate[i]) * up[i]");
}

void expert_forward(float *out, const float *x, const ExpertWeights *w, int hidden_size,
                    int intermediate_size, float *scratch) {
    float *gate = scratch, *up = scratch + intermediate_size;
    /* TODO: out (C) must equal down_proj(silu(gate_proj(x)) * up_proj(x)) for one token,
     * with C = hidden_size, I = intermediate_size, and gate and up (I each) the two halves
     * of scratch named above. Think about: the in and out size of every product (lesson
     * 01); which projection goes through silu (README "Which projection gets the SiLU");
     * which buffer holds the gated vector when down_proj reads it.
     * Done: out[c] == sum_i down_proj[c][i] * silu(gate[i]) * up[i]. */
    TODO("out = down_proj(silu(gate_proj(x)) * up_proj(x)) for one token");
}

void expert_forward_tokens(float *out, const float *x, const ExpertWeights *w, int T,
                           int hidden_size, int intermediate_size, float *scratch) {
    float *gate = scratch, *up = scratch + (long)T * intermediate_size;
    /* TODO: the same for all T rows at once, with linear_tokens: gate and up are (T, I)
     * each, the gating is elementwise over all T * I values, and out is (T, C).
     * Done: row t of out equals expert_forward of row t of x. */
    TODO("out[t] = expert(x[t]) for t in 0..T-1, with linear_tokens");
}
