"""The PyTorch side of `make bench`: the reference model (harness/pytorch/model.py) on the
same weights as the C model, prefill and decode tokens/s.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 harness/bench/torch_bench.py \\
        --model data/model --threads 1 --prompt 64 --decode 128 --reps 5

Prints one `name value` line per figure (the C bench reads them):
  prefill_tokens_per_s   model(ids) on `--prompt` tokens at positions 0.., logits for all
  decode_tokens_per_s    then `--decode` tokens one at a time with a KV cache
  nocache_tokens_per_s   model.generate's way (no KV cache: the whole window every step)
  torch_threads, torch_version

Decode: model.py has no KV cache (its generate() recomputes the window, fine for training
demos). A C model with a cache against that would win by an unfair factor, so decode here
is written with a cache, from model.py's own modules (the same q/k/v/o_proj, q_norm/k_norm,
rope tables, SparseMoeBlock, norms): the work per token is what the C model does. It is
checked against the full forward pass before it is timed.

Threads: Debian's torch does its matmuls in OpenBLAS, whose thread count is fixed by
OPENBLAS_NUM_THREADS when the library loads; the caller sets it (and OMP_NUM_THREADS) to
--threads, and torch.set_num_threads(--threads) is set here for ATen's own loops.
"""

import argparse
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pytorch"))
import model as mdl  # noqa: E402

TEXT = (b"The secret of a happy life is to find out what you love, and then to do it "
        b"with all your heart. % Q: How many programmers does it take to change a light "
        b"bulb? A: None, that is a hardware problem. % A journey of a thousand miles "
        b"begins with a single step, and so does a journey of one. % ") * 8


class Decoder:
    """Decode with a KV cache over model.py's modules (batch 1)."""

    def __init__(self, model: mdl.MoeForCausalLM, max_seq: int):
        cfg = model.config
        self.m = model
        self.H, self.KV, self.D = (cfg["num_attention_heads"], cfg["num_key_value_heads"],
                                   cfg["head_dim"])
        L = cfg["num_hidden_layers"]
        self.k = torch.zeros(L, self.KV, max_seq, self.D)
        self.v = torch.zeros(L, self.KV, max_seq, self.D)
        self.head = (model.model.embed_tokens.weight if cfg["tie_word_embeddings"]
                     else model.lm_head.weight)
        self.scale = 1.0 / math.sqrt(self.D)

    def step(self, token: int, pos: int) -> torch.Tensor:
        """One token at position pos -> logits (V). Fills the cache at pos."""
        m, H, KV, D = self.m, self.H, self.KV, self.D
        x = m.model.embed_tokens.weight[token].view(1, 1, -1)
        cos, sin = m.rope_cos[pos:pos + 1], m.rope_sin[pos:pos + 1]
        for l, layer in enumerate(m.model.layers):
            a = layer.self_attn
            h = layer.input_layernorm(x)
            q = a.q_proj(h).view(1, 1, H, D)
            k = a.k_proj(h).view(1, 1, KV, D)
            v = a.v_proj(h).view(1, 1, KV, D)
            if hasattr(a, "q_norm"):
                q, k = a.q_norm(q), a.k_norm(k)
            q = mdl.apply_rope(q.transpose(1, 2), cos, sin)  # (1, H, 1, D)
            k = mdl.apply_rope(k.transpose(1, 2), cos, sin)  # (1, KV, 1, D)
            self.k[l, :, pos] = k[0, :, 0]
            self.v[l, :, pos] = v[0, 0]
            keys, values = self.k[l, :, :pos + 1], self.v[l, :, :pos + 1]  # (KV, n, D)
            qg = q.view(KV, H // KV, D)  # query head h reads kv head h // (H / KV)
            att = torch.softmax(qg @ keys.transpose(1, 2) * self.scale, dim=-1)  # (KV, g, n)
            o = (att @ values).reshape(1, 1, H * D)
            x = x + a.o_proj(o)
            h = layer.post_attention_layernorm(x)
            x = x + (layer.mlp(h)[0] if layer.sparse else layer.mlp(h))
        return F.linear(m.model.norm(x), self.head)[0, 0]


def timed(fn, reps: int) -> float:
    """Median seconds of fn() over reps runs, after one warm-up."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-nocache", action="store_true", help="skip the no-KV-cache figure")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    model = mdl.load_hf(a.model)
    P, N = a.prompt, a.decode
    ids = list(TEXT[:P + N])
    prompt = torch.tensor([ids[:P]])

    # the cached decode must be the model: its last logits equal the full forward's
    dec = Decoder(model, P + N)
    for pos in range(P + 4):
        last = dec.step(ids[pos], pos)
    full, _ = model(torch.tensor([ids[:P + 4]]))
    err = (full[0, -1] - last).abs().max().item()
    if err > 1e-3:
        print(f"torch_bench: the cached decode differs from model.forward by {err}",
              file=sys.stderr)
        return 1

    prefill = timed(lambda: model(prompt), a.reps)

    def decode():
        d = Decoder(model, P + N)
        for pos in range(P):  # the prompt through the cache (not timed below)
            d.step(ids[pos], pos)
        t0 = time.perf_counter()
        for pos in range(P, P + N):
            d.step(ids[pos], pos)
        return time.perf_counter() - t0

    decode()
    per_step = statistics.median(decode() for _ in range(max(1, a.reps // 2))) / N
    print(f"torch_version {torch.__version__}")
    print(f"torch_threads {torch.get_num_threads()}")
    print(f"prefill_tokens_per_s {P / prefill:.6g}")
    print(f"decode_tokens_per_s {1.0 / per_step:.6g}")
    if not a.no_nocache:
        window = ids[:P + 8]

        def nocache():  # model.generate: the whole window each step, 8 steps
            for n in range(P, P + 8):
                model(torch.tensor([window[:n + 1]]))

        print(f"nocache_tokens_per_s {8 / timed(nocache, 1):.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
