"""Self-tests of the PyTorch side: safetensors I/O, the reference against independent
formulations, the mistakes, and the exported files against docs/fixtures.md.

    /usr/bin/python3 -m unittest discover -s harness/pytorch -p 'test_*.py'
"""

import io
import json
import math
import os
import shutil
import struct
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_fixtures  # noqa: E402
import export_fixtures  # noqa: E402
import mistakes  # noqa: E402
import reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402

G = torch.Generator().manual_seed(7)


def rnd(*shape):
    """float64 N(0, 1) test data."""
    return torch.randn(*shape, generator=G, dtype=torch.float64)


class SafetensorsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, "t.safetensors")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def read(self) -> bytes:
        with open(self.path, "rb") as f:
            return f.read()

    def test_round_trip_every_dtype(self):
        tensors = {
            "f32": torch.randn(3, 5, generator=G),
            "f16": torch.randn(7, generator=G).half(),
            "bf16": torch.tensor([1.0, -2.5, 3.14159, 1e30, float("inf")]).bfloat16(),
            "i32": torch.arange(-4, 8, dtype=torch.int32).reshape(2, 2, 3),
            "i64": torch.tensor([2**40, -1]),
            "scalar": torch.tensor(2.0),
            "empty": torch.zeros(0, 4),
        }
        st.save(self.path, tensors, {"a": "1"})
        back, meta = st.load(self.path)
        self.assertEqual(meta, {"a": "1"})
        self.assertEqual(set(back), set(tensors))
        for name, t in tensors.items():
            self.assertEqual(back[name].dtype, t.dtype, name)
            self.assertEqual(back[name].shape, t.shape, name)
            self.assertTrue(torch.equal(back[name], t), name)

    def test_deterministic_layout(self):
        a, b = torch.ones(3), torch.zeros(2, 2)
        st.save(self.path, {"b": b, "a": a}, {"z": "1", "m": "2"})
        first = self.read()
        st.save(self.path, {"a": a, "b": b}, {"m": "2", "z": "1"})
        self.assertEqual(self.read(), first)
        (n,) = struct.unpack("<Q", first[:8])
        self.assertEqual(n % 8, 0)
        header = json.loads(first[8:8 + n])
        self.assertEqual(header["a"]["data_offsets"], [0, 12])  # sorted key order
        self.assertEqual(header["b"]["data_offsets"], [12, 28])

    def write_raw(self, header: dict, data: bytes, n_override=None):
        text = json.dumps(header).encode()
        with open(self.path, "wb") as f:
            f.write(struct.pack("<Q", len(text) if n_override is None else n_override))
            f.write(text + data)

    def assert_rejected(self, fragment: str):
        with self.assertRaises(ValueError) as ctx:
            st.load(self.path)
        self.assertIn(fragment, str(ctx.exception))
        self.assertIn(self.path, str(ctx.exception))

    def test_malformed_files_are_rejected(self):
        ok = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
        cases = [
            ({"x": ok}, b"\0" * 8, 10**12, "does not fit"),
            ({"x": dict(ok, dtype="F8")}, b"\0" * 8, None, "unknown or missing dtype"),
            ({"x": dict(ok, data_offsets=[0, 16])}, b"\0" * 8, None, "outside"),
            ({"x": dict(ok, shape=[3])}, b"\0" * 8, None, "needs 12 bytes"),
            ({"x": ok, "y": ok}, b"\0" * 8, None, "overlaps"),
            ({"x": dict(ok, data_offsets=[4, 12])}, b"\0" * 12, None, "hole"),
            ({"x": ok}, b"\0" * 12, None, "unused bytes"),
        ]
        for header, data, n, fragment in cases:
            with self.subTest(fragment):
                self.write_raw(header, data, n)
                self.assert_rejected(fragment)
        with open(self.path, "wb") as f:
            f.write(b"\1\0")
        self.assert_rejected("too short")
        with open(self.path, "wb") as f:
            f.write(struct.pack("<Q", 3) + b"{x}")
        self.assert_rejected("not valid JSON")


class ReferenceTest(unittest.TestCase):
    def test_linear_and_softmax_match_torch(self):
        x, w, b = rnd(4, 6), rnd(3, 6), rnd(3)
        self.assertTrue(torch.allclose(ref.linear(x, w, b), torch.nn.functional.linear(x, w, b)))
        s = rnd(5, 9) * 30
        self.assertTrue(torch.allclose(ref.softmax(s), torch.softmax(s, -1)))

    def test_rmsnorm_formula(self):
        x, w = rnd(3, 10), rnd(10)
        want = x / torch.sqrt((x * x).sum(-1, keepdim=True) / 10 + 1e-5) * w
        self.assertTrue(torch.allclose(ref.rmsnorm(x, w, 1e-5), want))
        half = ref.rmsnorm(x.bfloat16(), w.bfloat16(), 1e-5)
        self.assertEqual(half.dtype, torch.float32)  # upcast like Hugging Face

    def test_rope_is_complex_rotation(self):
        # rotate-half: z_i = x_i + i x_{i+D/2} is multiplied by e^{i pos f_i}
        T, H, D, pos0, theta = 3, 2, 10, 5, 10000.0
        x = rnd(T, H, D)
        angle = torch.arange(pos0, pos0 + T, dtype=torch.float64)[:, None] * \
            ref.rope_inv_freq(D, theta)[None, :]
        rot = torch.polar(torch.ones_like(angle), angle)[:, None, :]
        z = torch.complex(x[..., :D // 2], x[..., D // 2:]) * rot
        want = torch.cat([z.real, z.imag], -1)
        self.assertTrue(torch.allclose(ref.rope(x, pos0, theta), want, atol=1e-6))
        # interleaved pairs (x_2i, x_2i+1) with the same frequencies
        z = torch.complex(x[..., 0::2], x[..., 1::2]) * rot
        want = torch.stack([z.real, z.imag], -1).reshape(T, H, D)
        self.assertTrue(torch.allclose(mistakes.rope_interleaved(x, pos0, theta), want,
                                       atol=1e-6))

    def test_attention_matches_loops(self):
        T, H, KV, D = 5, 6, 3, 4
        q, k, v = rnd(T, H, D), rnd(T, KV, D), rnd(T, KV, D)
        out = ref.causal_attention(q, k, v)
        for t in range(T):
            for h in range(H):
                kv = h // (H // KV)
                s = torch.stack([q[t, h] @ k[j, kv] for j in range(t + 1)]) / math.sqrt(D)
                p = torch.softmax(s, 0)
                want = sum(p[j] * v[j, kv] for j in range(t + 1))
                self.assertTrue(torch.allclose(out[t, h], want), (t, h))

    def test_self_attention_prefill_equals_decode(self):
        # What the C test relies on: one token at a time through a KV cache gives the
        # same output as the causal prefill.
        cfg = ref.AttnConfig(12, 4, 2, 6, 1e-6, 1e6)
        w = export_fixtures.f64(export_fixtures.selfattn_weights(G, cfg, True, True))
        h = rnd(6, 12)
        prefill = ref.self_attention(h, w, cfg)
        keys, values = [], []
        for pos in range(h.shape[0]):
            q, k, v = ref.qkv_proj(h[pos:pos + 1], w, cfg)
            q, k = ref.qk_norm(q, k, w, cfg)
            q, k = ref.rope(q, pos, cfg.rope_theta), ref.rope(k, pos, cfg.rope_theta)
            keys.append(k), values.append(v)
            mask = torch.ones(1, pos + 1, dtype=torch.bool)
            o = ref.attention(q, torch.cat(keys), torch.cat(values), mask)
            step = ref.linear(o.reshape(1, -1), w["o_proj.weight"])
            self.assertTrue(torch.allclose(step[0], prefill[pos]), pos)


class MoeReferenceTest(unittest.TestCase):
    """Lessons 05-07 and 10 against Hugging Face's formulations, written out here."""

    def test_silu_and_expert(self):
        z = rnd(50) * 30
        self.assertTrue(torch.allclose(ref.silu(z), torch.nn.functional.silu(z)))
        self.assertTrue(torch.isfinite(ref.silu(torch.tensor([-1000.0, 1000.0]))).all())
        x, g, u, d = rnd(3, 8), rnd(5, 8), rnd(5, 8), rnd(8, 5)
        F = torch.nn.functional
        want = F.linear(F.silu(F.linear(x, g)) * F.linear(x, u), d)  # Qwen3MoeMLP
        self.assertTrue(torch.allclose(ref.expert(x, g, u, d), want))

    def test_topk_is_stable(self):
        p = torch.tensor([0.2, 0.5, 0.2, 0.1, 0.5, 0.2])
        idx, val = ref.topk(p, 4)
        self.assertEqual(idx.tolist(), [1, 4, 0, 2])  # ties: the lower index first
        self.assertTrue(torch.equal(val, p[idx]))
        q = rnd(40)
        self.assertEqual(ref.topk(q, 7)[0].tolist(), torch.topk(q, 7).indices.tolist())

    def hf_route(self, logits, k, norm):
        # transformers Qwen3MoeSparseMoeBlock.forward, the router part
        routing_weights = torch.nn.functional.softmax(logits, dim=1, dtype=torch.float64)
        routing_weights, selected_experts = torch.topk(routing_weights, k, dim=-1)
        if norm:
            routing_weights /= routing_weights.sum(dim=-1, keepdim=True)
        return selected_experts, routing_weights

    def test_route_matches_hugging_face(self):
        logits = rnd(6, 16)
        for norm in (False, True):
            probs, experts, weights = ref.route(logits, 4, norm)
            want_e, want_w = self.hf_route(logits, 4, norm)
            self.assertTrue(torch.equal(experts, want_e), norm)
            self.assertTrue(torch.allclose(weights, want_w), norm)
            self.assertTrue(torch.allclose(probs.sum(-1), torch.ones(6, dtype=probs.dtype)))
        disabled = torch.zeros(16, dtype=torch.bool)
        disabled[want_e[:, 0]] = True  # every token's favourite is switched off
        probs, experts, _ = ref.route(logits, 4, True, disabled)
        self.assertFalse(disabled[experts].any())
        self.assertTrue(torch.allclose(probs, ref.softmax(logits)))  # probs still over all E

    def test_losses(self):
        N, E, k = 12, 8, 2
        logits = rnd(N, E)
        probs, experts, _ = ref.route(logits, k, False)
        # transformers load_balancing_loss_func without an attention mask
        expert_mask = torch.nn.functional.one_hot(experts, E)
        tokens_per_expert = torch.mean(expert_mask.double(), dim=0)
        router_prob_per_expert = torch.mean(probs, dim=0)
        want = torch.sum(tokens_per_expert * router_prob_per_expert.unsqueeze(0)) * E
        self.assertTrue(torch.allclose(ref.load_balancing_loss(probs, experts, E), want))
        uniform = torch.full((N, E), 1.0 / E, dtype=torch.float64)
        round_robin = (torch.arange(N * k) % E).reshape(N, k)
        self.assertAlmostEqual(ref.load_balancing_loss(uniform, round_robin, E).item(), k)
        want_z = torch.logsumexp(logits, -1).pow(2).mean()
        self.assertTrue(torch.allclose(ref.router_z_loss(logits), want_z))
        self.assertTrue(torch.isfinite(ref.router_z_loss(logits * 1000)))

    def moe_weights(self, C, I, E, shared_I):
        w = export_fixtures.moe_weights(G, C, I, E, shared_I, (), torch.zeros(C))
        return export_fixtures.f64(w)

    def test_moe_matches_hugging_face_block(self):
        T, C, I, E, k = 7, 6, 4, 5, 2
        w, h = self.moe_weights(C, I, E, 8), rnd(T, C)
        got = ref.moe_forward(h, w, ref.MoeConfig(E, k, False))
        # transformers Qwen2MoeSparseMoeBlock.forward, written out
        selected, routing_weights = self.hf_route(ref.linear(h, w["gate.weight"]), k, False)
        final = torch.zeros(T, C, dtype=h.dtype)
        expert_mask = torch.nn.functional.one_hot(selected, num_classes=E).permute(2, 1, 0)
        for e in range(E):
            idx, top_x = torch.where(expert_mask[e])
            y = ref.expert(h[top_x], *ref.expert_weights(w, e))
            final.index_add_(0, top_x, y * routing_weights[top_x, idx, None])
        shared = ref.expert(h, *ref.expert_weights(w, 0, "shared_expert."))
        final += torch.sigmoid(ref.linear(h, w["shared_expert_gate.weight"])) * shared
        self.assertTrue(torch.allclose(got.out, final))
        self.assertEqual(got.expert_count.sum().item(), T * k)
        self.assertEqual(got.dropped, 0)

    def test_capacity_is_first_come_first_served(self):
        experts = torch.tensor([[0, 1], [1, 0], [0, 2], [0, 1]])
        self.assertEqual(ref.expert_capacity(4, ref.MoeConfig(3, 2, False, 1.0)), 3)
        self.assertEqual(ref.expert_capacity(4, ref.MoeConfig(3, 2, False, 0.0)), 4)
        kept, count, dropped = ref.apply_capacity(experts, 3, 2)
        self.assertEqual(kept.tolist(), [[0, 1], [1, 0], [-1, 2], [-1, -1]])
        self.assertEqual((count.tolist(), dropped), ([2, 2, 1], 3))
        slot_major = [(t, j) for j in range(2) for t in range(4)]
        kept, _, _ = ref.apply_capacity(experts, 3, 2, slot_major)
        self.assertEqual(kept.tolist(), [[0, 1], [1, -1], [0, 2], [-1, -1]])

    def test_dropped_slots_contribute_nothing(self):
        T, C, I, E = 6, 4, 3, 2
        w, h = self.moe_weights(C, I, E, 0), rnd(T, C)
        r = ref.moe_forward(h, w, ref.MoeConfig(E, 1, False, 0.5))  # capacity 2 per expert
        self.assertLessEqual(r.expert_count.max().item(), 2)
        self.assertGreaterEqual(r.dropped, 2)
        self.assertEqual(r.dropped + r.expert_count.sum().item(), T)
        for t in range(T):
            if r.experts[t, 0] < 0:
                self.assertTrue(torch.equal(r.out[t], torch.zeros(C, dtype=h.dtype)))

    def test_switch_and_expert_choice(self):
        logits = rnd(5, 6)
        experts, weights = ref.switch_route(logits)
        self.assertTrue(torch.equal(experts, logits.argmax(-1)))
        self.assertTrue(torch.allclose(weights, torch.softmax(logits, -1).max(-1).values))
        probs = torch.softmax(rnd(8, 3), -1)
        tokens, gates = ref.expert_choice_route(probs, 4)
        for e in range(3):
            want = set(torch.topk(probs[:, e], 4).indices.tolist())
            self.assertEqual(set(tokens[e].tolist()), want)
            self.assertTrue(torch.equal(gates[e], probs[tokens[e], e]))

    def test_noisy_topk(self):
        x = torch.tensor([-200.0, -30.0, -1.0, 0.0, 1.0, 30.0, 200.0], dtype=torch.float64)
        self.assertTrue(torch.allclose(ref.softplus(x), torch.nn.functional.softplus(x)))
        logits, noise_logits, noise = rnd(6, 8), rnd(6, 8), rnd(6, 8)
        # noise 0 (evaluation): plain top-k, the weights renormalised over the k kept
        experts, weights = ref.noisy_topk_route(logits, noise_logits, torch.zeros(6, 8), 3)
        _, want_e, want_w = ref.route(logits, 3, True)
        self.assertTrue(torch.equal(experts, want_e))
        self.assertTrue(torch.allclose(weights, want_w))
        # with noise: the same on H, and KeepTopK's softmax equals route's renormalisation
        H = logits + noise * torch.nn.functional.softplus(noise_logits)
        experts, weights = ref.noisy_topk_route(logits, noise_logits, noise, 3)
        values, idx = torch.topk(H, 3)
        self.assertTrue(torch.equal(experts, idx))
        self.assertTrue(torch.allclose(weights, torch.softmax(values, -1)))
        self.assertTrue(torch.allclose(weights.sum(-1), torch.ones(6, dtype=weights.dtype)))

    def test_dense_is_topk_with_k_equal_e(self):
        T, C, I, E = 5, 4, 3, 4
        w = export_fixtures.f64(export_fixtures.moe_weights(G, C, I, E, 0, (), None))
        h = rnd(T, C)
        self.assertTrue(torch.allclose(ref.dense_moe(h, w),
                                       ref.moe_layer(h, w, ref.MoeConfig(E, E, False))))

    def test_soft_moe_matches_the_paper_einsums(self):
        # Puigcerver et al. 2023, Algorithm 1, with Phi (C, E, p) and no normalisation
        T, C, I, E, p = 6, 4, 3, 3, 2
        w = export_fixtures.f64(export_fixtures.moe_weights(G, C, I, E, 0, (), None))
        h, phi = rnd(T, C), rnd(E * p, C)
        Phi = phi.reshape(E, p, C).permute(2, 0, 1)                  # (C, E, p)
        logits = torch.einsum("md,dnp->mnp", h, Phi)                 # (T, E, p)
        D = torch.softmax(logits, dim=0)                             # over the tokens
        Cw = torch.softmax(logits.reshape(T, -1), dim=1).reshape(logits.shape)  # over slots
        Xs = torch.einsum("md,mnp->npd", h, D)                       # (E, p, C)
        Ys = torch.stack([ref.expert(Xs[e], *ref.expert_weights(w, e)) for e in range(E)])
        want = torch.einsum("npd,mnp->md", Ys, Cw)
        self.assertTrue(torch.allclose(ref.soft_moe(h, phi, w, p), want))
        # not causal: token 0's output moves when the last token changes
        h2 = h.clone()
        h2[-1] += 1.0
        self.assertFalse(torch.allclose(ref.soft_moe(h2, phi, w, p)[0], want[0]))


class MistakesTest(unittest.TestCase):
    def test_attention_mistakes(self):
        q, k, v = rnd(4, 4, 8), rnd(4, 2, 8), rnd(4, 2, 8)
        good = ref.causal_attention(q, k, v)
        bad = mistakes.mask_excludes_self(q, k, v)
        self.assertTrue(torch.isnan(bad[0]).all())
        self.assertTrue(torch.allclose(bad[1, :, :], v[0, ref.kv_head_of(4, 2)]))
        self.assertTrue(torch.allclose(mistakes.no_causal_mask(q, k, v)[-1], good[-1]))
        self.assertFalse(torch.allclose(mistakes.gqa_modulo(q, k, v), good))

    def test_router_mistakes(self):
        logits = rnd(5, 8)
        _, _, norm = ref.route(logits, 3, True)
        _, _, raw = ref.route(logits, 3, False)
        # a softmax over the chosen logits is exactly the renormalised probabilities
        self.assertTrue(torch.allclose(mistakes.softmax_over_topk(logits, 3, True), norm))
        self.assertFalse(torch.allclose(mistakes.softmax_over_topk(logits, 3, False), raw))
        self.assertTrue(torch.allclose(mistakes.no_renormalisation(logits, 3, True), raw))

    def test_moe_mistakes(self):
        T, C, I, E = 5, 4, 3, 4
        w = export_fixtures.f64(export_fixtures.moe_weights(G, C, I, E, 6, (), torch.zeros(C)))
        h, cfg = rnd(T, C), ref.MoeConfig(E, 2, True)
        good = ref.moe_layer(h, w, cfg)
        for m in (mistakes.weights_wrong_slot, mistakes.shared_gate_no_sigmoid):
            self.assertFalse(torch.allclose(m(h, w, cfg), good), m.__name__)
        for m in (mistakes.capacity_slot_major, mistakes.capacity_floor):  # no limit: harmless
            self.assertTrue(torch.allclose(m(h, w, cfg), good), m.__name__)

    def test_other_mistakes(self):
        x, w = rnd(2, 3), rnd(4, 3)
        self.assertTrue(torch.allclose(mistakes.w_transposed(x, w), x @ w.reshape(3, 4)))
        x = rnd(2, 8) * 1e-3
        self.assertFalse(torch.allclose(mistakes.eps_outside_sqrt(x, rnd(8), 1e-5),
                                        ref.rmsnorm(x, rnd(8), 1e-5)))
        self.assertTrue(torch.isnan(mistakes.softmax_overflow(torch.tensor([1000.0]))).all())

    def test_routing_variant_mistakes(self):
        logits, noise_logits, noise = rnd(5, 8), rnd(5, 8), rnd(5, 8)
        H = logits + noise * ref.softplus(noise_logits)
        # the softmax over all E, read at the k kept: lesson 06's weights without renormalising
        self.assertTrue(torch.allclose(
            mistakes.noisy_softmax_over_all(logits, noise_logits, noise, 3), ref.route(H, 3, False)[2]))
        T, C, I, E = 5, 4, 3, 4
        w = export_fixtures.f64(export_fixtures.moe_weights(G, C, I, E, 0, (), None))
        h = rnd(T, C)
        self.assertFalse(torch.allclose(mistakes.dense_logits_as_weights(h, w), ref.dense_moe(h, w)))
        phi = rnd(E * 2, C)
        self.assertFalse(torch.allclose(mistakes.soft_dispatch_over_slots(h, phi, w, 2),
                                        ref.soft_moe(h, phi, w, 2)))


class ExportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        cls.a, cls.b = os.path.join(cls.dir, "a"), os.path.join(cls.dir, "b")
        with redirect_stdout(io.StringIO()):
            export_fixtures.main(["--out", cls.a])
            export_fixtures.main(["--out", cls.b])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir)

    def load(self, lesson):
        return st.load(os.path.join(self.a, f"{lesson}.safetensors"))

    # the I32 tensors of docs/fixtures.md: indices and counts; lesson 13's bit patterns
    # and block bytes (its "q" is lesson 04's float query elsewhere)
    INT_TENSORS = {"idx", "experts", "disabled", "expert_count", "dropped", "tokens",
                   "send_counts", "send_displs", "recv_counts", "recv_displs"}
    INT_TENSORS_OF = {"13-quantization": {"x_bits", "b_bits", "q", "wq", "xq"}}

    def test_contract(self):
        for lesson in export_fixtures.LESSONS:
            tensors, meta = self.load(lesson)
            self.assertEqual(meta["lesson"], lesson)
            self.assertEqual(meta["seed"], str(export_fixtures.DEFAULT_SEED))
            self.assertTrue(meta["generator"].startswith("moekit export_fixtures.py, torch "))
            cases = meta["cases"].split()
            self.assertEqual({k.split("/")[0] for k in tensors}, set(cases))
            for key, t in tensors.items():
                name = key.split("/", 1)[1].split("~")[0]
                ints = self.INT_TENSORS | self.INT_TENSORS_OF.get(lesson, set())
                want = torch.int32 if name in ints else torch.float32
                self.assertEqual(t.dtype, want, key)
                if "~" in key:  # a variant has its expected output, same shape
                    self.assertEqual(t.shape, tensors[key.split("~")[0]].shape, key)
            for c in cases:
                self.assertIn(f"{c}/title", meta)

    def test_params_spelling(self):
        _, meta = self.load("02-rmsnorm")
        self.assertEqual(meta["tiny_values/eps"], "1e-05")
        self.assertEqual(meta["tiny_values/T"], "4")
        _, meta = self.load("03-rope")
        self.assertEqual(meta["qwen3/rope_theta"], "1000000.0")
        _, meta = self.load("04-attention")
        self.assertEqual(meta["softmax_big/y~nonfinite"], "softmax_overflow")
        self.assertEqual(meta["prefill_big/out~nonfinite"], "softmax_overflow")
        self.assertEqual(meta["selfattn_qwen3/qk_norm"], "1")
        _, meta = self.load("07-moe")
        self.assertEqual(meta["moe_capacity/capacity_factor"], "1.25")
        self.assertEqual(meta["moe_e8_k2/capacity_factor"], "0.0")
        _, meta = self.load("06-router")
        self.assertEqual(meta["route_big/probs~nonfinite"], "softmax_overflow")
        self.assertEqual(meta["loss_big/z_loss~nonfinite"], "logsumexp_overflow")
        _, meta = self.load("10-routing")
        self.assertEqual(meta["noisy_big/weights~nonfinite"], "softplus_overflow")
        self.assertNotIn("noisy_e8_k2/weights~nonfinite", meta)

    def test_routing_margins(self):
        # float32 in C must choose what float64 chose: a safe gap at the k-th place
        tensors, meta = self.load("06-router")
        for c in meta["cases"].split():
            if not c.startswith("route_") or c == "route_tie":
                continue
            k, logits = int(meta[f"{c}/num_experts_per_tok"]), tensors[f"{c}/logits"]
            if f"{c}/disabled" in tensors:
                logits = logits.masked_fill(tensors[f"{c}/disabled"].bool(), float("-inf"))
            gaps = [export_fixtures.margin(row, k) for row in logits.double()]
            scale = logits[torch.isfinite(logits)].abs().max().item()
            self.assertGreaterEqual(min(gaps), export_fixtures.ROUTER_MARGIN * min(1, scale), c)

    def test_moe_stats_are_consistent(self):
        tensors, meta = self.load("07-moe")
        seen = set()
        for c in meta["cases"].split():
            T, k = int(meta[f"{c}/T"]), int(meta[f"{c}/num_experts_per_tok"])
            experts, count = tensors[f"{c}/experts"], tensors[f"{c}/expert_count"]
            dropped = tensors[f"{c}/dropped"].item()
            self.assertEqual((experts == -1).sum().item(), dropped, c)
            self.assertEqual(count.sum().item(), T * k - dropped, c)
            for e in range(count.numel()):
                self.assertEqual((experts == e).sum().item(), count[e].item(), c)
            seen |= {"idle" if (count == 0).any() else "busy", "dropped" if dropped else "kept",
                     "norm" if meta[f"{c}/norm_topk_prob"] == "1" else "no norm",
                     "shared" if int(meta[f"{c}/shared_expert_intermediate_size"]) else "none"}
            seen.add((int(meta[f"{c}/num_experts"]), k))
        self.assertLessEqual({"idle", "dropped", "norm", "no norm", "shared", (8, 2), (64, 8),
                              (128, 8), (8, 1), (4, 4)}, seen)

    def test_private_seeds_build(self):
        # instructors regenerate with their own seed: every REQUIRED variant must still be
        # stored (build_case redraws a case whose draw hides one)
        out = os.path.join(self.dir, "private")
        with redirect_stdout(io.StringIO()):
            for seed in (2, 2024):
                export_fixtures.main(["--seed", str(seed), "--out", out, "--lesson", "06",
                                      "--lesson", "07", "--lesson", "10"])
        _, meta = st.load(os.path.join(out, "07-moe.safetensors"))
        self.assertEqual(meta["seed"], "2024")

    def test_fixtures_stay_small(self):
        # Lessons 01-08 and 10 stay under 2 MB together; lesson 09's fixture has its own
        # budget because its cases must be larger than the fast kernel's cache blocks.
        sizes = {f: os.path.getsize(os.path.join(self.a, f)) for f in os.listdir(self.a)}
        lesson09 = sizes.pop("09-fast-matmul.safetensors", 0)
        self.assertLess(sum(sizes.values()), 2_000_000)
        self.assertLess(lesson09, 2_500_000)

    def test_regenerating_reproduces(self):
        with redirect_stdout(io.StringIO()) as out:
            self.assertEqual(compare_fixtures.main([self.a, self.b]), 0)
        self.assertIn("OK", out.getvalue())

    def test_compare_catches_a_change(self):
        c = os.path.join(self.dir, "c")
        shutil.copytree(self.a, c)
        path = os.path.join(c, "01-matmul.safetensors")
        tensors, meta = st.load(path)
        tensors["odd/y"][0, 0] += 1e-5
        st.save(path, tensors, meta)
        with redirect_stdout(io.StringIO()) as out:
            self.assertEqual(compare_fixtures.main([self.a, c]), 1)
        self.assertIn("odd/y", out.getvalue())


if __name__ == "__main__":
    unittest.main()
