"""Tests of gguf_writer.py and synth_checkpoint.py: a tiny checkpoint, converted and read back.

    /usr/bin/python3 -m unittest discover -s harness/pytorch -p 'test_*.py'

The files are read back with gguf_writer.read_gguf, which shares no code with the writing
path; llama.cpp itself loading them (and its quantizer's Q8_0 blocks) is `make bench`'s part.
"""

import json
import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_writer as gw  # noqa: E402
import synth_checkpoint as sc  # noqa: E402

TINY = dict(hidden=64, layers=2, experts=4, top_k=2, moe_intermediate=32, heads=4, kv_heads=2,
            head_dim=16, vocab=300)


class GgufWriterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.model = os.path.join(cls.tmp.name, "m")
        sc.write(cls.model, TINY, "bf16", 7)
        _, cls.st = gw.read_checkpoint(cls.model)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def convert(self, t):
        out = os.path.join(self.tmp.name, f"m-{t}.gguf")
        gw.convert(self.model, out, t)
        return gw.read_gguf(out)

    def hf(self, name):
        return gw.as_float32(self.st[name])

    def test_metadata(self):
        kv, _ = self.convert("f32")
        self.assertEqual(kv["general.architecture"], "qwen3moe")
        for key, want in (("embedding_length", 64), ("block_count", 2), ("expert_count", 4),
                          ("expert_used_count", 2), ("expert_feed_forward_length", 32),
                          ("attention.head_count", 4), ("attention.head_count_kv", 2),
                          ("attention.key_length", 16), ("rope.dimension_count", 16)):
            self.assertEqual(kv["qwen3moe." + key], want, key)
        self.assertAlmostEqual(kv["qwen3moe.rope.freq_base"], 1e6)
        self.assertEqual(len(kv["tokenizer.ggml.tokens"]), 300)
        self.assertEqual(kv["tokenizer.ggml.tokens"][ord("A")], "A")
        self.assertEqual(kv["tokenizer.ggml.tokens"][ord(" ")], "\u0120")  # GPT-2's space

    def test_f32_tensors_are_the_checkpoint(self):
        _, t = self.convert("f32")
        dims, typ, raw = t["token_embd.weight"]
        self.assertEqual((dims, typ), ([64, 300], gw.GGML_F32))  # innermost first
        np.testing.assert_array_equal(np.frombuffer(raw, "<f4").reshape(300, 64),
                                      self.hf("model.embed_tokens.weight"))
        dims, typ, raw = t["blk.1.ffn_down_exps.weight"]
        self.assertEqual(dims, [32, 64, 4])
        got = np.frombuffer(raw, "<f4").reshape(4, 64, 32)
        np.testing.assert_array_equal(got[3], self.hf("model.layers.1.mlp.experts.3.down_proj.weight"))
        self.assertEqual(t["blk.0.attn_q_norm.weight"][0], [16])
        self.assertIn("output.weight", t)
        self.assertEqual(len(t), 3 + 2 * 12)

    def test_bf16_keeps_the_bits_and_vectors_stay_f32(self):
        _, t = self.convert("bf16")
        dims, typ, raw = t["blk.0.ffn_gate_exps.weight"]
        self.assertEqual((dims, typ), ([64, 32, 4], gw.GGML_BF16))
        got = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32).reshape(4, 32, 64)
        np.testing.assert_array_equal(got[2], self.hf("model.layers.0.mlp.experts.2.gate_proj.weight"))
        self.assertEqual(t["blk.0.ffn_norm.weight"][1], gw.GGML_F32)
        self.assertEqual(t["blk.0.ffn_gate_inp.weight"][1], gw.GGML_F32)

    def test_q8_0_blocks(self):
        _, t = self.convert("q8_0")
        dims, typ, raw = t["blk.0.attn_q.weight"]
        self.assertEqual((dims, typ), ([64, 64], gw.GGML_Q8_0))
        blocks = np.frombuffer(raw, dtype=[("d", "<f2"), ("q", "i1", (32,))])
        w = self.hf("model.layers.0.self_attn.q_proj.weight").reshape(-1, 32)
        self.assertEqual(len(blocks), len(w))
        self.assertEqual(int(np.abs(blocks["q"]).max(axis=1).min()), 127)  # max|w| -> 127
        back = blocks["q"].astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
        d = np.abs(w).max(axis=1, keepdims=True) / 127  # the scale before its f16 rounding
        d16 = blocks["d"].astype(np.float32)[:, None]
        bound = 0.5 * d + 127 * np.abs(d16 - d) + 1e-7  # rounding to int8, then the f16 scale
        self.assertTrue(np.all(np.abs(back - w) <= bound))

    def test_refuses_what_qwen3moe_cannot_run(self):
        for change, words in (({"mlp_only_layers": [0]}, "dense layers"),
                              ({"norm_topk_prob": False}, "norm_topk_prob"),
                              ({"model_type": "qwen2_moe"}, "only qwen3_moe")):
            d = os.path.join(self.tmp.name, "bad")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(self.model, "config.json")) as f:
                cfg = json.load(f)
            cfg.update(change)
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(cfg, f)
            os.replace(os.path.join(self.model, "model.safetensors"),
                       os.path.join(d, "model.safetensors"))
            try:
                with self.assertRaisesRegex(gw.ConvertError, words):
                    gw.convert(d, os.path.join(self.tmp.name, "bad.gguf"), "f32")
            finally:
                os.replace(os.path.join(d, "model.safetensors"),
                           os.path.join(self.model, "model.safetensors"))

    def test_missing_tensor_is_named(self):
        d = os.path.join(self.tmp.name, "missing")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(self.model, "config.json")) as f:
            cfg = json.load(f)
        cfg["num_hidden_layers"] = 3
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f)
        os.symlink(os.path.join(self.model, "model.safetensors"), os.path.join(d, "model.safetensors"))
        with self.assertRaisesRegex(gw.ConvertError, "model.layers.2.input_layernorm.weight is missing"):
            gw.convert(d, os.path.join(self.tmp.name, "missing.gguf"), "f32")


if __name__ == "__main__":
    unittest.main()
