"""Fixtures that carry whole models: lesson 08 and the Hugging Face checkpoint tests.

    /usr/bin/python3 harness/pytorch/export_models.py --seed 1234 --fixtures data/fixtures \
        --models data/models

1. `<fixtures>/08-model.safetensors`: three tiny models (Qwen3-MoE with a dense layer and
   tied embeddings; Qwen2-MoE with biases, a shared expert and an untied lm_head; Qwen3-MoE
   with decoder_sparse_step 2 and a layer in mlp_only_layers), their
   weights under `<case>/<hub key>`, config.json text in the metadata `<case>/config`, the
   input `ids`, and every intermediate of the forward pass (per layer: the input, after
   attention, the router logits and chosen experts, the output) so a failing student sees
   the first tensor that diverges. Plus `sample_*` cases for the sampler (one with two
   logits tied at the max, one with temperature < 1 and top-p < 1).
2. `<models>/<name>/`: Hugging Face hub-layout checkpoints (config.json +
   model.safetensors, or an index + shards) and `expected.safetensors` (ids, logits, the
   greedy continuation) for `make test`'s checkpoint test: Qwen3-MoE f32 with a dense
   layer and tied embeddings, the same in bf16, Qwen2-MoE, and a sharded Qwen3-MoE written
   in the transformers 5.x config spelling.

Everything is computed in float64 from the float32 (or bf16-rounded) weights and rounded
once, so files are reproducible bit for bit with the same torch.
"""

import argparse
import hashlib
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as moe  # noqa: E402
import safetensors_io as st  # noqa: E402

DEFAULT_SEED = 1234

QWEN3_TINY = {
    "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
    "vocab_size": 256, "hidden_size": 32, "num_hidden_layers": 3,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
    "intermediate_size": 48, "moe_intermediate_size": 16, "num_experts": 8,
    "num_experts_per_tok": 2, "norm_topk_prob": True, "decoder_sparse_step": 1,
    "mlp_only_layers": [0], "tie_word_embeddings": True, "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0, "max_position_embeddings": 64,
}
# Sparse every second layer, and layer 3 dense although the step makes it sparse:
# layers 1 and 5 are MoE, 0, 2, 3 and 4 dense SwiGLU (the rule of model_load.c).
QWEN3_SPARSE_STEP = {
    "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
    "vocab_size": 64, "hidden_size": 16, "num_hidden_layers": 6,
    "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8,
    "intermediate_size": 24, "moe_intermediate_size": 8, "num_experts": 4,
    "num_experts_per_tok": 2, "norm_topk_prob": True, "decoder_sparse_step": 2,
    "mlp_only_layers": [3], "tie_word_embeddings": False, "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0, "max_position_embeddings": 64,
}
QWEN2_TINY = {
    "architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe",
    "vocab_size": 300, "hidden_size": 24, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 4, "head_dim": 6,
    "intermediate_size": 40, "moe_intermediate_size": 12,
    "shared_expert_intermediate_size": 20, "num_experts": 6, "num_experts_per_tok": 2,
    "norm_topk_prob": False, "decoder_sparse_step": 1, "mlp_only_layers": [],
    "tie_word_embeddings": False, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
    "max_position_embeddings": 64,
}


def generator(seed: int, name: str) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def build(cfg: dict, seed: int, name: str) -> moe.MoeForCausalLM:
    """A model with weights large enough that every path matters (std 0.3, norms ~1)."""
    model = moe.MoeForCausalLM(cfg)
    g = generator(seed, name)
    with torch.no_grad():
        for pname, p in sorted(model.named_parameters()):
            if pname.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[-1] if p.dim() == 2 else 4
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
    return model.double().eval()


def random_ids(cfg: dict, T: int, seed: int, name: str) -> torch.Tensor:
    return torch.randint(0, cfg["vocab_size"], (1, T), generator=generator(seed, name + "/ids"))


# ------------------------------------------------------------------------------------
# lesson 08: a model with every intermediate
# ------------------------------------------------------------------------------------


@torch.no_grad()
def trace(model: moe.MoeForCausalLM, ids: torch.Tensor) -> dict:
    """Runs the model layer by layer on ids (1, T), keeping each step (all (T, ...))."""
    cfg, T = model.config, ids.shape[1]
    out = {}
    x = model.model.embed_tokens(ids)
    cos, sin = model.rope_cos[:T], model.rope_sin[:T]
    for l, layer in enumerate(model.model.layers):
        out[f"layer{l}.in"] = x[0]
        attn = layer.self_attn(layer.input_layernorm(x), cos, sin)
        out[f"layer{l}.after_attn~no_residual"] = attn[0]  # mistake: x = attn(norm(x))
        x = x + attn
        out[f"layer{l}.after_attn"] = x[0]
        h = layer.post_attention_layernorm(x)
        if layer.sparse:
            y, logits = layer.mlp(h)
            _, experts = moe.route(logits, cfg["num_experts_per_tok"], cfg["norm_topk_prob"])
            out[f"layer{l}.router_logits"] = logits
            out[f"layer{l}.experts"] = experts.to(torch.int32)
        else:
            y = layer.mlp(h)
        out[f"layer{l}.out~no_residual"] = y[0]  # mistake: x = mlp(norm(x))
        x = x + y
        out[f"layer{l}.out"] = x[0]
    logits, _ = model(ids)
    out["logits"] = logits[0]
    head = model.model.embed_tokens.weight if cfg["tie_word_embeddings"] else model.lm_head.weight
    out["logits~no_final_norm"] = (x @ head.t())[0]  # mistake: lm_head without model.norm
    return out


def router_margin(logits: torch.Tensor, k: int) -> float:
    """The smallest gap between the k-th and (k+1)-th probability over tokens."""
    p = logits.softmax(-1).sort(-1, descending=True).values
    return float((p[:, k - 1] - p[:, k]).min()) if p.shape[1] > k else 1.0


def model_case(name: str, cfg: dict, T: int, seed: int, tensors: dict, meta: dict) -> None:
    # Re-draw until every routing decision has a clear margin: a near-tie would make the
    # chosen experts depend on float rounding, not on the student's code.
    for attempt in range(100):
        model = build(cfg, seed, f"{name}/{attempt}")
        ids = random_ids(cfg, T, seed, f"{name}/{attempt}")
        steps = trace(model, ids)
        margins = [router_margin(v, cfg["num_experts_per_tok"])
                   for k, v in steps.items() if k.endswith("router_logits")]
        if min(margins) > 1e-3:
            break
    else:
        raise RuntimeError(f"{name}: no draw without a routing near-tie")
    for key, t in model.state_dict().items():
        tensors[f"{name}/{key}"] = t.float()
    tensors[f"{name}/ids"] = ids[0].to(torch.int32)
    for key, t in steps.items():
        tensors[f"{name}/{key}"] = t if t.dtype == torch.int32 else t.float()
    meta[f"{name}/config"] = json.dumps(cfg, sort_keys=True)
    meta[f"{name}/T"] = str(T)
    sparse = [l for l in range(cfg["num_hidden_layers"])
              if l not in cfg["mlp_only_layers"] and (l + 1) % cfg["decoder_sparse_step"] == 0]
    meta[f"{name}/title"] = (f"{cfg['model_type']} layers={cfg['num_hidden_layers']} "
                             f"E={cfg['num_experts']} k={cfg['num_experts_per_tok']} T={T}"
                             + (f" sparse layers {','.join(map(str, sparse))}"
                                if cfg["decoder_sparse_step"] > 1 else ""))


def nucleus_of(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """(V) 1.0 where an id is in the smallest set of most probable ids whose mass reaches
    top_p, else 0.0."""
    order = probs.argsort(descending=True)
    mass = probs[order].cumsum(0)
    keep = int((mass < top_p).sum()) + 1
    nucleus = torch.zeros(probs.numel())
    nucleus[order[:keep]] = 1.0
    return nucleus


def sample_case(name: str, V: int, temperature: float, top_p: float, seed: int,
                tensors: dict, meta: dict, scale: float = 3.0, tie: bool = False) -> None:
    """logits (V); probs = softmax(logits / temperature); nucleus = the smallest set of
    most probable ids whose mass reaches top_p (1.0 where an id is in it). `tie`: the
    largest logit is copied to another id, so two ids share the maximum exactly; argmax is
    the lower one (torch.argmax's rule, and the one a scan that replaces only on > keeps)."""
    g = generator(seed, name)
    logits = (torch.randn(V, generator=g, dtype=torch.float64) * scale).float()
    if tie:
        first = int(logits.argmax())
        other = (first + 1 + int(torch.randint(V - 1, (1,), generator=g))) % V
        logits[other] = logits[first]
    probs = (logits.double() / temperature).softmax(-1)
    nucleus = nucleus_of(probs, top_p)
    if temperature < 1 and top_p < 1:  # the nucleus of the tempered probabilities is smaller
        assert nucleus.sum() < nucleus_of(logits.double().softmax(-1), top_p).sum(), name
    tensors[f"{name}/logits"] = logits
    tensors[f"{name}/probs"] = probs.float()
    tensors[f"{name}/nucleus"] = nucleus
    top = (logits == logits.max()).nonzero().flatten()
    assert len(top) == (2 if tie else 1), name
    tensors[f"{name}/argmax"] = torch.tensor([int(top[0])], dtype=torch.int32)
    meta.update({f"{name}/V": str(V), f"{name}/temperature": repr(temperature),
                 f"{name}/top_p": repr(top_p),
                 f"{name}/title": f"V={V} temperature={temperature} top_p={top_p}"
                 + (f" logits {int(top[0])} and {int(top[1])} tied at the max" if tie else "")})


def export_lesson08(seed: int, out_dir: str) -> str:
    tensors, meta = {}, {}
    model_case("model_qwen3", QWEN3_TINY, 9, seed, tensors, meta)
    model_case("model_qwen2", QWEN2_TINY, 6, seed, tensors, meta)
    model_case("model_sparse_step", QWEN3_SPARSE_STEP, 7, seed, tensors, meta)
    sample_case("sample_greedy_like", 50, 0.05, 1.0, seed, tensors, meta)
    sample_case("sample_top_p", 40, 1.0, 0.7, seed, tensors, meta, scale=1.0)
    sample_case("sample_hot", 300, 2.0, 0.95, seed, tensors, meta)
    sample_case("sample_tie", 30, 1.0, 1.0, seed, tensors, meta, tie=True)
    sample_case("sample_cool_top_p", 60, 0.6, 0.8, seed, tensors, meta, scale=1.0)
    meta.update({"lesson": "08-model", "seed": str(seed),
                 "generator": f"moekit export_models.py, torch {torch.__version__}",
                 "cases": "model_qwen3 model_qwen2 model_sparse_step sample_greedy_like "
                          "sample_top_p sample_hot sample_tie sample_cool_top_p"})
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "08-model.safetensors")
    st.save(path, tensors, meta)
    return path


# ------------------------------------------------------------------------------------
# Hugging Face checkpoints for the loader test
# ------------------------------------------------------------------------------------

QWEN3_V5 = dict(QWEN3_TINY, num_hidden_layers=4, decoder_sparse_step=2, mlp_only_layers=[],
                norm_topk_prob=False, tie_word_embeddings=False, vocab_size=200)


def v5_spelling(cfg: dict) -> dict:
    """transformers 5.x: num_local_experts and rope_parameters.rope_theta."""
    out = dict(cfg)
    out["num_local_experts"] = out.pop("num_experts")
    out["rope_parameters"] = {"rope_type": "default", "rope_theta": out.pop("rope_theta")}
    return out


@torch.no_grad()
def greedy(model: moe.MoeForCausalLM, ids: list, n: int) -> tuple:
    """n greedy ids after ids, and the smallest top-1/top-2 logit gap on the way."""
    ids, new, gap = list(ids), [], float("inf")
    for _ in range(n):
        logits, _ = model(torch.tensor([ids]))
        top2 = logits[0, -1].topk(2).values
        gap = min(gap, float(top2[0] - top2[1]))
        nxt = int(logits[0, -1].argmax())
        ids.append(nxt)
        new.append(nxt)
    return new, gap


def save_sharded(model: moe.MoeForCausalLM, cfg: dict, directory: str) -> None:
    """Two shards and model.safetensors.index.json, as the hub writes big checkpoints."""
    os.makedirs(directory, exist_ok=True)
    state = {k: v.float() for k, v in model.state_dict().items()}
    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    weight_map = {}
    for shard, keys in shards.items():
        st.save(os.path.join(directory, shard), {k: state[k] for k in keys}, {"format": "pt"})
        weight_map.update({k: shard for k in keys})
    total = sum(t.numel() * 4 for t in state.values())
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2,
                  sort_keys=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)


def checkpoint(name: str, cfg: dict, seed: int, out_dir: str, dtype=torch.float32,
               sharded: bool = False, T: int = 12, n_new: int = 8) -> None:
    directory = os.path.join(out_dir, name)
    for attempt in range(100):
        model = build(cfg, seed, f"{name}/{attempt}").float()
        if dtype == torch.bfloat16:  # the expected values come from the rounded weights
            with torch.no_grad():    # (parameters only: the RoPE tables stay float32)
                for p in model.parameters():
                    p.copy_(p.to(torch.bfloat16).float())
        model = model.double()
        ids = random_ids(cfg, T, seed, f"{name}/{attempt}")[0].tolist()
        new, gap = greedy(model, ids, n_new)
        if gap > 1e-3:
            break
    if sharded:
        save_sharded(model, v5_spelling(cfg), directory)
    else:
        moe.save_hf(model, directory, dtype=dtype)
    logits, _ = model(torch.tensor([ids]))
    st.save(os.path.join(directory, "expected.safetensors"),
            {"ids": torch.tensor(ids, dtype=torch.int32), "logits": logits[0].float(),
             "greedy": torch.tensor(new, dtype=torch.int32)},
            {"seed": str(seed), "generator": f"moekit export_models.py, torch {torch.__version__}"})
    # the same as text, for the CLI test: moekit generate --ids "$(cat prompt_ids.txt)" ...
    with open(os.path.join(directory, "prompt_ids.txt"), "w") as f:
        f.write(" ".join(map(str, ids)) + "\n")
    with open(os.path.join(directory, "expected_greedy.txt"), "w") as f:
        f.write(" ".join(map(str, new)) + "\n")


def export_checkpoints(seed: int, out_dir: str) -> None:
    checkpoint("qwen3-moe-tiny", QWEN3_TINY, seed, out_dir)
    checkpoint("qwen3-moe-tiny-bf16", QWEN3_TINY, seed, out_dir, dtype=torch.bfloat16)
    checkpoint("qwen2-moe-tiny", QWEN2_TINY, seed, out_dir)
    checkpoint("qwen3-moe-sharded-v5", QWEN3_V5, seed, out_dir, sharded=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--fixtures", default=None, help="where 08-model.safetensors goes")
    ap.add_argument("--models", default=None, help="where the checkpoint dirs go")
    args = ap.parse_args()
    if args.fixtures:
        print(export_lesson08(args.seed, args.fixtures))
    if args.models:
        export_checkpoints(args.seed, args.models)
        print(args.models)


if __name__ == "__main__":
    main()
