"""Tests of model.py (the trainable Qwen3-MoE / Qwen2-MoE) against reference.py and a
token-by-token re-implementation, and of its Hugging Face save/load.

    /usr/bin/python3 -m unittest discover -s harness/pytorch -p 'test_model.py'
"""

import contextlib
import io
import json
import math
import os
import shutil
import sys
import tempfile
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402
import model as moe  # noqa: E402
import reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402
import train  # noqa: E402

QWEN3 = {
    "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "vocab_size": 50,
    "hidden_size": 24, "intermediate_size": 40, "moe_intermediate_size": 12,
    "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 8, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "num_experts": 6,
    "num_experts_per_tok": 2, "norm_topk_prob": True, "decoder_sparse_step": 1,
    "mlp_only_layers": [0], "tie_word_embeddings": False, "max_position_embeddings": 32,
}
QWEN2 = dict(QWEN3, architectures=["Qwen2MoeForCausalLM"], model_type="qwen2_moe",
             head_dim=6, shared_expert_intermediate_size=20, norm_topk_prob=False,
             mlp_only_layers=[], decoder_sparse_step=2)


def random_model(cfg: dict, seed: int = 0) -> moe.MoeForCausalLM:
    """A float64 model with every parameter N(0, 0.5) (norm gains around 1), so that
    routing, biases and norm weights all matter."""
    m = moe.MoeForCausalLM(cfg).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(m.named_parameters()):
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5
                    + (1.0 if name.endswith("norm.weight") else 0.0))
    return m.eval()


def layer_weights(m, prefix: str) -> dict:
    """The state_dict entries under prefix, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in m.state_dict().items() if k.startswith(prefix)}


def attn_config(cfg: dict) -> ref.AttnConfig:
    cfg = moe.normalize_config(cfg)
    return ref.AttnConfig(cfg["hidden_size"], cfg["num_attention_heads"],
                          cfg["num_key_value_heads"], cfg["head_dim"], cfg["rms_norm_eps"],
                          cfg["rope_theta"])


def swiglu(x, w: dict, prefix: str):
    """x (C) -> down(silu(gate x) * up x), weights w[prefix + '{gate,up,down}_proj.weight']."""
    g = ref.linear(x, w[prefix + "gate_proj.weight"])
    u = ref.linear(x, w[prefix + "up_proj.weight"])
    return ref.linear(g * torch.sigmoid(g) * u, w[prefix + "down_proj.weight"])


def naive_forward(m, ids: torch.Tensor) -> torch.Tensor:
    """One sequence, written out from docs/spec.md with reference.py for attention and a loop
    over tokens for the MLP: ids (T) -> logits (T, V)."""
    cfg, w = m.config, m.state_dict()
    eps, k = cfg["rms_norm_eps"], cfg["num_experts_per_tok"]
    x = w["model.embed_tokens.weight"][ids]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = ref.rmsnorm(x, w[p + "input_layernorm.weight"], eps)
        x = x + ref.self_attention(h, layer_weights(m, p + "self_attn."), attn_config(cfg))
        h = ref.rmsnorm(x, w[p + "post_attention_layernorm.weight"], eps)
        y = torch.zeros_like(x)
        for t in range(len(ids)):
            if not moe.is_sparse_layer(cfg, l):
                y[t] = swiglu(h[t], w, p + "mlp.")
                continue
            probs = ref.softmax(ref.linear(h[t], w[p + "mlp.gate.weight"]))
            top = sorted(range(len(probs)), key=lambda e: -probs[e].item())[:k]
            weights = probs[top] / (probs[top].sum() if cfg["norm_topk_prob"] else 1.0)
            for wk, e in zip(weights, top):
                y[t] += wk * swiglu(h[t], w, p + f"mlp.experts.{e}.")
            if cfg["model_type"] == "qwen2_moe":
                gate = torch.sigmoid(h[t] @ w[p + "mlp.shared_expert_gate.weight"][0])
                y[t] += gate * swiglu(h[t], w, p + "mlp.shared_expert.")
        x = x + y
    x = ref.rmsnorm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.t()


class ModelTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_attention_equals_reference(self):
        for cfg in (QWEN3, QWEN2):
            with self.subTest(cfg["model_type"]):
                m = random_model(cfg)
                h = torch.randn(2, 9, cfg["hidden_size"], dtype=torch.float64)
                attn = m.model.layers[1].self_attn
                got = attn(h, m.rope_cos[:9], m.rope_sin[:9])
                w = layer_weights(m, "model.layers.1.self_attn.")
                for b in range(2):
                    want = ref.self_attention(h[b], w, attn_config(cfg))
                    torch.testing.assert_close(got[b], want, rtol=1e-10, atol=1e-10)

    def test_forward_equals_token_by_token(self):
        for cfg in (QWEN3, QWEN2, dict(QWEN3, tie_word_embeddings=True)):
            with self.subTest(cfg["model_type"], tied=cfg["tie_word_embeddings"]):
                m = random_model(cfg)
                ids = torch.randint(0, cfg["vocab_size"], (2, 11),
                                    generator=torch.Generator().manual_seed(1))
                logits, router = m(ids)
                self.assertEqual(logits.shape, (2, 11, cfg["vocab_size"]))
                sparse = [l for l in range(3) if moe.is_sparse_layer(m.config, l)]
                self.assertEqual(len(router), len(sparse))
                self.assertEqual(router[0].shape, (22, cfg["num_experts"]))
                for b in range(2):
                    torch.testing.assert_close(logits[b], naive_forward(m, ids[b]),
                                               rtol=1e-9, atol=1e-9)

    def test_sparse_layer_rule(self):
        cfg = moe.normalize_config(dict(QWEN3, num_hidden_layers=6, decoder_sparse_step=2,
                                        mlp_only_layers=[3]))
        self.assertEqual([moe.is_sparse_layer(cfg, l) for l in range(6)],
                         [False, True, False, False, False, True])
        self.assertFalse(moe.is_sparse_layer(dict(cfg, num_experts=0), 1))
        m = moe.MoeForCausalLM(QWEN3)
        keys = m.state_dict().keys()
        self.assertIn("model.layers.0.mlp.gate_proj.weight", keys)
        self.assertIn("model.layers.1.mlp.experts.5.down_proj.weight", keys)
        self.assertIn("model.layers.1.mlp.gate.weight", keys)

    def test_hub_key_names(self):
        keys = set(moe.MoeForCausalLM(QWEN2).state_dict())
        for key in ("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
                    "model.layers.0.input_layernorm.weight",
                    "model.layers.0.post_attention_layernorm.weight",
                    "model.layers.1.self_attn.q_proj.bias",
                    "model.layers.1.self_attn.o_proj.weight",
                    "model.layers.1.mlp.shared_expert.up_proj.weight",
                    "model.layers.1.mlp.shared_expert_gate.weight",
                    "model.layers.1.mlp.experts.0.gate_proj.weight"):
            self.assertIn(key, keys)
        self.assertNotIn("model.layers.0.self_attn.q_norm.weight", keys)
        self.assertNotIn("model.layers.0.mlp.gate.weight", keys)  # layer 0: (0+1) % 2 != 0
        qwen3 = set(moe.MoeForCausalLM(dict(QWEN3, tie_word_embeddings=True)).state_dict())
        self.assertIn("model.layers.0.self_attn.k_norm.weight", qwen3)
        self.assertNotIn("model.layers.0.self_attn.q_proj.bias", qwen3)
        self.assertNotIn("lm_head.weight", qwen3)
        self.assertFalse(any("rope" in k for k in qwen3))

    def test_tied_embeddings(self):
        m = random_model(dict(QWEN3, tie_word_embeddings=True))
        self.assertFalse(hasattr(m, "lm_head"))
        logits, _ = m(torch.tensor([[1, 2, 3]]))
        logits[0, -1, 40].backward()  # token 40 is not an input: only the head reaches it
        grad = m.model.embed_tokens.weight.grad
        self.assertGreater(grad[40].abs().sum().item(), 0.0)
        self.assertEqual(grad[41].abs().sum().item(), 0.0)

    def test_save_load_round_trip(self):
        for cfg in (QWEN3, QWEN2, dict(QWEN3, tie_word_embeddings=True)):
            with self.subTest(cfg["model_type"], tied=cfg["tie_word_embeddings"]):
                m = random_model(cfg).float()
                moe.save_hf(m, self.dir)
                back = moe.load_hf(self.dir)
                ids = torch.randint(0, 50, (2, 7))
                self.assertTrue(torch.equal(m(ids)[0], back(ids)[0]))
                with open(os.path.join(self.dir, "config.json")) as f:
                    written = json.load(f)
                self.assertEqual(written["num_experts"], 6)
                self.assertEqual(written["rope_theta"], 10000.0)
                self.assertEqual(written["torch_dtype"], "float32")
                tensors, meta = st.load(os.path.join(self.dir, "model.safetensors"))
                self.assertEqual(set(tensors), set(m.state_dict()))
                self.assertEqual(meta, {"format": "pt"})

    def test_bfloat16_save(self):
        m = random_model(QWEN3).float()
        moe.save_hf(m, self.dir, dtype=torch.bfloat16)
        tensors, _ = st.load(os.path.join(self.dir, "model.safetensors"))
        self.assertTrue(all(t.dtype == torch.bfloat16 for t in tensors.values()))
        back = moe.load_hf(self.dir)
        w = "model.layers.1.mlp.experts.3.up_proj.weight"
        self.assertTrue(torch.equal(back.state_dict()[w], m.state_dict()[w].bfloat16().float()))

    def test_load_transformers5_spelling_and_shards(self):
        m = random_model(QWEN3).float()
        moe.save_hf(m, self.dir)
        path = os.path.join(self.dir, "config.json")
        with open(path) as f:
            cfg = json.load(f)
        cfg["num_local_experts"] = cfg.pop("num_experts")
        cfg["rope_parameters"] = {"rope_type": "default", "rope_theta": cfg.pop("rope_theta")}
        with open(path, "w") as f:
            json.dump(cfg, f)
        tensors, _ = st.load(os.path.join(self.dir, "model.safetensors"))
        os.remove(os.path.join(self.dir, "model.safetensors"))
        names = sorted(tensors)
        shards = {"model-00001-of-00002.safetensors": names[::2],
                  "model-00002-of-00002.safetensors": names[1::2]}
        weight_map = {}
        for shard, part in shards.items():
            st.save(os.path.join(self.dir, shard), {n: tensors[n] for n in part})
            weight_map.update({n: shard for n in part})
        with open(os.path.join(self.dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f)
        back = moe.load_hf(self.dir)
        self.assertEqual(back.config["num_experts"], 6)
        ids = torch.randint(0, 50, (1, 9))
        self.assertTrue(torch.equal(m(ids)[0], back(ids)[0]))

    def test_unsupported_config_is_an_error(self):
        for bad in (dict(QWEN3, model_type="llama"), dict(QWEN3, rope_scaling={"type": "yarn"}),
                    dict(QWEN3, attention_bias=True)):
            with self.assertRaises(ValueError):
                moe.normalize_config(bad)

    def test_load_balancing_loss(self):
        E, k = 4, 2
        logits = torch.randn(10, E), torch.randn(6, E)
        probs = torch.cat(logits).softmax(-1)
        counts = torch.zeros(E)
        for row in probs:
            counts[row.topk(k).indices] += 1
        want = E * (counts / 16 * probs.mean(0)).sum()
        torch.testing.assert_close(moe.load_balancing_loss(list(logits), k, E), want)
        collapsed = [torch.tensor([[9.0, 9.0, -9.0, -9.0]]).repeat(5, 1)]
        self.assertAlmostEqual(moe.load_balancing_loss(collapsed, k, E).item(), E, places=3)
        uniform = [torch.zeros(8, E)]  # P_e = 1/E: k whatever the counts
        self.assertAlmostEqual(moe.load_balancing_loss(uniform, k, E).item(), k, places=6)

    def test_generate_is_greedy(self):
        m = random_model(QWEN3)
        out = moe.generate(m, [1, 2, 3], 5)
        ids = [1, 2, 3]
        for _ in range(5):
            ids.append(int(naive_forward(m, torch.tensor(ids))[-1].argmax()))
        self.assertEqual(out, ids[3:])
        self.assertEqual(moe.generate(m, [1, 2, 3], 5, stop=out[:2]), out[:2])


class BalanceTest(unittest.TestCase):
    """train.py --balance: the loss forms, the bias update and one training step each."""

    E, k = 4, 2

    def split_layers(self, n=64):
        """Two layers' router logits (n, E): layer A sends every token to experts 0, 1,
        layer B to experts 2, 3. Pooled, every expert id gets a quarter of the assignments."""
        a = torch.tensor([9.0, 9.0, 0.0, 0.0]).repeat(n, 1) + 0.01 * torch.randn(n, self.E)
        return [a, a[:, [2, 3, 0, 1]]]

    def test_pooled_misses_what_per_layer_sees(self):
        logits = self.split_layers()
        pooled = train.balance_loss("pooled", logits, self.k, self.E)
        per_layer = train.balance_loss("per-layer", logits, self.k, self.E)
        self.assertAlmostEqual(pooled.item(), self.k, places=2)      # balanced, pooled
        self.assertAlmostEqual(per_layer.item(), self.E, places=2)   # collapsed per layer
        one = train.balance_loss("per-layer", logits[:1], self.k, self.E)
        torch.testing.assert_close(one, moe.load_balancing_loss(logits[:1], self.k, self.E))

    def test_global_batch_counts_come_from_the_step(self):
        logits = self.split_layers()
        own = train.expert_counts(logits, self.k, self.E)
        torch.testing.assert_close(
            train.balance_loss("global-batch", logits, self.k, self.E, own),
            train.balance_loss("per-layer", logits, self.k, self.E))
        uniform = torch.ones(2, self.E, dtype=torch.long)  # the step as a whole is balanced
        got = train.balance_loss("global-batch", logits, self.k, self.E, uniform)
        self.assertAlmostEqual(got.item(), self.k, places=5)
        self.assertEqual(train.balance_loss("bias", logits, self.k, self.E).item(), 0.0)

    def test_bias_moves_selection_not_weights(self):
        logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
        probs = logits.softmax(dim=-1)
        bias = torch.tensor([0.0, 0.0, 1.0, 0.0])
        weights, experts = moe.route(logits, 2, False, bias)
        self.assertEqual(sorted(experts[0].tolist()), [0, 2])
        torch.testing.assert_close(weights[0], probs[0, experts[0]])
        b = [torch.zeros(4)]
        train.update_biases(b, torch.tensor([[10, 2, 4, 0]]), 0.5)
        torch.testing.assert_close(b[0], torch.tensor([-0.5, 0.5, 0.0, 0.5]))

    def test_one_step_of_each_method(self):
        cfg = dict(QWEN3, vocab_size=256, max_position_embeddings=16)
        stream = torch.randint(0, 256, (400,), dtype=torch.uint8)
        for method in train.BALANCE:
            a = train.parse_args(["--out", "x", "--balance", method, "--batch", "4",
                                  "--micro-batches", "2", "--ctx", "16", "--bias-rate", "0.1"])
            torch.manual_seed(0)
            model = moe.MoeForCausalLM(cfg)
            if method == "bias":
                for layer in model.model.layers:
                    if layer.sparse:
                        layer.mlp.selection_bias = torch.zeros(cfg["num_experts"])
            opt = train.make_optimizer(model, a)
            g = torch.Generator().manual_seed(1)
            loss, aux, n, counts = train.train_step(model, opt, stream, a, g, 2, 6)
            self.assertTrue(torch.isfinite(loss), method)
            self.assertEqual(n, 64)
            self.assertEqual(counts.sum().item(), 2 * 64 * 2)  # 2 sparse layers, k = 2
            if method == "bias":
                self.assertGreater(train.selection_biases(model)[0].abs().sum().item(), 0)
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
            train.parse_args(["--out", "x", "--batch", "4", "--micro-batches", "3"])


class FreezeTest(unittest.TestCase):
    """train.py --trainable routers [--unfreeze-expert L:E]: a step moves only those."""

    def test_router_only_step(self):
        cfg = dict(QWEN3, vocab_size=256, max_position_embeddings=16)
        stream = torch.randint(0, 256, (400,), dtype=torch.uint8)
        for extra, moving in (([], ()), (["--unfreeze-expert", "2:3"], ("model.layers.2.mlp.experts.3.",))):
            a = train.parse_args(["--out", "x", "--batch", "4", "--ctx", "16",
                                  "--trainable", "routers"] + extra)
            torch.manual_seed(0)
            model = moe.MoeForCausalLM(cfg)
            n = train.freeze(model, a.trainable, a.unfreeze_expert)
            before = {k: v.clone() for k, v in model.state_dict().items()}
            opt = train.make_optimizer(model, a)
            train.train_step(model, opt, stream, a, torch.Generator().manual_seed(1), 2, 6)
            changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
            want = {k for k in before if k.endswith(".mlp.gate.weight") or k.startswith(moving)}
            self.assertEqual(changed, want, extra)
            self.assertEqual(n, sum(before[k].numel() for k in want))
        with self.assertRaises(SystemExit):
            train.freeze(moe.MoeForCausalLM(cfg), "all", ["2:3"])
        with self.assertRaises(SystemExit):
            train.freeze(moe.MoeForCausalLM(cfg), "routers", ["0:3"])  # layer 0 is dense


class HeldoutEvalTest(unittest.TestCase):
    def test_heldout_nll_is_per_fortune_and_truncated(self):
        """Batched, padded evaluation == each fortune alone: "%\\n" + fortune cut to
        max_position_embeddings bytes, every byte after the prefix scored."""
        m = random_model(dict(QWEN3, vocab_size=256, max_position_embeddings=16)).float()
        fortunes = ["short\n".encode(), "a fortune longer than sixteen bytes\n".encode(),
                    "ça\n".encode()]
        nll, n, counts = train.heldout_nll(m, fortunes, batch=2)
        want_nll, want_n = 0.0, 0
        for f in fortunes:
            seq = torch.tensor(list((b"%\n" + f)[:16]))
            logp = m(seq[None, :-1])[0][0].double().log_softmax(-1)
            want_nll -= logp[torch.arange(1, len(seq) - 1), seq[2:]].sum().item()
            want_n += len(seq) - 2
        self.assertEqual(n, want_n)
        self.assertAlmostEqual(nll, want_nll, places=3)
        self.assertEqual(counts.sum().item(), 2 * 2 * (7 + 15 + 5))  # k * sparse layers * inputs


def block_loop(block, h, chooser_logits=None):
    """A SparseMoeBlock written token by token: h (N, C) -> (N, C). The experts are the
    top-k of softmax(chooser_logits) (default: the router's own logits), weighted by
    those probabilities (renormalised when norm_topk_prob); the dense router weights all
    E experts by softmax(logits); router "shared" adds the ungated shared expert."""
    w = {k: v for k, v in block.state_dict().items()}
    logits = ref.linear(h, w["gate.weight"])
    chooser = logits if chooser_logits is None else chooser_logits
    y = torch.zeros_like(h)
    for t in range(h.shape[0]):
        probs = ref.softmax(chooser[t])
        if block.router == "dense":
            top = list(range(len(probs)))
        else:
            top = sorted(range(len(probs)), key=lambda e: -probs[e].item())[:block.top_k]
        weights = probs[top] / (probs[top].sum() if block.norm_topk_prob else 1.0)
        for wk, e in zip(weights, top):
            y[t] += wk * swiglu(h[t], w, f"experts.{e}.")
        if block.router == "shared":
            y[t] += swiglu(h[t], w, "shared_expert.")
        for i in range(len(getattr(block, "shared_experts", []))):  # deepseek-moe
            y[t] += swiglu(h[t], w, f"shared_experts.{i}.")
    return y


class RouterVariantsTest(unittest.TestCase):
    """train.py --router: each variant's MoE block against block_loop, and its property."""

    def block(self, router, **extra):
        a = train.parse_args(["--out", "x", "--router", router, "--hidden", "24",
                              "--experts", "6", "--moe-inter", "12"])
        cfg = dict(train.make_config(a), **extra)
        m = random_model(cfg)
        return m, m.model.layers[1].mlp, torch.randn(2, 7, 24, dtype=torch.float64,
                                                      generator=torch.Generator().manual_seed(3))

    def test_default_config_is_unchanged(self):
        cfg = train.make_config(train.parse_args(["--out", "x"]))
        self.assertNotIn("router", cfg)
        self.assertEqual((cfg["num_experts_per_tok"], cfg["norm_topk_prob"]), (2, True))

    def test_each_variant_matches_a_loop(self):
        for router in (r for r in train.ROUTERS if r not in train.MIXING):
            with self.subTest(router):
                m, block, h = self.block(router)
                y, logits = block(h)
                self.assertEqual(y.shape, h.shape)
                self.assertEqual(logits.shape, (14, len(block.experts)))
                torch.testing.assert_close(y.reshape(14, 24), block_loop(block, h.reshape(14, 24)),
                                           rtol=1e-10, atol=1e-10)

    def test_switch_is_top1_unnormalised(self):
        m, block, h = self.block("switch")
        self.assertEqual((block.top_k, block.norm_topk_prob), (1, False))
        logits = block(h)[1]
        experts, weights = ref.switch_route(logits)
        w, e = moe.route(logits, 1, False)
        torch.testing.assert_close(w[:, 0], weights)
        self.assertTrue(torch.equal(e[:, 0], experts))
        self.assertLess(weights.max().item(), 1.0)  # the router gets a gradient

    def test_shared_expert_is_always_on(self):
        m, block, h = self.block("shared")
        self.assertEqual(block.top_k, 1)  # --top-k 2: one shared + one routed
        self.assertIn("model.layers.1.mlp.shared_expert.up_proj.weight", m.state_dict())
        self.assertNotIn("model.layers.1.mlp.shared_expert_gate.weight", m.state_dict())
        with torch.no_grad():  # routed experts off: the shared expert alone remains
            for e in block.experts:
                e.down_proj.weight.zero_()
        x = h.reshape(14, 24)
        torch.testing.assert_close(block(h)[0].reshape(14, 24), block.shared_expert(x))
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
            train.parse_args(["--out", "x", "--router", "shared", "--top-k", "1"])

    def test_deepseek_moe_is_fine_grained_and_shared(self):
        m, block, h = self.block("deepseek-moe")  # --experts 6 --moe-inter 12 --top-k 2
        self.assertEqual((len(block.experts), block.top_k, len(block.shared_experts)), (12, 2, 2))
        self.assertEqual(block.experts[0].up_proj.weight.shape, (6, 24))
        self.assertIn("model.layers.1.mlp.shared_experts.1.up_proj.weight", m.state_dict())
        with torch.no_grad():  # routed experts off: the two shared experts alone remain
            for e in block.experts:
                e.down_proj.weight.zero_()
        x = h.reshape(14, 24)
        torch.testing.assert_close(block(h)[0].reshape(14, 24),
                                   block.shared_experts[0](x) + block.shared_experts[1](x))

    def test_dense_uses_every_expert(self):
        m, block, h = self.block("dense")
        x = h.reshape(14, 24)
        y = block(h)[0].reshape(14, 24)
        with torch.no_grad():
            block.experts[5].down_proj.weight.mul_(2.0)  # the least likely expert matters too
        self.assertFalse(torch.allclose(block(h)[0].reshape(14, 24), y))
        probs = block.gate(x).softmax(-1)
        want = sum(probs[:, e, None] * block.experts[e](x) for e in range(6))
        torch.testing.assert_close(block(h)[0].reshape(14, 24), want)

    def test_noisy_topk_noise_in_training_only(self):
        m, block, h = self.block("noisy-topk")
        x = h.reshape(14, 24)
        clean = block_loop(block, x)
        torch.testing.assert_close(block(h)[0].reshape(14, 24), clean)  # eval: no noise
        block.train()
        torch.manual_seed(5)
        y = block(h)[0].reshape(14, 24)
        torch.manual_seed(5)
        logits = block.gate(x)
        noisy = logits + torch.randn_like(logits) * torch.nn.functional.softplus(block.noise(x))
        torch.testing.assert_close(y, block_loop(block, x, noisy.detach()), rtol=1e-10, atol=1e-10)
        self.assertFalse(torch.allclose(y, clean))  # the noise changed some choice

    def test_expert_choice_per_sequence(self):
        m, block, h = self.block("expert-choice")
        y, logits = block(h)
        c = math.ceil(7 * 2 / 6)  # T = 7 tokens per sequence, k = 2, E = 6
        w = dict(block.state_dict())
        w = {**w, **{f"experts.{p}.weight": torch.stack([w[f"experts.{e}.{p}.weight"]
                                                           for e in range(6)])
                     for p in ("gate_proj", "up_proj", "down_proj")}}
        for b in range(2):  # each sequence on its own: its experts pick among its tokens
            want, tokens = ref.expert_choice_moe(h[b], w, c)
            torch.testing.assert_close(y[b], want, rtol=1e-10, atol=1e-10)
            self.assertEqual(tokens.shape, (6, c))

    def test_soft_moe_by_hand(self):
        m, block, h = self.block("soft-moe")
        S = block.slots
        self.assertEqual(S % 6, 0)
        y, per_expert = block(h)
        w = dict(block.state_dict())
        p = S // 6
        for b in range(2):
            logits = ref.linear(h[b], w["gate.weight"])        # (T, S)
            dispatch = torch.softmax(logits, dim=0)            # over the tokens
            combine = torch.softmax(logits, dim=1)             # over the slots
            slots = dispatch.t() @ h[b]                        # (S, C)
            out = torch.stack([swiglu(slots[s], w, f"experts.{s // p}.") for s in range(S)])
            torch.testing.assert_close(y[b], combine @ out, rtol=1e-10, atol=1e-10)
            mass = combine.view(7, 6, p).sum(-1)               # a token's weight per expert
            torch.testing.assert_close(per_expert[b * 7:(b + 1) * 7].softmax(-1), mass)
            stacked = {f"experts.{q}.weight": torch.stack([w[f"experts.{e}.{q}.weight"]
                                                            for e in range(6)])
                       for q in ("gate_proj", "up_proj", "down_proj")}  # lesson 10's reference
            torch.testing.assert_close(y[b], ref.soft_moe(h[b], w["gate.weight"], stacked, p),
                                       rtol=1e-10, atol=1e-10)

    def test_which_routers_are_causal(self):
        """Changing the last token must not change the earlier outputs of a causal MoE
        layer; expert choice and Soft MoE mix the sequence, so there it does."""
        for router in train.ROUTERS:
            with self.subTest(router):
                m, block, h = self.block(router)
                later = h.clone()
                later[:, -1] += 3.0
                same = torch.allclose(block(h)[0][:, :-1], block(later)[0][:, :-1])
                self.assertEqual(same, router not in train.MIXING)

    def test_causal_nll_equals_heldout_for_a_causal_model(self):
        fortunes = [b"Ab cd\n", b"Xyz\nq\n", b"a"]
        for router in ("topk", "soft-moe"):
            with self.subTest(router):
                cfg = dict(QWEN3, vocab_size=256, max_position_embeddings=6)
                if router == "soft-moe":
                    cfg.update(router="soft-moe", soft_moe_slots=12)
                m = random_model(cfg).eval()
                nll, n, _ = train.heldout_nll(m, fortunes)
                causal, n2 = train.causal_nll(m, fortunes)
                self.assertEqual(n, n2)
                self.assertEqual(abs(nll - causal) < 1e-9, router == "topk")

    def test_noisy_warmup_stops_the_noise(self):
        a = train.parse_args(["--out", "x", "--router", "noisy-warmup", "--hidden", "24",
                              "--experts", "6", "--moe-inter", "12"])
        self.assertEqual(train.make_config(a)["router"], "noisy-topk")  # the same model
        m, block, h = self.block("noisy-topk")
        block.train()
        torch.manual_seed(5)
        noisy = block(h)[0]
        train.set_noise(m, False)
        torch.testing.assert_close(block(h)[0].reshape(14, 24), block_loop(block, h.reshape(14, 24)),
                                   rtol=1e-10, atol=1e-10)  # training, but no noise
        self.assertFalse(torch.allclose(noisy, block(h)[0]))

    def test_round_trip_and_bad_router(self):
        with tempfile.TemporaryDirectory() as d:
            for router in train.ROUTERS:
                m, _, _ = self.block(router)
                moe.save_hf(m.float(), d)
                ids = torch.arange(20).reshape(2, 10)
                torch.testing.assert_close(moe.load_hf(d)(ids)[0], m.float().eval()(ids)[0])
        with self.assertRaisesRegex(ValueError, "router 'nope'"):
            moe.MoeForCausalLM(dict(QWEN3, router="nope"))


class ZLossTest(unittest.TestCase):
    """train.py --z-loss: ST-MoE's router z-loss."""

    def test_value_by_hand(self):
        ln2 = math.log(2.0)
        a = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])  # logsumexp ln 2, ln 4
        b = torch.zeros(1, 4)                                  # logsumexp ln 4
        want = ((ln2 ** 2 + (2 * ln2) ** 2) / 2 + (2 * ln2) ** 2) / 2  # mean over layers
        self.assertAlmostEqual(moe.router_z_loss([a, b]).item(), want, places=6)
        self.assertAlmostEqual(moe.router_z_loss([a]).item(), ref.router_z_loss(a).item(),
                               places=6)
        big = torch.tensor([[1000.0, 999.0]])  # no overflow: (1000 + ln(1 + e^-1))^2
        self.assertAlmostEqual(moe.router_z_loss([big]).item(),
                               (1000 + math.log1p(math.exp(-1))) ** 2, delta=0.1)

    def test_gradient_reaches_the_router_not_the_experts(self):
        m = random_model(QWEN3).float().train()
        ids = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(2))
        moe.router_z_loss(m(ids)[1]).backward()
        grads = {n: p.grad for n, p in m.named_parameters()}
        for n, g in grads.items():
            downstream = ".layers.2.mlp.experts." in n or n.startswith(("lm_head", "model.norm"))
            if n.endswith("mlp.gate.weight"):
                self.assertGreater(g.abs().sum().item(), 0, n)
            elif downstream:  # after the last router: nothing the loss depends on
                self.assertTrue(g is None or not g.any(), n)
        # one block on its own: only the router's weight moves
        block = m.model.layers[1].mlp
        block.zero_grad(set_to_none=True)
        moe.router_z_loss([block(torch.randn(1, 5, 24))[1]]).backward()
        moved = {n for n, p in block.named_parameters() if p.grad is not None and p.grad.any()}
        self.assertEqual(moved, {"gate.weight"})

    def test_training_step_with_z_loss(self):
        cfg = dict(QWEN3, vocab_size=256, max_position_embeddings=16)
        stream = torch.randint(0, 256, (400,), dtype=torch.uint8)
        grads = []
        for z in ("0", "10"):
            a = train.parse_args(["--out", "x", "--batch", "4", "--ctx", "16", "--z-loss", z])
            torch.manual_seed(0)
            model = moe.MoeForCausalLM(cfg)
            stats = []
            train.train_step(model, train.make_optimizer(model, a), stream, a,
                             torch.Generator().manual_seed(1), 2, 6, stats)
            self.assertEqual(len(stats), 1 + 2 * 2)  # z-loss, (max |logit|, lse) x 2 layers
            grads.append(model.model.layers[1].mlp.gate.weight.detach().clone())
        self.assertFalse(torch.equal(grads[0], grads[1]))  # the coefficient changes the step


class CorpusTest(unittest.TestCase):
    def test_clean(self):
        self.assertEqual(corpus.clean("B\bBo\bol\bld _\bu\r\nx\x07y\tz"), "Bold u\nxy\tz")

    def test_split_fortunes(self):
        text = "\nfirst\n  line two\n%\n%\n\nsecond\n\nend\n\n%\nlast"
        self.assertEqual(corpus.split_fortunes(text),
                         ["first\n  line two\n", "second\n\nend\n", "last\n"])

    def test_heldout_split_depends_on_text_only(self):
        fortunes = [f"fortune number {i}\n" for i in range(2000)]
        held = [f for f in fortunes if corpus.is_heldout(f)]
        self.assertTrue(60 <= len(held) <= 140, len(held))  # ~5%
        self.assertEqual(held, [f for f in fortunes if corpus.is_heldout(f)])


if __name__ == "__main__":
    unittest.main()
