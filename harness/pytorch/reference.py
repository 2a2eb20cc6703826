"""PyTorch reference of every moekit component, spelled out step by step.

This is the ground truth the fixtures are computed from (export_fixtures.py) and the thing
to read next to a lesson's C file. It follows the Hugging Face Qwen3-MoE / Qwen2-MoE code
(docs/spec.md states the semantics, in the kit's words) but avoids fused helpers (nn.RMSNorm,
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


# ------------------------------------------------------------------------------------
# Lesson 05: the SwiGLU expert
# ------------------------------------------------------------------------------------


def silu(z: torch.Tensor) -> torch.Tensor:
    """silu(z) = z * sigmoid(z) = z / (1 + exp(-z)), elementwise (F.silu)."""
    return z / (1 + torch.exp(-z))


def expert(x: torch.Tensor, gate_proj: torch.Tensor, up_proj: torch.Tensor,
           down_proj: torch.Tensor, act=silu) -> torch.Tensor:
    """One SwiGLU feed-forward (an MoE expert, the shared expert or a dense MLP).

    x (T, C), gate_proj and up_proj (I, C), down_proj (C, I) -> (T, C):
    down_proj(act(gate_proj(x)) * up_proj(x)). `act` is replaceable for mistakes.py.
    """
    gate = linear(x, gate_proj)  # (T, I)
    up = linear(x, up_proj)  # (T, I)
    return linear(act(gate) * up, down_proj)


# ------------------------------------------------------------------------------------
# Lesson 06: the router
# ------------------------------------------------------------------------------------


def topk(p: torch.Tensor, k: int):
    """The k largest of p (n): -> idx (k) long, val (k), descending; equal values keep the
    lower index first (a stable order, which torch.topk does not promise)."""
    order = sorted(range(p.shape[0]), key=lambda i: (-p[i].item(), i))[:k]
    idx = torch.tensor(order, dtype=torch.long)
    return idx, p[idx]


def route(logits: torch.Tensor, k: int, norm_topk_prob: bool,
          disabled: torch.Tensor | None = None):
    """One router decision per token, as Qwen3MoeSparseMoeBlock / Qwen2MoeSparseMoeBlock.

    logits (T, E) -> probs (T, E) softmax over all E experts, experts (T, k) long, the
    top-k by probability (disabled (E) bool experts are never chosen), weights (T, k)
    their probabilities, divided by their sum when norm_topk_prob. Hugging Face runs this
    softmax in float32 even for bf16 models (dtype=torch.float).
    """
    probs = softmax(logits)
    chooser = probs if disabled is None else probs.masked_fill(disabled, float("-inf"))
    picks = [topk(row, k)[0] for row in chooser]
    experts = torch.stack(picks)
    weights = probs.gather(1, experts)
    if norm_topk_prob:
        weights = weights / weights.sum(-1, keepdim=True)
    return probs, experts, weights


def load_balancing_loss(probs: torch.Tensor, experts: torch.Tensor, num_experts: int):
    """Switch / Hugging Face auxiliary loss over N routed tokens (a 0-dim tensor).

    probs (N, E), experts (N, k): E * sum_e (c_e / N) * P_e, where c_e counts the
    (token, slot) assignments to expert e and P_e is the mean of probs[:, e]. Equal to
    transformers' load_balancing_loss_func (before router_aux_loss_coef): it averages the
    one-hot (N, k, E) mask over tokens and sums over k and E. Balanced routing scores k.
    """
    N = probs.shape[0]
    counts = torch.zeros(num_experts, dtype=probs.dtype)
    counts.index_add_(0, experts.reshape(-1), torch.ones(experts.numel(), dtype=probs.dtype))
    return num_experts * ((counts / N) * probs.mean(0)).sum()


def logsumexp(x: torch.Tensor) -> torch.Tensor:
    """log(sum(exp(x))) over the last axis, with the max taken out first (no overflow)."""
    m = x.max(dim=-1).values
    return m + (x - m[..., None]).exp().sum(-1).log()


def router_z_loss(logits: torch.Tensor) -> torch.Tensor:
    """ST-MoE router z-loss: mean over tokens of logsumexp(logits[t])^2 (a 0-dim tensor)."""
    return logsumexp(logits).pow(2).mean()


# ------------------------------------------------------------------------------------
# Lesson 07: the MoE layer
# ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MoeConfig:
    """The sparse MLP's hyper-parameters (names as in config.json)."""
    num_experts: int
    num_experts_per_tok: int
    norm_topk_prob: bool
    capacity_factor: float = 0.0  # 0: unlimited


@dataclass
class MoeResult:
    """What one MoE layer call produced (the C MoeStats, plus the output)."""
    out: torch.Tensor  # (T, C)
    logits: torch.Tensor  # (T, E)
    probs: torch.Tensor  # (T, E)
    experts: torch.Tensor  # (T, k) long, -1 where the capacity limit dropped the slot
    weights: torch.Tensor  # (T, k), the router's weights (dropped slots keep theirs)
    expert_count: torch.Tensor  # (E) long, rows each expert computed
    dropped: int


def expert_capacity(T: int, cfg: MoeConfig, rounding=math.ceil) -> int:
    """Rows one expert may take: ceil(capacity_factor * T * k / E); T without a limit
    (a token picks an expert at most once, so no expert can get more)."""
    if cfg.capacity_factor <= 0:
        return T
    return int(rounding(cfg.capacity_factor * T * cfg.num_experts_per_tok / cfg.num_experts))


def token_order(T: int, k: int):
    """The order in which (token, slot) assignments claim capacity: token 0 first, and
    within a token slot 0 first."""
    return [(t, j) for t in range(T) for j in range(k)]


def apply_capacity(experts: torch.Tensor, num_experts: int, capacity: int, order=None):
    """experts (T, k) -> (kept (T, k) with -1 for dropped slots, count (E) long, dropped).

    First come, first served: assignments are visited in `order` (default token_order)
    and an expert that already has `capacity` rows refuses the rest.
    """
    T, k = experts.shape
    kept = experts.clone()
    count = torch.zeros(num_experts, dtype=torch.long)
    dropped = 0
    for t, j in (order or token_order(T, k)):
        e = experts[t, j].item()
        if count[e] < capacity:
            count[e] += 1
        else:
            kept[t, j] = -1
            dropped += 1
    return kept, count, dropped


def expert_weights(w: dict, e: int, prefix: str = "experts."):
    """(gate_proj, up_proj, down_proj) of routed expert e from the stacked tensors
    'experts.gate_proj.weight' (E, I, C), 'experts.up_proj.weight' (E, I, C),
    'experts.down_proj.weight' (E, C, I); or the shared expert with prefix 'shared_expert.'
    (unstacked, e ignored)."""
    names = [f"{prefix}{p}.weight" for p in ("gate_proj", "up_proj", "down_proj")]
    return tuple(w[n] if prefix == "shared_expert." else w[n][e] for n in names)


def moe_combine(h: torch.Tensor, w: dict, experts: torch.Tensor,
                weights: torch.Tensor) -> torch.Tensor:
    """Dispatch and combine: h (T, C), experts (T, k) (-1 = dropped), weights (T, k)
    -> (T, C) = sum over kept slots of weights[t, j] * expert_{experts[t, j]}(h[t]).

    Each used expert runs once over the rows that chose it, like the C code.
    """
    out = torch.zeros_like(h)
    for e in sorted(set(experts[experts >= 0].tolist())):
        rows, slots = torch.nonzero(experts == e, as_tuple=True)
        y = expert(h[rows], *expert_weights(w, e))
        out.index_add_(0, rows, weights[rows, slots, None] * y)
    return out


def shared_expert(h: torch.Tensor, w: dict, gate_act=torch.sigmoid) -> torch.Tensor:
    """Qwen2-MoE: sigmoid(h . shared_expert_gate) * shared_expert(h), (T, C); zeros when
    the layer has no shared expert."""
    if "shared_expert.gate_proj.weight" not in w:
        return torch.zeros_like(h)
    gate = gate_act(linear(h, w["shared_expert_gate.weight"]))  # (T, 1)
    return gate * expert(h, *expert_weights(w, 0, "shared_expert."))


def moe_forward(h: torch.Tensor, w: dict, cfg: MoeConfig, *, capacity=None, order=None,
                combine_weights=None, gate_act=torch.sigmoid) -> MoeResult:
    """The sparse MLP of T tokens (Qwen3MoeSparseMoeBlock, Qwen2MoeSparseMoeBlock).

    h (T, C) already normalised by post_attention_layernorm; w: the layer's 'mlp.*'
    tensors without the prefix: 'gate.weight' (E, C), the stacked experts (see
    expert_weights), optional 'shared_expert.*' and 'shared_expert_gate.weight' (1, C).
    The keyword arguments exist for mistakes.py: the capacity, the order assignments
    claim it, a function of the (T, k) weights used to combine, the shared gate's act.
    """
    T = h.shape[0]
    logits = linear(h, w["gate.weight"])
    probs, experts, weights = route(logits, cfg.num_experts_per_tok, cfg.norm_topk_prob)
    cap = expert_capacity(T, cfg) if capacity is None else capacity
    kept, count, dropped = apply_capacity(experts, cfg.num_experts, cap, order)
    used = weights if combine_weights is None else combine_weights(weights)
    out = moe_combine(h, w, kept, used) + shared_expert(h, w, gate_act)
    return MoeResult(out, logits, probs, kept, weights, count, dropped)


def moe_layer(h: torch.Tensor, w: dict, cfg: MoeConfig) -> torch.Tensor:
    """moe_forward's output only: h (T, C) -> (T, C)."""
    return moe_forward(h, w, cfg).out


# ------------------------------------------------------------------------------------
# Bonus lesson 10: routing variants
# ------------------------------------------------------------------------------------


def switch_route(logits: torch.Tensor):
    """Switch Transformer top-1: logits (T, E) -> experts (T) long, the argmax (lower index
    on ties), weights (T) its softmax probability, not renormalised."""
    probs = softmax(logits)
    experts = torch.stack([topk(row, 1)[0][0] for row in probs])
    return experts, probs.gather(1, experts[:, None])[:, 0]


def expert_choice_route(probs: torch.Tensor, capacity: int):
    """Expert choice (Zhou et al., 2022): probs (T, E), each token's softmax over experts.
    Every expert e takes the `capacity` tokens with the largest probs[:, e]:
    -> tokens (E, capacity) long, descending (lower token first on ties), gates (E, capacity)
    their probabilities."""
    picks = [topk(col, capacity) for col in probs.t()]
    return torch.stack([i for i, _ in picks]), torch.stack([v for _, v in picks])


def expert_choice_moe(h: torch.Tensor, w: dict, capacity: int, *, scores=None):
    """The MoE layer routed by expert choice: h (T, C) -> out (T, C), tokens (E, capacity).

    probs = softmax over experts of h . gate^T; out[t] = sum over the experts e that took
    token t of gates[e, .] * expert_e(h[t]); a token no expert took gets 0. `scores`
    replaces the softmax for mistakes.py.
    """
    logits = linear(h, w["gate.weight"])
    probs = softmax(logits) if scores is None else scores(logits)
    tokens, gates = expert_choice_route(probs, capacity)
    out = torch.zeros_like(h)
    for e in range(tokens.shape[0]):
        y = expert(h[tokens[e]], *expert_weights(w, e))
        out.index_add_(0, tokens[e], gates[e, :, None] * y)
    return out, tokens


def softplus(x: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(x)), elementwise (F.softplus), written so that exp() cannot overflow:
    max(x, 0) + log(1 + exp(-|x|))."""
    return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))


def noisy_topk_route(logits: torch.Tensor, noise_logits: torch.Tensor, noise: torch.Tensor,
                     k: int, *, keep_topk=True):
    """Noisy top-k gating (Shazeer et al., 2017, section 2.1, equations 3 to 5).

    logits = x W_g, noise_logits = x W_noise and noise ~ StandardNormal(), all (T, E): the
    caller draws the noise (all zeros at evaluation: plain top-k).
      H = logits + noise * softplus(noise_logits)                    (eq. 4)
      G = softmax(KeepTopK(H, k)), the others -inf before the softmax (eqs. 3, 5)
    -> experts (T, k) long (descending H, lower index on ties), weights (T, k) their G, which
    sum to 1. keep_topk=False (mistakes.py) takes the softmax over all E instead.
    """
    H = logits + noise * softplus(noise_logits)
    experts = torch.stack([topk(row, k)[0] for row in H])
    kept = H.gather(1, experts)
    weights = softmax(kept) if keep_topk else softmax(H).gather(1, experts)
    return experts, weights


def noisy_topk_moe(h: torch.Tensor, w: dict, noise: torch.Tensor, k: int, *, keep_topk=True):
    """The MoE layer with noisy top-k gating: h (T, C), w with 'gate.weight' (E, C) = W_g
    and 'noise.weight' (E, C) = W_noise (as nn.Linear weights), noise (T, E)
    -> out (T, C), experts (T, k), weights (T, k). The combine is lesson 07's (no capacity)."""
    experts, weights = noisy_topk_route(linear(h, w["gate.weight"]),
                                        linear(h, w["noise.weight"]), noise, k,
                                        keep_topk=keep_topk)
    return moe_combine(h, w, experts, weights), experts, weights


def dense_moe(h: torch.Tensor, w: dict, *, weights=None):
    """The dense softmax mixture: every expert on every token.

    h (T, C) -> out (T, C) = sum_e softmax(h . gate^T)[t, e] * expert_e(h[t]). `weights`
    replaces the softmax for mistakes.py."""
    logits = linear(h, w["gate.weight"])
    probs = softmax(logits) if weights is None else weights(logits)
    out = torch.zeros_like(h)
    for e in range(probs.shape[1]):
        out += probs[:, e, None] * expert(h, *expert_weights(w, e))
    return out


def soft_moe(h: torch.Tensor, phi: torch.Tensor, w: dict, slots_per_expert: int, *,
             dispatch_dim=0):
    """Soft MoE (Puigcerver et al., 2023, "From Sparse to Soft Mixtures of Experts",
    section 2.1), without the paper's L2 normalisation of h and phi.

    h (T, C); phi (S, C), one row per slot, S = E * p, slots e*p .. e*p+p-1 belong to expert
    e (the paper's Phi is (C, S): this is its transpose, stored like an nn.Linear weight).
      logits   = h @ phi.T                      (T, S)
      D        = softmax over the tokens (dim 0): each slot is a convex combination of tokens
      slot_in  = D.T @ h                        (S, C)
      slot_out = expert e on its p slots        (S, C)
      Cw       = softmax over the slots (dim 1): each token a convex combination of slots
      out      = Cw @ slot_out                  (T, C)
    dispatch_dim=1 (mistakes.py) normalises the dispatch over the slots instead.
    """
    logits = linear(h, phi)
    D = softmax(logits.t()).t() if dispatch_dim == 0 else softmax(logits)
    slot_in = D.t() @ h
    p = slots_per_expert
    slot_out = torch.cat([expert(slot_in[e * p:(e + 1) * p], *expert_weights(w, e))
                          for e in range(phi.shape[0] // p)])
    return softmax(logits) @ slot_out


# ------------------------------------------------------------------------------------
# Lesson 12: expert parallelism (the MoE layer over P ranks, simulated)
# ------------------------------------------------------------------------------------


def ep_first_expert(rank: int, P: int, E: int) -> int:
    """Rank r of P holds experts r*E//P .. (r+1)*E//P - 1 (P need not divide E)."""
    return rank * E // P


def ep_owner(e: int, P: int, E: int) -> int:
    """The rank that holds expert e: the r with r*E//P <= e < (r+1)*E//P."""
    return ((e + 1) * P - 1) // E


def ep_token_range(rank: int, P: int, T: int):
    """The tokens rank r holds: rows r*T//P .. (r+1)*T//P - 1 of h."""
    return rank * T // P, (rank + 1) * T // P


@dataclass
class EpResult:
    out: torch.Tensor          # (T, C), the same as moe_layer's for every P
    send_counts: torch.Tensor  # (P, P) long: rows rank src sends to rank dst
    send_displs: torch.Tensor  # (P, P) long: where they start in src's send buffer
    recv_counts: torch.Tensor  # (P, P) long: rows rank dst receives from rank src
    recv_displs: torch.Tensor  # (P, P) long
    dropped: torch.Tensor      # (P) long: rows each rank's experts refused (capacity)


def ep_pack(experts: torch.Tensor, P: int, E: int, T: int):
    """Each rank's (token, slot) assignments grouped by destination rank, in token order
    within a destination: packed[src][dst] = [(t, j), ...]."""
    k = experts.shape[1]
    packed = []
    for r in range(P):
        t0, t1 = ep_token_range(r, P, T)
        by_dst = [[] for _ in range(P)]
        for t in range(t0, t1):
            for j in range(k):
                by_dst[ep_owner(experts[t, j].item(), P, E)].append((t, j))
        packed.append(by_dst)
    return packed


def ep_moe_forward(h: torch.Tensor, w: dict, cfg: MoeConfig, P: int, *, arrival_order=False,
                   weights_twice=False, local_capacity=False) -> EpResult:
    """moe_forward (no shared expert) as P ranks compute it: rank r routes its tokens,
    sends each (token, slot) row to the owner of its expert (grouped by destination, in
    token order), the owner runs its experts over the rows in arrival order (source rank,
    then position: the global token order, so capacity drops what moe_forward drops) and
    sends back the weighted rows, which each rank adds into its tokens. The keyword
    arguments exist for mistakes.py."""
    T, C = h.shape
    E, k = cfg.num_experts, cfg.num_experts_per_tok
    _, experts, weights = route(linear(h, w["gate.weight"]), k, cfg.norm_topk_prob)
    packed = ep_pack(experts, P, E, T)
    send_counts = torch.tensor([[len(packed[r][d]) for d in range(P)] for r in range(P)])
    displs = lambda c: torch.cumsum(c, 1) - c  # noqa: E731 (exclusive prefix sums per row)
    recv_counts = send_counts.t().contiguous()
    y, dropped = {}, torch.zeros(P, dtype=torch.long)
    for d in range(P):
        t0, t1 = ep_token_range(d, P, T)
        cap = expert_capacity(t1 - t0 if local_capacity else T, cfg)
        count = {}
        for t, j in (s for r in range(P) for s in packed[r][d]):
            e = experts[t, j].item()
            if count.get(e, 0) < cap:
                count[e] = count.get(e, 0) + 1
                y[(t, j)] = weights[t, j] * expert(h[t:t + 1], *expert_weights(w, e))[0]
            else:
                y[(t, j)] = torch.zeros(C, dtype=h.dtype)
                dropped[d] += 1
    out = torch.zeros_like(h)
    for r in range(P):
        t0, t1 = ep_token_range(r, P, T)
        in_token_order = [(t, j) for t in range(t0, t1) for j in range(k)]
        returned = [s for d in range(P) for s in packed[r][d]]
        for i, s in enumerate(returned):
            t = in_token_order[i][0] if arrival_order else s[0]
            out[t] += y[s] * (weights[s] if weights_twice else 1)
    return EpResult(out, send_counts, displs(send_counts), recv_counts, displs(recv_counts),
                    dropped)


# ------------------------------------------------------------------------------------
# Lesson 13: quantization. The exception to float64: llama.cpp's rules are float32 rules
# (the scale, its inverse and x times it are float32 operations whose rounding decides the
# bytes), so these run in float32, as the C code does, and give its bytes exactly.
# Bytes are int64 tensors of values 0 .. 255; bits are int64 too.
# ------------------------------------------------------------------------------------

QK = 32  # values per block, q8_0 and q4_0 (llama.cpp's QK8_0 = QK4_0 = 32)


def float_of_bits(bits: torch.Tensor) -> torch.Tensor:
    """uint32 bit patterns (int64, 0 .. 2^32) -> float32 with those bits (NaN payloads kept)."""
    return (((bits + 2**31) % 2**32) - 2**31).to(torch.int32).view(torch.float32)


def bf16_bits(x_bits: torch.Tensor) -> torch.Tensor:
    """float32 bits (n) -> bf16 bits (n): x.bfloat16(), round to nearest, ties to even. A NaN
    becomes 0x7FC0 (PyTorch's; the C tests accept any NaN for a NaN)."""
    return float_of_bits(x_bits).bfloat16().view(torch.int16).to(torch.int64) & 0xFFFF


def bf16_value(b_bits: torch.Tensor) -> torch.Tensor:
    """bf16 bits (n) -> float32 (n): the bits as the top half of a float32."""
    return float_of_bits(b_bits.to(torch.int64) << 16)


def fp16_bits(d: torch.Tensor) -> torch.Tensor:
    """float32 (n) -> IEEE half bits (n), round to nearest even (ggml's GGML_FP32_TO_FP16)."""
    return d.half().view(torch.int16).to(torch.int64) & 0xFFFF


def fp16_value(bits: torch.Tensor) -> torch.Tensor:
    """half bits (n) -> float32 (n), exact."""
    return (((bits + 2**15) % 2**16) - 2**15).to(torch.int16).view(torch.float16).float()


def round_half_away(v: torch.Tensor) -> torch.Tensor:
    """C's roundf of float32 v, exactly: in float64, |v| + 0.5 has no rounding."""
    v = v.double()
    return torch.sign(v) * torch.floor(v.abs() + 0.5)


def inverse(d: torch.Tensor) -> torch.Tensor:
    """1 / d in float32, 0 where d is 0 (llama.cpp's `id = d ? 1.0f/d : 0.0f`)."""
    return torch.where(d != 0, torch.ones_like(d) / d, torch.zeros_like(d))


def block_bytes(d: torch.Tensor, qs: torch.Tensor) -> torch.Tensor:
    """Scales d (nb) float32 and quant bytes qs (nb, k) -> nb blocks of 2 + k bytes, the fp16
    d little-endian first (block_q8_0, block_q4_0)."""
    db = fp16_bits(d)
    return torch.cat([(db & 0xFF)[:, None], (db >> 8)[:, None], qs & 0xFF], dim=1).reshape(-1)


def q8_0_quantize(x: torch.Tensor, *, divisor: float = 127.0, rounding=round_half_away):
    """x (n) float32 -> n / 32 blocks of 34 bytes, quantize_row_q8_0_ref (llama.cpp's
    ggml/src/ggml-quants.c): d = max|x| / 127, q = round(x * (1 / d)), the int8 q as bytes."""
    xb = x.float().reshape(-1, QK)
    d = xb.abs().max(dim=1).values / divisor
    q = rounding(xb * inverse(d)[:, None]).to(torch.int64)
    return block_bytes(d, ((q + 128) % 256) - 128)


def q8_0_blocks(blocks: torch.Tensor):
    """bytes of nb q8_0 blocks -> (d (nb) float32, q (nb, 32) int64 -128 .. 127)."""
    b = blocks.to(torch.int64).reshape(-1, 2 + QK)
    return fp16_value(b[:, 0] | b[:, 1] << 8), ((b[:, 2:] + 128) % 256) - 128


def q8_0_dequantize(blocks: torch.Tensor) -> torch.Tensor:
    """bytes of q8_0 blocks -> x (n) float32: d * q (exact)."""
    d, q = q8_0_blocks(blocks)
    return (d[:, None] * q.float()).reshape(-1)


def q4_0_quantize(x: torch.Tensor, *, offset: float = 8.5, interleaved: bool = False):
    """x (n) float32 -> n / 32 blocks of 18 bytes, quantize_row_q4_0_ref: m = the x of largest
    |x| (the first on a tie), d = m / -8, q = min(15, (int)(x * (1 / d) + 8.5)); element j in
    the low nibble of byte j, element j + 16 in the high one (interleaved: 2j and 2j + 1)."""
    xb = x.float().reshape(-1, QK)
    m = xb.gather(1, xb.abs().argmax(dim=1, keepdim=True)).squeeze(1)
    d = m / -8.0
    q = torch.trunc(xb * inverse(d)[:, None] + offset).to(torch.int64).clamp(max=15) & 0xFF
    lo, hi = (q[:, 0::2], q[:, 1::2]) if interleaved else (q[:, :QK // 2], q[:, QK // 2:])
    return block_bytes(d, (lo | hi << 4) & 0xFF)


def q4_0_dequantize(blocks: torch.Tensor) -> torch.Tensor:
    """bytes of q4_0 blocks -> x (n) float32: d * (q - 8), dequantize_row_q4_0."""
    b = blocks.to(torch.int64).reshape(-1, 2 + QK // 2)
    d = fp16_value(b[:, 0] | b[:, 1] << 8)
    q = torch.cat([b[:, 2:] & 15, b[:, 2:] >> 4], dim=1) - 8
    return (d[:, None] * q.float()).reshape(-1)


def q8_0_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a (rows * nb blocks), b (nb blocks) as bytes -> (rows) float64: per row, the sum over
    blocks of d_a d_b sum(q_a q_b), ggml_vec_dot_q8_0_q8_0 (without its float32 sum)."""
    da, qa = q8_0_blocks(a)
    db, qb = q8_0_blocks(b)
    nb = db.numel()
    sums = (qa.reshape(-1, nb, QK) * qb[None]).sum(-1).double()
    return (da.double().reshape(-1, nb) * db.double()[None] * sums).sum(-1)
