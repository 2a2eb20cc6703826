"""Known-wrong variants of the reference: what a classic mistake outputs.

The exporter stores each as `<case>/<output>~<mistake>` so that the C harness can name the
mistake when a student's output matches it. Every function here has the signature of the
reference function it corrupts and changes one thing, reusing reference.py for the rest.
The function names are the mistake names used in the fixture keys.
"""

import torch

import reference as ref

# ------------------------------------------------------------------------------------
# Lesson 01: matmul
# ------------------------------------------------------------------------------------


def w_transposed(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """W (out, in) read as if stored [in, out]: x (T, in) @ w.reshape(in, out) -> (T, out)."""
    out_features, in_features = w.shape
    return ref.linear(x, w.reshape(in_features, out_features).t())


# ------------------------------------------------------------------------------------
# Lesson 02: RMSNorm
# ------------------------------------------------------------------------------------


def eps_outside_sqrt(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x / (sqrt(mean(x^2)) + eps) * weight; only visible when mean(x^2) is near eps."""
    rms = x.pow(2).mean(-1, keepdim=True).sqrt()
    return x / (rms + eps) * weight


def no_weight(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Normalises but forgets to multiply by the weight."""
    return ref.rmsnorm(x, torch.ones_like(weight), eps)


# ------------------------------------------------------------------------------------
# Lesson 03: RoPE
# ------------------------------------------------------------------------------------


def rope_interleaved(x: torch.Tensor, pos0: int, theta: float) -> torch.Tensor:
    """GPT-J pairing (x[2i], x[2i+1]) instead of rotate-half (x[i], x[i+D/2]).

    Gathers the even and odd elements into two halves, rotates with the reference and
    scatters back: the same frequencies applied to the wrong pairs.
    """
    D = x.shape[-1]
    order = torch.cat([torch.arange(0, D, 2), torch.arange(1, D, 2)])
    y = torch.empty_like(x)
    y[..., order] = ref.rope(x[..., order], pos0, theta)
    return y


def rope_freq_exponent(x: torch.Tensor, pos0: int, theta: float) -> torch.Tensor:
    """Frequencies f_i = theta^(-i/D): the 2 of theta^(-2i/D) forgotten."""
    D = x.shape[-1]
    i = torch.arange(D // 2, dtype=torch.float64)
    return ref.rope(x, pos0, theta, inv_freq=theta ** (-i / D))


# ------------------------------------------------------------------------------------
# Lesson 04: attention
# ------------------------------------------------------------------------------------


def softmax_overflow(x: torch.Tensor) -> torch.Tensor:
    """exp(x) / sum(exp(x)) without subtracting the max: inf/inf = NaN for large x.

    Not stored as a variant (NaN matches nothing); the exporter plugs it into
    ref.attention(softmax=...) in float32 to check that a case marked
    `~nonfinite = softmax_overflow` really overflows.
    """
    e = x.exp()
    return e / e.sum(dim=-1, keepdim=True)


def no_scale(q, k, v):
    """Causal attention without the 1/sqrt(D) score scale.  Shapes as ref.causal_attention."""
    return ref.attention(q, k, v, ref.causal_mask(q.shape[0]), scale=1.0)


def gqa_modulo(q, k, v):
    """Query head h reads kv head h % KV instead of h // (H / KV)."""
    kv_heads = torch.arange(q.shape[1]) % k.shape[1]
    return ref.attention(q, k, v, ref.causal_mask(q.shape[0]), kv_heads=kv_heads)


def mask_excludes_self(q, k, v):
    """Token t sees 0..t-1 only. Token 0 sees nothing: its row is NaN (kept as NaN)."""
    T = q.shape[0]
    return ref.attention(q, k, v, torch.ones(T, T, dtype=torch.bool).tril(-1))


def no_causal_mask(q, k, v):
    """Every token sees every position, the future included."""
    T = q.shape[0]
    return ref.attention(q, k, v, torch.ones(T, T, dtype=torch.bool))


def qk_norm_missing(h, w: dict, cfg: ref.AttnConfig):
    """Qwen3 self-attention that skips q_norm / k_norm.  Shapes as ref.self_attention."""
    without = {name: t for name, t in w.items() if name not in ("q_norm.weight", "k_norm.weight")}
    return ref.self_attention(h, without, cfg)


def qk_norm_after_rope(h, w: dict, cfg: ref.AttnConfig):
    """Applies q_norm / k_norm after RoPE instead of before (they do not commute: the
    per-element norm weight breaks the rotation's pairs)."""
    q, k, v = ref.qkv_proj(h, w, cfg)
    q, k = ref.rope_qk(q, k, cfg)
    q, k = ref.qk_norm(q, k, w, cfg)
    return ref.attend_and_project(q, k, v, w, cfg)


# The mistakes each lesson diagnoses (the exporter checks every one is stored somewhere).
BY_LESSON = {
    "01-matmul": [w_transposed],
    "02-rmsnorm": [eps_outside_sqrt, no_weight],
    "03-rope": [rope_interleaved, rope_freq_exponent],
    "04-attention": [no_scale, gqa_modulo, mask_excludes_self, no_causal_mask,
                     qk_norm_missing, qk_norm_after_rope],
}
