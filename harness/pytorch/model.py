"""A Qwen3-MoE / Qwen2-MoE causal language model as a PyTorch nn.Module, for training.

reference.py spells every step out for one sequence; this module computes the same model
(docs/spec.md, "The forward pass") batched and fast enough to train on a CPU:
the MoE layer groups the tokens by expert instead of looping over tokens. Its state_dict
keys are the Hugging Face hub keys, so save_hf / load_hf read and write checkpoints the C
loader (and transformers) can open.

Shapes: B batch, T tokens, C hidden_size, H query heads, KV key/value heads, D head_dim,
E experts, k experts per token, V vocab_size, N = B*T tokens flattened.
"""

import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

import safetensors_io as st

ARCHITECTURES = {"qwen3_moe": "Qwen3MoeForCausalLM", "qwen2_moe": "Qwen2MoeForCausalLM"}
# config "router" (a kit convention, not a transformers key; absent = "topk", the Qwen3-MoE
# router, the only one moekit's C code runs): the routing variants of train.py --router.
#   noisy-topk: top-k of logits + N(0, 1) * softplus(x . noise) while training (Shazeer et
#               al. 2017, section 2.1), the weights a softmax over the k kept (renormalised)
#   dense:      every expert on every token, weighted by the softmax over all E
#   shared:     a shared expert on every token, ungated, beside the routed top-k
#               (DeepSeekMoE, Dai et al. 2024, section 3.2 "shared expert isolation")
#   deepseek-moe: DeepSeekMoE's two ideas together (Dai et al. 2024, sections 3.1-3.2):
#               fine-grained experts (config num_experts, moe_intermediate_size already
#               split) and "num_shared_experts" ungated shared experts beside the routed top-k
#   expert-choice: each expert takes the c = ceil(T k / E) tokens of the sequence with the
#               highest softmax probability for it (Zhou et al. 2022, section 3.2)
#   soft-moe:   S = T_train k slots, S / E per expert; a slot is a softmax-over-tokens mix
#               of the sequence, a token's output a softmax-over-slots mix of the slots'
#               outputs (Puigcerver et al. 2023, section 2.1); "soft_moe_slots" in config
# The last two mix the tokens of a sequence: a token's output depends on later tokens, so
# they are not causal (train.py's --eval-causal measures what that does to bits per byte).
ROUTERS = ("topk", "noisy-topk", "dense", "shared", "deepseek-moe", "expert-choice", "soft-moe")


# ------------------------------------------------------------------------------------
# config.json
# ------------------------------------------------------------------------------------


def normalize_config(raw: dict) -> dict:
    """config.json (transformers 4.x or 5.x spelling) -> a dict with every key this module
    reads, defaults filled in as transformers does, and the 4.x spelling (num_experts,
    top-level rope_theta).

    Raises ValueError for a model type or a feature the kit does not implement (rather than
    computing a different model in silence).
    """
    cfg = dict(raw)
    model_type = cfg.get("model_type")
    if model_type not in ARCHITECTURES:
        raise ValueError(f"model_type {model_type!r}: expected one of {sorted(ARCHITECTURES)}")
    rope = cfg.pop("rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default" or cfg.get("rope_scaling"):
        raise ValueError("RoPE scaling is not supported (rope_type must be 'default')")
    if cfg.get("use_sliding_window"):
        raise ValueError("sliding-window attention is not supported")
    if model_type == "qwen3_moe" and cfg.get("attention_bias"):
        raise ValueError("attention_bias is not supported for qwen3_moe")
    num_experts = cfg.pop("num_local_experts", None)
    cfg["num_experts"] = cfg.get("num_experts", num_experts or 0)
    cfg["rope_theta"] = float(cfg.get("rope_theta", rope.get("rope_theta", 10000.0)))
    heads = cfg["num_attention_heads"]
    cfg["head_dim"] = cfg.get("head_dim") or cfg["hidden_size"] // heads
    cfg["num_key_value_heads"] = cfg.get("num_key_value_heads") or heads
    for key, default in (("rms_norm_eps", 1e-6), ("decoder_sparse_step", 1),
                         ("mlp_only_layers", []), ("norm_topk_prob", False),
                         ("tie_word_embeddings", False), ("max_position_embeddings", 2048),
                         ("shared_expert_intermediate_size", 0)):
        cfg.setdefault(key, default)
    cfg["architectures"] = [ARCHITECTURES[model_type]]
    if cfg.get("router", "topk") not in ROUTERS:  # absent stays absent: config.json as before
        raise ValueError(f"router {cfg['router']!r}: expected one of {list(ROUTERS)}")
    return cfg


def is_sparse_layer(cfg: dict, layer: int) -> bool:
    """docs/spec.md's rule: layer l is an MoE layer iff l is not in mlp_only_layers, there are
    experts, and (l + 1) is a multiple of decoder_sparse_step."""
    return (layer not in cfg["mlp_only_layers"] and cfg["num_experts"] > 0
            and (layer + 1) % cfg["decoder_sparse_step"] == 0)


# ------------------------------------------------------------------------------------
# Building blocks
# ------------------------------------------------------------------------------------


def at_least_f32(t: torch.Tensor) -> torch.Tensor:
    """t in float32, or float64 if it is (the tests run the model in float64)."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


class RMSNorm(nn.Module):
    """x (..., n) -> x / sqrt(mean(x^2) + eps) * weight, in float32 (float64 stays)."""

    def __init__(self, n: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = at_least_f32(x)  # bf16 weights: mean(x^2) in bf16 would lose too much
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.to(xf.dtype)).to(x.dtype)


def rope_tables(head_dim: int, theta: float, n_pos: int):
    """-> cos, sin (n_pos, D/2) float32 for positions 0..n_pos-1, f_i = theta^(-2i/D).

    Computed in float64 and rounded once, like reference.rope_cos_sin (float32 angles are
    off by ~1e-4 at a few thousand positions).
    """
    inv_freq = theta ** (-2.0 * torch.arange(head_dim // 2, dtype=torch.float64) / head_dim)
    angles = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half RoPE: x (B, heads, T, D), cos/sin (T, D/2) -> same shape as x.

    Pairs (x_i, x_{i+D/2}) -> (x_i cos - x_{i+D/2} sin, x_{i+D/2} cos + x_i sin).
    """
    half = x.shape[-1] // 2
    lo, hi = x[..., :half], x[..., half:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([lo * cos - hi * sin, hi * cos + lo * sin], dim=-1)


class Attention(nn.Module):
    """Causal grouped-query self-attention with QK-norm (Qwen3) or q/k/v biases (Qwen2)."""

    def __init__(self, cfg: dict):
        super().__init__()
        C, D = cfg["hidden_size"], cfg["head_dim"]
        self.n_heads, self.n_kv, self.head_dim = (cfg["num_attention_heads"],
                                                  cfg["num_key_value_heads"], D)
        assert self.n_heads % self.n_kv == 0, "num_attention_heads must be a multiple of KV"
        bias = cfg["model_type"] == "qwen2_moe"
        self.q_proj = nn.Linear(C, self.n_heads * D, bias=bias)
        self.k_proj = nn.Linear(C, self.n_kv * D, bias=bias)
        self.v_proj = nn.Linear(C, self.n_kv * D, bias=bias)
        self.o_proj = nn.Linear(self.n_heads * D, C, bias=False)
        if cfg["model_type"] == "qwen3_moe":
            self.q_norm = RMSNorm(D, cfg["rms_norm_eps"])
            self.k_norm = RMSNorm(D, cfg["rms_norm_eps"])

    def forward(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """h (B, T, C) normalised input, cos/sin (T, D/2) -> o_proj output (B, T, C)."""
        B, T, _ = h.shape
        q = self.q_proj(h).view(B, T, self.n_heads, self.head_dim)
        k = self.k_proj(h).view(B, T, self.n_kv, self.head_dim)
        v = self.v_proj(h).view(B, T, self.n_kv, self.head_dim)
        if hasattr(self, "q_norm"):  # Qwen3: per-head RMSNorm, before RoPE
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, T, D)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        group = self.n_heads // self.n_kv  # query head h reads kv head h // group
        k = k.repeat_interleave(group, dim=1).flatten(0, 1)  # (B*H, T, D)
        v = v.repeat_interleave(group, dim=1).flatten(0, 1)
        # One fused pass over the (B*H, T, T) scores, the bulk of the work at small C:
        # mask + scale * q k^T, with the causal mask as an additive -inf bias.
        bias = torch.full((T, T), float("-inf"), dtype=q.dtype, device=h.device).triu(1)
        scores = torch.baddbmm(bias[None], q.flatten(0, 1), k.transpose(1, 2),
                               alpha=1.0 / math.sqrt(self.head_dim))
        o = scores.softmax(dim=-1) @ v  # (B*H, T, D)
        o = o.view(B, self.n_heads, T, self.head_dim).transpose(1, 2).reshape(B, T, -1)
        return self.o_proj(o)


class MLP(nn.Module):
    """SwiGLU: x (..., C) -> down(silu(gate(x)) * up(x)) (..., C)."""

    def __init__(self, hidden: int, intermediate: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def route(router_logits: torch.Tensor, k: int, norm_topk_prob: bool, bias=None):
    """router_logits (N, E) -> (weights (N, k) float32, experts (N, k) long).

    softmax in float32 (float64 stays) over all E experts, then the k largest;
    renormalised to sum 1 when norm_topk_prob. bias (E) or None: DeepSeek-V3's
    auxiliary-loss-free balancing (DeepSeek-V3 technical report, section 2.1.2): the k
    experts are chosen by probs + bias, the weights are still the unbiased probs.
    """
    probs = at_least_f32(router_logits).softmax(dim=-1)
    if bias is None:
        weights, experts = probs.topk(k, dim=-1)
    else:
        experts = (probs + bias).topk(k, dim=-1).indices
        weights = probs.gather(-1, experts)
    if norm_topk_prob:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights, experts


class SparseMoeBlock(nn.Module):
    """Router + E SwiGLU experts (+ the sigmoid-gated shared expert of Qwen2-MoE)."""

    def __init__(self, cfg: dict):
        super().__init__()
        C, E = cfg["hidden_size"], cfg["num_experts"]
        self.top_k, self.norm_topk_prob = cfg["num_experts_per_tok"], cfg["norm_topk_prob"]
        self.gate = nn.Linear(C, E, bias=False)
        # (E) or None: the trainer's --balance bias (see route). Not a parameter and not in
        # the checkpoint: Qwen3-MoE has no such key, and neither moekit nor transformers'
        # Qwen3-MoE would apply it.
        self.selection_bias = None
        self.add_noise = True  # router "noisy-topk", while training; train.py's noisy-warmup
                               # turns it off after the warm-up steps
        self.experts = nn.ModuleList(MLP(C, cfg["moe_intermediate_size"]) for _ in range(E))
        if cfg["model_type"] == "qwen2_moe":
            self.shared_expert = MLP(C, cfg["shared_expert_intermediate_size"])
            self.shared_expert_gate = nn.Linear(C, 1, bias=False)
        self.router = cfg.get("router", "topk")
        if self.router == "shared":  # DeepSeekMoE: ungated, as wide as a routed expert
            self.shared_expert = MLP(C, cfg["moe_intermediate_size"])
        if self.router == "deepseek-moe":  # as narrow as the fine-grained routed experts
            self.shared_experts = nn.ModuleList(MLP(C, cfg["moe_intermediate_size"])
                                                for _ in range(cfg["num_shared_experts"]))
        if self.router == "noisy-topk":  # Shazeer et al. 2017, eq. 4: W_noise (E, C)
            self.noise = nn.Linear(C, E, bias=False)
        if self.router == "soft-moe":  # Puigcerver et al. 2023: Phi (C, S), stored (S, C)
            self.slots = cfg["soft_moe_slots"]
            self.gate = nn.Linear(C, self.slots, bias=False)

    def forward(self, h: torch.Tensor):
        """h (B, T, C) -> (y (B, T, C), router logits (N, E)).

        Dispatch: the N*k (token, slot) pairs are sorted by expert and gathered once
        (index_select), so each expert runs on one contiguous block of its tokens; the
        weighted outputs are summed back into their tokens once (index_add). One gather and
        one scatter, rather than one per expert, also keeps the backward pass to a single
        (N, C) gradient buffer. Only the selected weights carry the router's gradient.
        """
        B, T, C = h.shape
        x = h.reshape(-1, C)
        logits = self.gate(x)
        if self.router == "dense":
            return self.dense(x, logits).view(B, T, C), logits
        if self.router == "expert-choice":
            return self.expert_choice(h, logits.view(B, T, -1)), logits
        if self.router == "soft-moe":
            return self.soft_moe(h, logits.view(B, T, -1))
        chooser = logits
        if self.router == "noisy-topk" and self.training and self.add_noise:  # eq. 4
            chooser = logits + torch.randn_like(logits) * F.softplus(self.noise(x))
        weights, experts = route(chooser, self.top_k, self.norm_topk_prob, self.selection_bias)
        flat_expert = experts.reshape(-1)                 # (N*k), pair j is token j // k
        order = flat_expert.argsort()
        counts = torch.bincount(flat_expert, minlength=len(self.experts)).tolist()
        token = order // self.top_k                       # (N*k) token of each sorted pair
        blocks = x.index_select(0, token).split(counts)   # block e: the tokens of expert e
        out = torch.cat([expert(block) for expert, block in zip(self.experts, blocks)])
        out = out * weights.reshape(-1)[order].to(x.dtype)[:, None]
        y = x.new_zeros(x.shape).index_add(0, token, out)
        if hasattr(self, "shared_expert_gate"):  # Qwen2-MoE
            y = y + torch.sigmoid(self.shared_expert_gate(x)) * self.shared_expert(x)
        elif self.router == "shared":
            y = y + self.shared_expert(x)
        elif self.router == "deepseek-moe":
            y = y + sum(shared(x) for shared in self.shared_experts)
        return y.view(B, T, C), logits

    def dense(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """router "dense": x (N, C), logits (N, E) -> sum_e softmax(logits)_e * expert_e(x)
        (N, C), every expert on every token (a soft mixture of experts, no sparsity)."""
        probs = at_least_f32(logits).softmax(dim=-1).to(x.dtype)
        return sum(probs[:, e, None] * expert(x) for e, expert in enumerate(self.experts))

    def expert_choice(self, h: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """router "expert-choice": h (B, T, C), logits (B, T, E) -> y (B, T, C). Within each
        sequence, expert e takes the c tokens with the largest probs[:, e] and adds
        gate * expert_e(h[t]) to each; a token no expert took gets 0 (the residual carries it).
        PyTorch of the paper: G, I = torch.topk(S.T, c) with S = softmax(X W_g) (T, E)."""
        B, T, C = h.shape
        c = min(T, math.ceil(T * self.top_k / len(self.experts)))
        probs = at_least_f32(logits).softmax(dim=-1).transpose(1, 2)   # (B, E, T)
        gates, tokens = probs.topk(c, dim=-1)                           # (B, E, c)
        y = h.new_zeros(B, T, C)
        for e, expert in enumerate(self.experts):
            index = tokens[:, e, :, None].expand(B, c, C)               # (B, c, C)
            out = expert(h.gather(1, index)) * gates[:, e, :, None].to(h.dtype)
            y = y.scatter_add(1, index, out)
        return y

    def soft_moe(self, h: torch.Tensor, logits: torch.Tensor):
        """router "soft-moe": h (B, T, C), logits = h Phi (B, T, S) -> (y (B, T, C), per-token
        expert logits (N, E)). dispatch = softmax over the T tokens (each slot a convex mix of
        the sequence), combine = softmax over the S slots (each token a mix of slot outputs);
        expert e runs on slots e*p .. e*p+p-1, p = S / E. The paper also L2-normalises h and
        Phi with a learned scale (its "Normalization" notes); this sketch leaves that out. The
        returned logits, logsumexp over each expert's p slots, softmax to a token's combine
        weight on each expert: what the balance loss and the load statistics read."""
        B, T, C = h.shape
        E = len(self.experts)
        p = self.slots // E
        lf = at_least_f32(logits)
        dispatch = lf.softmax(dim=1).to(h.dtype)                         # (B, T, S) over T
        combine = lf.softmax(dim=2).to(h.dtype)                          # (B, T, S) over S
        slots_in = dispatch.transpose(1, 2) @ h                          # (B, S, C)
        slots_out = torch.cat([expert(slots_in[:, e * p:(e + 1) * p])
                               for e, expert in enumerate(self.experts)], dim=1)
        per_expert = lf.view(B, T, E, p).logsumexp(dim=-1).reshape(B * T, E)
        return combine @ slots_out, per_expert


class DecoderLayer(nn.Module):
    """x += attn(input_layernorm(x)); x += mlp(post_attention_layernorm(x))."""

    def __init__(self, cfg: dict, layer: int):
        super().__init__()
        C, eps = cfg["hidden_size"], cfg["rms_norm_eps"]
        self.input_layernorm = RMSNorm(C, eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(C, eps)
        self.sparse = is_sparse_layer(cfg, layer)
        self.mlp = SparseMoeBlock(cfg) if self.sparse else MLP(C, cfg["intermediate_size"])

    def forward(self, x, cos, sin):
        """x (B, T, C) -> (x (B, T, C), router logits (N, E) or None for a dense layer)."""
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        h = self.post_attention_layernorm(x)
        if self.sparse:
            y, logits = self.mlp(h)
            return x + y, logits
        return x + self.mlp(h), None


class Backbone(nn.Module):
    """The `model.` part of the hub keys: embeddings, decoder layers, final norm."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList(DecoderLayer(cfg, l)
                                    for l in range(cfg["num_hidden_layers"]))
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


class MoeForCausalLM(nn.Module):
    """Qwen3MoeForCausalLM / Qwen2MoeForCausalLM. `cfg` is a config.json dict."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.config = normalize_config(cfg)
        cfg = self.config
        self.model = Backbone(cfg)
        if not cfg["tie_word_embeddings"]:  # tied: no lm_head.weight key, as on the hub
            self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        cos, sin = rope_tables(cfg["head_dim"], cfg["rope_theta"],
                               cfg["max_position_embeddings"])
        # not persistent: derived from the config, so not in the state_dict / checkpoint
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, ids: torch.Tensor):
        """ids (B, T) long, positions 0..T-1 -> (logits (B, T, V) float32 (or float64),
        [router logits (N, E) of each sparse layer, in layer order])."""
        T = ids.shape[1]
        if T > self.rope_cos.shape[0]:
            raise ValueError(f"{T} tokens > max_position_embeddings {self.rope_cos.shape[0]}")
        x = self.model.embed_tokens(ids)
        cos, sin = self.rope_cos[:T], self.rope_sin[:T]
        router_logits = []
        for layer in self.model.layers:
            x, logits = layer(x, cos, sin)
            if logits is not None:
                router_logits.append(logits)
        x = self.model.norm(x)
        head = self.model.embed_tokens.weight if self.config["tie_word_embeddings"] \
            else self.lm_head.weight
        return at_least_f32(F.linear(x, head)), router_logits


def init_weights(model: MoeForCausalLM, seed: int, std: float = 0.02) -> None:
    """Hugging Face's initialisation: every Linear and the embedding N(0, std), biases 0,
    norms 1 — made reproducible by a seed and independent of module creation order."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            elif name.endswith(".bias"):
                p.zero_()
            else:
                p.copy_(torch.randn(p.shape, generator=g) * std)


# ------------------------------------------------------------------------------------
# Training loss and generation
# ------------------------------------------------------------------------------------


def load_balancing_loss(router_logits: list, k: int, num_experts: int) -> torch.Tensor:
    """Switch / Hugging Face load-balancing loss over the routed tokens of all layers.

    router_logits: list of (N_l, E). With N the total rows, p = softmax(logits) in float32,
    c_e = number of (token, slot) top-k assignments to expert e and P_e = mean of p_e:
    L = E * sum_e (c_e / N) * P_e -> scalar. It is k for perfectly balanced routing (and
    whenever p is uniform) and E when every token goes to the same k experts. The gradient
    flows through P only (the counts are piecewise constant).
    """
    probs = torch.cat(router_logits).float().softmax(dim=-1)  # (N, E)
    top = probs.topk(k, dim=-1).indices
    counts = torch.bincount(top.reshape(-1), minlength=num_experts).to(probs.dtype)
    return num_experts * (counts / probs.shape[0] * probs.mean(dim=0)).sum()


def router_z_loss(router_logits: list) -> torch.Tensor:
    """ST-MoE's router z-loss (Zoph et al. 2022, section 3.3, eq. 5), averaged over the
    layers: each layer's mean over its N tokens of logsumexp(logits[t])^2, logits (N, E) in
    float32. It penalises large router logits (the softmax's exp overflows and rounds
    badly when they grow) and reaches only the routers: it is a function of their output."""
    return torch.stack([torch.logsumexp(l.float(), dim=-1).pow(2).mean()
                        for l in router_logits]).mean()


@torch.no_grad()
def generate(model: MoeForCausalLM, prompt: list, max_new_tokens: int,
             stop: list | None = None) -> list:
    """Greedy decoding: prompt (token ids) -> the new ids (at most max_new_tokens).

    Recomputes the whole window each step (no KV cache: the demo models are tiny), keeping
    the last max_position_embeddings tokens. Stops after emitting the sequence `stop`.
    """
    window = model.config["max_position_embeddings"]
    ids, new = list(prompt), []
    for _ in range(max_new_tokens):
        logits, _ = model(torch.tensor([ids[-window:]]))
        nxt = int(logits[0, -1].argmax())  # ties go to the lower id, as in the C sampler
        ids.append(nxt)
        new.append(nxt)
        if stop and new[-len(stop):] == stop:
            break
    return new


# ------------------------------------------------------------------------------------
# Hugging Face directory: config.json + model.safetensors
# ------------------------------------------------------------------------------------


def save_hf(model: MoeForCausalLM, directory: str, dtype: torch.dtype = torch.float32) -> None:
    """Writes directory/config.json (transformers 4.x spelling) and model.safetensors
    (every state_dict tensor in `dtype`: float32 or bfloat16; hub key names)."""
    if dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"dtype {dtype}: float32 or bfloat16")
    os.makedirs(directory, exist_ok=True)
    cfg = dict(model.config)
    cfg["torch_dtype"] = "float32" if dtype == torch.float32 else "bfloat16"
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    tensors = {name: t.detach().to(dtype) for name, t in model.state_dict().items()}
    st.save(os.path.join(directory, "model.safetensors"), tensors, {"format": "pt"})


def load_state(directory: str) -> dict:
    """The tensors of directory/model.safetensors, or of every shard that
    model.safetensors.index.json's weight_map names."""
    index = os.path.join(directory, "model.safetensors.index.json")
    if not os.path.exists(index):
        return st.load(os.path.join(directory, "model.safetensors"))[0]
    with open(index) as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    tensors = {}
    for shard in shards:
        tensors.update(st.load(os.path.join(directory, shard))[0])
    return tensors


def load_hf(directory: str, dtype: torch.dtype = torch.float32) -> MoeForCausalLM:
    """A Hugging Face model directory -> MoeForCausalLM in `dtype`, eval mode.

    Accepts both config.json spellings and sharded checkpoints. A tied checkpoint that still
    carries lm_head.weight loads (the copy is ignored); any other missing or unexpected key
    is an error.
    """
    with open(os.path.join(directory, "config.json")) as f:
        model = MoeForCausalLM(json.load(f))
    tensors = load_state(directory)
    if model.config["tie_word_embeddings"]:
        tensors.pop("lm_head.weight", None)
    model.load_state_dict({name: t.to(dtype) for name, t in tensors.items()})
    return model.to(dtype).eval()
