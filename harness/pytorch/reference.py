"""PyTorch reference of every moekit component, spelled out step by step.

This is the ground truth the fixtures are computed from (export_fixtures.py) and the thing
to read next to a lesson's C file. It follows the Hugging Face Qwen3-MoE / Qwen2-MoE code
(see /work/shared/KIT_SPEC.md) but avoids fused helpers (nn.RMSNorm,
scaled_dot_product_attention) so every step is visible. Targets torch 1.13.

Conventions:
  - plain functions taking tensors (and a small config where there are many knobs);
  - shapes in docstrings: T tokens, H query heads, KV key/value heads, D head_dim;
  - weights are [out_features, in_features] like nn.Linear: y = x @ W.T;
  - functions compute in the dtype of their inputs (the exporter passes float64 and rounds
    to float32 once at the end); the exceptions, which follow Hugging Face, say so.

Known-wrong variants of these functions live in mistakes.py and reuse the pieces here
(the `kv_heads=`, `mask=`, `scale=` and `inv_freq=` arguments and the small steps of
self_attention exist for that).
"""

import math
from dataclasses import dataclass

import torch

# ------------------------------------------------------------------------------------
# Lesson 01: matmul
# ------------------------------------------------------------------------------------


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """nn.Linear: x (..., in) . w (out, in)^T [+ b (out)] -> y (..., out)."""
    y = x @ w.t()
    return y if b is None else y + b


# ------------------------------------------------------------------------------------
# Lesson 02: RMSNorm
# ------------------------------------------------------------------------------------


def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x (..., n), weight (n) -> x / sqrt(mean(x^2) + eps) * weight, same shape.

    Like Hugging Face, computed in at least float32 (bf16/f16 inputs are upcast because
    mean(x^2) loses too much in half precision); float64 inputs stay float64.
    """
    dtype = torch.promote_types(x.dtype, torch.float32)
    x = x.to(dtype)
    inv_rms = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return x * inv_rms * weight.to(dtype)


# ------------------------------------------------------------------------------------
# Lesson 03: RoPE (rotate-half / NeoX pairing)
# ------------------------------------------------------------------------------------


def rope_inv_freq(head_dim: int, theta: float) -> torch.Tensor:
    """-> inv_freq (D/2) float64, f_i = theta^(-2i/D) for i < D/2."""
    i = torch.arange(head_dim // 2, dtype=torch.float64)
    return theta ** (-2.0 * i / head_dim)


def rope_cos_sin(positions: torch.Tensor, inv_freq: torch.Tensor):
    """positions (T) integers, inv_freq (D/2) -> cos, sin each (T, D/2) float32.

    The angles pos * f_i reach thousands of radians at long positions; computing them and
    cos/sin in float64 first and rounding once gives the exact float32 table (Hugging Face
    does it in float32 and is off by ~1e-4 at pos 4096).
    """
    angles = positions.to(torch.float64)[:, None] * inv_freq.to(torch.float64)[None, :]
    return angles.cos().to(torch.float32), angles.sin().to(torch.float32)


def rope_rotate_half(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (T, heads, D), cos/sin (T, D/2) -> rotated x, same shape and dtype.

    Pairs (x_i, x_{i+D/2}) -> (x_i cos - x_{i+D/2} sin, x_{i+D/2} cos + x_i sin).
    """
    half = x.shape[-1] // 2
    lo, hi = x[..., :half], x[..., half:]
    cos = cos.to(x.dtype)[:, None, :]  # broadcast over heads
    sin = sin.to(x.dtype)[:, None, :]
    return torch.cat([lo * cos - hi * sin, hi * cos + lo * sin], dim=-1)


def rope(x: torch.Tensor, pos0: int, theta: float,
         inv_freq: torch.Tensor | None = None) -> torch.Tensor:
    """x (T, heads, D), token t at position pos0 + t -> rotated x (T, heads, D)."""
    T, _, D = x.shape
    assert D % 2 == 0, "RoPE needs an even head_dim"
    if inv_freq is None:
        inv_freq = rope_inv_freq(D, theta)
    cos, sin = rope_cos_sin(torch.arange(pos0, pos0 + T), inv_freq)
    return rope_rotate_half(x, cos, sin)


# ------------------------------------------------------------------------------------
# Lesson 04: attention
# ------------------------------------------------------------------------------------


def softmax(x: torch.Tensor) -> torch.Tensor:
    """x (..., n) -> softmax over the last axis, same shape.

    Subtracting the row max first keeps exp() <= 1, so large scores cannot overflow.
    A row that is all -inf (nothing to attend to) comes out NaN, as in PyTorch.
    """
    z = x - x.max(dim=-1, keepdim=True).values
    e = z.exp()
    return e / e.sum(dim=-1, keepdim=True)


def kv_head_of(n_heads: int, n_kv_heads: int) -> torch.Tensor:
    """-> (H) long: the kv head each query head reads, h // (H / KV) (GQA groups)."""
    assert n_heads % n_kv_heads == 0, "H must be a multiple of KV"
    return torch.arange(n_heads) // (n_heads // n_kv_heads)


def causal_mask(T: int) -> torch.Tensor:
    """-> (T, T) bool, True where query t may see key s, i.e. s <= t."""
    return torch.ones(T, T, dtype=torch.bool).tril()


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, *,
              kv_heads: torch.Tensor | None = None, scale: float | None = None,
              softmax=softmax) -> torch.Tensor:
    """Masked softmax attention with grouped kv heads.

    q (T, H, D), k and v (S, KV, D), mask (T, S) bool (True = may attend)
    -> out (T, H, D).  kv_heads (H) defaults to kv_head_of(H, KV); scale to 1/sqrt(D);
    `softmax` is replaceable so mistakes.py can try a naive one.
    """
    T, H, D = q.shape
    if kv_heads is None:
        kv_heads = kv_head_of(H, k.shape[1])
    if scale is None:
        scale = 1.0 / math.sqrt(D)
    k_h = k[:, kv_heads, :].transpose(0, 1)  # (H, S, D): kv head of each query head
    v_h = v[:, kv_heads, :].transpose(0, 1)
    scores = (q.transpose(0, 1) @ k_h.transpose(1, 2)) * scale  # (H, T, S)
    scores = scores.masked_fill(~mask, float("-inf"))
    probs = softmax(scores)
    return (probs @ v_h).transpose(0, 1)  # (T, H, D)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Prefill: q (T, H, D), k and v (T, KV, D); token t sees 0..t -> out (T, H, D)."""
    return attention(q, k, v, causal_mask(q.shape[0]))


@dataclass(frozen=True)
class AttnConfig:
    """The attention hyper-parameters of one layer (names as in config.json)."""
    hidden_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0


def qkv_proj(h: torch.Tensor, w: dict, cfg: AttnConfig):
    """h (T, hidden) -> q (T, H, D), k (T, KV, D), v (T, KV, D).

    w holds 'q_proj.weight' ... and, for Qwen2-MoE, 'q_proj.bias' ... (absent = no bias).
    """
    T, D = h.shape[0], cfg.head_dim
    q = linear(h, w["q_proj.weight"], w.get("q_proj.bias"))
    k = linear(h, w["k_proj.weight"], w.get("k_proj.bias"))
    v = linear(h, w["v_proj.weight"], w.get("v_proj.bias"))
    return (q.view(T, cfg.num_attention_heads, D), k.view(T, cfg.num_key_value_heads, D),
            v.view(T, cfg.num_key_value_heads, D))


def qk_norm(q: torch.Tensor, k: torch.Tensor, w: dict, cfg: AttnConfig):
    """Qwen3: RMSNorm every q head and k head over head_dim; no-op without the weights.

    q (T, H, D), k (T, KV, D) -> same shapes.
    """
    if "q_norm.weight" not in w:
        return q, k
    return (rmsnorm(q, w["q_norm.weight"], cfg.rms_norm_eps).to(q.dtype),
            rmsnorm(k, w["k_norm.weight"], cfg.rms_norm_eps).to(k.dtype))


def rope_qk(q: torch.Tensor, k: torch.Tensor, cfg: AttnConfig):
    """RoPE on q (T, H, D) and k (T, KV, D) at positions 0..T-1 -> same shapes."""
    return rope(q, 0, cfg.rope_theta), rope(k, 0, cfg.rope_theta)


def attend_and_project(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, w: dict,
                       cfg: AttnConfig) -> torch.Tensor:
    """Causal attention then o_proj: q (T, H, D), k and v (T, KV, D) -> out (T, hidden)."""
    o = causal_attention(q, k, v)  # (T, H, D)
    return linear(o.reshape(q.shape[0], -1), w["o_proj.weight"])  # heads concatenated


def self_attention(h: torch.Tensor, w: dict, cfg: AttnConfig) -> torch.Tensor:
    """One layer's self-attention as a causal prefill of positions 0..T-1.

    h (T, hidden), already normalised by input_layernorm -> out (T, hidden), the o_proj
    output (the residual add is the caller's). w: the layer's 'self_attn.*' tensors without
    the prefix: {q,k,v,o}_proj.weight, optional {q,k,v}_proj.bias, optional
    {q,k}_norm.weight.
    """
    q, k, v = qkv_proj(h, w, cfg)
    q, k = qk_norm(q, k, w, cfg)  # Qwen3 normalises each head before RoPE
    q, k = rope_qk(q, k, cfg)
    return attend_and_project(q, k, v, w, cfg)
