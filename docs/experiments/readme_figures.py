"""The figures the lesson READMEs compute rather than measure, computed here so that anyone
can check them:

    /usr/bin/python3 docs/experiments/readme_figures.py

1. Qwen3-30B-A3B per decode step: active parameters, bytes of weights read, FLOPs, and
   the attention over the KV cache that the weight count leaves out (lessons 01, 04, 06,
   08, 09).
2. The error of Hugging Face's float32 RoPE table at long positions, against the exact
   angles in float64, and what rounding the table to bf16 adds (lesson 03).
3. An offset that does not fit in an int (lesson 01).
4. The largest value of the load-balancing loss (lesson 06, docs/experiments/aux-loss.md).
5. How often bf16 router logits choose other experts than float32 ones (lesson 06),
   on random Gaussian inputs of Qwen3-30B-A3B's router shape (a trained router's logits
   differ; this shows the size of the effect, not its rate in a real model).
6. Expert offloading (lesson 09): bytes of experts per decoded token in bf16, what stays
   resident, and what a cache of a given size saves if routing were uniform.
7. Bytes of weights read per decoded token with the matrices in bf16, q8_0 and q4_0
   (lesson 13), the vectors, routers and the embedding row kept float32 as
   docs/quantization.md's `--weights` keeps them.

The shapes are Qwen3-30B-A3B's config.json (hidden_size 2048, 48 layers, 32 query heads,
4 kv heads, head_dim 128, 128 experts, 8 per token, moe_intermediate_size 768,
vocab_size 151936, untied embeddings, no dense layers, rope_theta 1e6). Needs numpy; part 2
needs torch (it runs the lines of transformers' Qwen3MoeRotaryEmbedding in float32).
"""
import numpy as np

C, L, H, KV, D, E, K, I, V = 2048, 48, 32, 4, 128, 128, 8, 768, 151936


def decode_step():
    attn = (H * D * C) + 2 * (KV * D * C) + (C * H * D)    # q, k, v, o_proj
    norms = 2 * C + 2 * D                                   # two layernorms, q_norm, k_norm
    router = E * C
    expert = 3 * I * C
    layer_active = attn + norms + router + K * expert
    layer_all = attn + norms + router + E * expert
    total = L * layer_all + 2 * V * C + C                   # + embed_tokens, lm_head, norm
    active_rows = L * layer_active + V * C + C + C          # lm_head, one embedding row, norm
    active_table = L * layer_active + 2 * V * C + C         # counting the whole embedding
    # FLOPs of the products (2 per multiply-add): every weight but the embedding row
    # (a lookup) is used once per token
    flops_weights = 2 * (L * (attn + router + K * expert) + V * C)
    # attention over the cache: per cached position, per layer, per query head one dot
    # product of D (q . k) and one axpy of D (p * v): 2 * D + 2 * D FLOPs
    flops_per_pos = L * H * 4 * D
    print("1. Qwen3-30B-A3B, one decode step")
    print(f"   all parameters          {total / 1e9:.2f} B")
    print(f"   active, whole embedding {active_table / 1e9:.2f} B "
          f"({active_table * 4 / 1e9:.1f} GB fp32, {active_table * 2 / 1e9:.1f} GB bf16)")
    print(f"   active, one embedding row {active_rows / 1e9:.2f} B "
          f"({active_rows * 4 / 1e9:.1f} GB fp32, {active_rows * 2 / 1e9:.1f} GB bf16)")
    print(f"   FLOPs of the weight products {flops_weights / 1e9:.2f} GFLOP")
    print(f"   attention over the cache {flops_per_pos / 1e6:.3f} MFLOP per cached position "
          f"({flops_per_pos * 32768 / 1e9:.1f} GFLOP at 32,768 positions)")
    kv_bytes = 2 * L * KV * D
    print(f"   KV cache read per cached position {kv_bytes * 4} bytes fp32, {kv_bytes * 2} bf16 "
          f"({kv_bytes * 2 * 32768 / 2**30:.2f} GiB bf16 at 32,768 positions)")


def rope_table():
    import torch
    base, dim = 1e6, D
    # Qwen3MoeRotaryEmbedding (transformers, default rope type), float32 throughout
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))

    def hf(pos):
        p = torch.tensor(pos, dtype=torch.int64)[None, :].float()
        freqs = (inv_freq[None, :, None].float() @ p[:, None, :]).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)[0]
        return emb.cos(), emb.sin()

    def exact(pos):
        f = base ** (-2.0 * np.arange(dim // 2) / dim)
        a = np.asarray(pos, dtype=np.float64)[:, None] * f[None, :]
        a = np.concatenate([a, a], -1)
        return np.cos(a), np.sin(a)

    def err(got, want):
        return max(np.abs(g.double().numpy() - w).max() for g, w in zip(got, want))

    print("2. Hugging Face's float32 RoPE table (head_dim 128, theta 1e6) vs exact float64")
    for pos in ([4095], [32767], [131071]):
        got, want = hf(pos), exact(pos)
        bf = tuple(t.bfloat16() for t in got)
        print(f"   position {pos[0]:>6}: max |error| {err(got, want):.1e} float32, "
              f"{err(bf, want):.1e} after the cast to bf16")
    for lo, hi in ((28672, 32768), (126976, 131072)):
        pos = list(range(lo, hi))
        got, want = hf(pos), exact(pos)
        print(f"   positions {lo}..{hi - 1}: max |error| {err(got, want):.1e} float32")
    print("   bf16 rounding alone: values in [0.5, 1) are 2^-8 = 3.9e-3 apart, so up to 2.0e-3")


def offsets():
    per_layer = E * 3 * I * C
    print("3. offsets: INT_MAX is", 2**31 - 1)
    print(f"   lm_head elements {V * C:,} (fits)")
    print(f"   one layer's stacked experts: {per_layer:,} floats, {per_layer * 4:,} bytes in float32"
          f" ({'does not fit' if per_layer * 4 > 2**31 - 1 else 'fits'})")
    print(f"   all 48 layers' experts: {L * per_layer:,} floats (does not fit)")


def aux_loss_max():
    # L = E * sum_e (c_e / N) * P_e, sum_e c_e / N = k, sum_e P_e = 1, c_e / N <= 1:
    # sum_e (c_e / N) P_e <= max_e (c_e / N) * sum_e P_e <= 1, so L <= E, reached when every
    # token routes to the same k experts and puts all its probability on them.
    for E_, k_ in ((8, 2), (128, 8)):
        N = 16
        c = np.zeros(E_); c[:k_] = N
        P = np.zeros(E_); P[:k_] = 1.0 / k_
        print(f"4. aux loss, E={E_} k={k_}: balanced {k_}, collapsed onto k experts "
              f"{E_ * np.sum(c / N * P):.1f} (= E, the maximum)")


def router_precision():
    import torch
    torch.manual_seed(0)
    T = 4096
    h = torch.randn(T, C).bfloat16()                    # a bf16 model's hidden states
    gate = (torch.randn(E, C) * 0.02).bfloat16()        # and its router weight
    exact = h.float() @ gate.float().T                  # the product in float32
    bf16 = (h @ gate.T).float()                         # the product in bf16, as nn.Linear does

    def chosen(logits):
        return [set(r.tolist()) for r in torch.topk(logits.softmax(-1), K, dim=-1).indices]

    differ = sum(a != b for a, b in zip(chosen(exact), chosen(bf16)))
    srt = torch.sort(exact, dim=-1, descending=True).values
    gap = srt[:, K - 1] - srt[:, K]
    print(f"5. router precision, {T} random tokens, E={E}, k={K}, logits' std "
          f"{exact.std().item():.2f}: the bf16 product changes the chosen set of {differ} tokens "
          f"({100 * differ / T:.1f}%); its logits differ by up to "
          f"{(bf16 - exact).abs().max().item():.3f}; the median gap between the 8th and 9th "
          f"logit is {gap.median().item():.3f}")


def offloading(ram_gb=16.0, disk_gb_s=3.0):
    expert_b = 3 * I * C * 2                              # one expert in bf16
    per_token = L * K * expert_b
    all_experts = L * E * expert_b
    total = L * ((H * D * C) + 2 * (KV * D * C) + (C * H * D) + 2 * C + 2 * D + E * C
                 + E * 3 * I * C) + 2 * V * C + C
    resident = total * 2 - all_experts                    # everything but the experts, bf16
    room = ram_gb * 1e9 - resident
    frac = max(0.0, min(1.0, room / all_experts))
    miss = per_token * (1 - frac)
    print(f"6. offloading, bf16: one expert {expert_b / 1e6:.2f} MB; experts read per token "
          f"{per_token / 1e9:.2f} GB; all experts {all_experts / 1e9:.1f} GB; the rest "
          f"{resident / 1e9:.2f} GB")
    print(f"   {ram_gb:.0f} GB of RAM holds {100 * frac:.0f}% of the experts; with uniform, "
          f"independent routing a token then reads {miss / 1e9:.2f} GB from disk, "
          f"{miss / (disk_gb_s * 1e9):.2f} s at {disk_gb_s:.0f} GB/s")


def quantized_decode():
    matrices = L * ((H * D * C) + 2 * (KV * D * C) + (C * H * D) + K * 3 * I * C) + V * C
    kept = L * (2 * C + 2 * D + E * C) + C + C            # norms, routers, embedding row, norm
    print("7. bytes of weights per decoded token, matrices in each type, the rest float32:")
    for name, bytes_per_weight in (("f32", 4), ("bf16", 2), ("q8_0", 34 / 32),
                                   ("q4_0", 18 / 32)):
        print(f"   {name:5s} {(matrices * bytes_per_weight + kept * 4) / 1e9:.2f} GB")


if __name__ == "__main__":
    decode_step()
    try:
        rope_table()
    except ImportError:
        print("2. (needs torch)")
    offsets()
    aux_loss_max()
    try:
        router_precision()
    except ImportError:
        print("5. (needs torch)")
    offloading()
    quantized_decode()
