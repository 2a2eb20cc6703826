"""A synthetic Qwen3-MoE checkpoint (random weights) in Hugging Face layout, for benchmarks.

    /usr/bin/python3 harness/pytorch/synth_checkpoint.py OUT_DIR [--shape small|quick]
        [--hidden 1024 --layers 8 --experts 64 --top-k 8 --moe-intermediate 256
         --heads 16 --kv-heads 4 --head-dim 64 --vocab 8192] [--dtype f32|bf16] [--seed 1234]

Writes OUT_DIR/config.json and OUT_DIR/model.safetensors, which the kit's CLI loads and
harness/pytorch/gguf_writer.py converts for llama.cpp. Standard library and numpy only (the
bench runs without torch), so it does not reuse export_models.py, whose checkpoints come
with float64 reference outputs from the PyTorch model. Every layer is sparse and the top-k
weights are renormalised: the Qwen3-MoE that llama.cpp's `qwen3moe` also runs.

Weights: norms 1 + 0.2 N(0, 1), the embedding N(0, 1), every other matrix N(0, 1) /
sqrt(fan_in), then rounded to bf16 values even when stored as f32, so the f32, bf16 and
(nearly all of the) f16 files of one seed hold the same numbers and engines can be
compared on identical weights whatever type each reads.

Shapes (--shape): `small` is the model of the bench's llama.cpp comparison (issue 14):
hidden 1024, 8 layers, 64 experts top-8 of 256, 16 query / 4 KV heads of 64, vocab 8192,
1.6 GB in f32. `quick` is a few MB for `make bench BENCH_ARGS=--quick`. `real` is
Qwen3-30B-A3B's layer shape (hidden 2048, 128 experts top-8 of 768, 32 query / 4 KV heads of
128, vocab 151936) with 2 layers unless --layers says otherwise; the bench's --real mode
writes it in bf16 with 2 and with 4 layers.
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

SHAPES = {
    "small": dict(hidden=1024, layers=8, experts=64, top_k=8, moe_intermediate=256, heads=16,
                  kv_heads=4, head_dim=64, vocab=8192),
    "quick": dict(hidden=256, layers=2, experts=16, top_k=4, moe_intermediate=128, heads=4,
                  kv_heads=2, head_dim=64, vocab=2048),
    # Qwen3-30B-A3B's layer shape (its config.json on the Hugging Face hub, Qwen/Qwen3-30B-A3B),
    # with 2 of its 48 layers by default: 3.7 GB in bf16
    "real": dict(hidden=2048, layers=2, experts=128, top_k=8, moe_intermediate=768, heads=32,
                 kv_heads=4, head_dim=128, vocab=151936),
}


def config(s: dict) -> dict:
    return {
        "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
        "vocab_size": s["vocab"], "hidden_size": s["hidden"], "num_hidden_layers": s["layers"],
        "num_attention_heads": s["heads"], "num_key_value_heads": s["kv_heads"],
        "head_dim": s["head_dim"], "intermediate_size": s["moe_intermediate"] * s["top_k"],
        "moe_intermediate_size": s["moe_intermediate"], "num_experts": s["experts"],
        "num_experts_per_tok": s["top_k"], "norm_topk_prob": True, "decoder_sparse_step": 1,
        "mlp_only_layers": [], "tie_word_embeddings": False, "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0, "max_position_embeddings": 4096,
    }


def shapes(s: dict) -> list:
    """[(HF name, shape)] of every tensor, in a fixed order (the random stream follows it)."""
    C, D, V, I, E = s["hidden"], s["head_dim"], s["vocab"], s["moe_intermediate"], s["experts"]
    out = [("model.embed_tokens.weight", (V, C)), ("model.norm.weight", (C,)),
           ("lm_head.weight", (V, C))]
    for l in range(s["layers"]):
        p = f"model.layers.{l}."
        out += [(p + "input_layernorm.weight", (C,)),
                (p + "self_attn.q_proj.weight", (s["heads"] * D, C)),
                (p + "self_attn.k_proj.weight", (s["kv_heads"] * D, C)),
                (p + "self_attn.v_proj.weight", (s["kv_heads"] * D, C)),
                (p + "self_attn.o_proj.weight", (C, s["heads"] * D)),
                (p + "self_attn.q_norm.weight", (D,)), (p + "self_attn.k_norm.weight", (D,)),
                (p + "post_attention_layernorm.weight", (C,)), (p + "mlp.gate.weight", (E, C))]
        for e in range(E):
            q = p + f"mlp.experts.{e}."
            out += [(q + "gate_proj.weight", (I, C)), (q + "up_proj.weight", (I, C)),
                    (q + "down_proj.weight", (C, I))]
    return out


def bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bf16 bit patterns, round to nearest even (the values here are finite)."""
    b = x.astype(np.float32).view(np.uint32)
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)


def weight(rng: np.random.Generator, name: str, shape: tuple) -> np.ndarray:
    """One tensor's values (bf16 bit patterns)."""
    x = rng.standard_normal(shape, dtype=np.float32)
    if name.endswith("norm.weight"):
        x = 1.0 + 0.2 * x
    elif name != "model.embed_tokens.weight":
        x /= np.float32(np.sqrt(shape[-1]))
    return bf16_bits(x)


def write(out_dir: str, s: dict, dtype: str, seed: int) -> int:
    """Writes the checkpoint; returns the size of model.safetensors in bytes."""
    os.makedirs(out_dir, exist_ok=True)
    names = shapes(s)
    item = 4 if dtype == "f32" else 2
    header, offset = {}, 0
    for name, shape in names:
        n = int(np.prod(shape)) * item
        header[name] = {"dtype": "F32" if dtype == "f32" else "BF16", "shape": list(shape),
                        "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt", "generator": f"synth_checkpoint.py seed {seed}"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    rng = np.random.default_rng(seed)
    path = os.path.join(out_dir, "model.safetensors")
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for name, shape in names:
            bits = weight(rng, name, shape)
            if dtype == "f32":
                f.write((bits.astype(np.uint32) << 16).astype("<u4").tobytes())
            else:
                f.write(bits.astype("<u2").tobytes())
    os.replace(path + ".tmp", path)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config(s), f, indent=2)
        f.write("\n")
    return 8 + len(text) + offset


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--shape", default="small", choices=sorted(SHAPES))
    for k in SHAPES["small"]:
        ap.add_argument("--" + k.replace("_", "-"), type=int, default=None)
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    s = dict(SHAPES[a.shape])
    for k in s:
        v = getattr(a, k)
        if v is not None:
            if v <= 0:
                print(f"synth_checkpoint: --{k.replace('_', '-')} must be positive", file=sys.stderr)
                return 2
            s[k] = v
    if s["top_k"] > s["experts"] or s["heads"] % s["kv_heads"]:
        print("synth_checkpoint: need top-k <= experts and heads a multiple of kv-heads",
              file=sys.stderr)
        return 2
    size = write(a.out_dir, s, a.dtype, a.seed)
    print(f"wrote {a.out_dir}: {size / 2**20:.1f} MiB ({a.dtype})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
