"""Writes the golden fixtures of the lessons: DIR/NN-name.safetensors (see docs/fixtures.md).

    /usr/bin/python3 harness/pytorch/export_fixtures.py --seed 1234 --out data/fixtures
    /usr/bin/python3 harness/pytorch/export_fixtures.py --out /tmp/fx --lesson 03

Precision: inputs are drawn in float32 (they are what the C code reads); every output,
expected or mistaken, is computed by reference.py / mistakes.py in float64 from those exact
float32 inputs and rounded to float32 once. So a fixture is the correctly rounded answer,
and regenerating it on another CPU, BLAS or thread count gives the same bits unless a
~1e-16 float64 difference lands on a float32 rounding tie (CI compares to 1e-6 absolute,
which for outputs ~1e3 means bit for bit; float32 arithmetic would not get there). The one
float32 step is the RoPE cos/sin table, rounded to float32 by reference.rope_cos_sin.

Randomness: each case draws from its own torch.Generator seeded from (seed, lesson, case
id), so lessons and cases are independent: adding a case changes no other.
"""

import argparse
import hashlib
import math
import os
import sys
from dataclasses import dataclass, field

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mistakes  # noqa: E402
import reference as ref  # noqa: E402
import safetensors_io  # noqa: E402

DEFAULT_SEED = 1234
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO_ROOT, "data", "fixtures")
GENERATOR = f"moekit export_fixtures.py, torch {torch.__version__}"

# A variant is stored only where it tells the mistake apart: its max abs difference from
# the expected output (over its finite elements) must be at least MIN_GAP, ten times the
# 1e-3 that the C tests' tolerances stay well below. A variant within SAME_TOL (relative to
# max |expected|) is the mistake being harmless in that case (GQA mapping with KV = 1,
# anything at T = 1); one in between would be a diagnosis the harness cannot make
# reliably. Both are skipped (--verbose says so). What random data may not skip is checked
# by build_lesson: every mistake of a lesson is stored by some case, and each case in
# REQUIRED stores the variants (and `~nonfinite` marks) it exists for; seed sweeps show
# wide margins for these.
MIN_GAP = 1e-2
SAME_TOL = 1e-3
REQUIRED = {
    ("02-rmsnorm", "tiny_values"): ["y~eps_outside_sqrt", "y~no_weight"],
    ("04-attention", "prefill_gqa"): ["out~no_scale", "out~gqa_modulo",
                                      "out~mask_excludes_self", "out~no_causal_mask"],
    ("04-attention", "prefill_long"): ["out~gqa_modulo"],
    ("04-attention", "softmax_big"): ["y~nonfinite"],
    ("04-attention", "prefill_big"): ["out~nonfinite"],
    ("04-attention", "selfattn_qwen3"): ["out~qk_norm_missing", "out~qk_norm_after_rope",
                                        "out~sees_whole_call"],
    ("04-attention", "selfattn_qwen2"): ["out~sees_whole_call"],
    ("04-attention", "selfattn_qwen3_gqa4"): ["out~qk_norm_missing", "out~qk_norm_after_rope"],
    ("04-attention", "selfattn_qwen3_mqa"): ["out~qk_norm_missing", "out~qk_norm_after_rope"],
    ("04-attention", "selfattn_qwen3_long"): ["out~qk_norm_missing", "out~qk_norm_after_rope"],
    ("05-expert", "silu_basic"): ["y~silu_is_sigmoid"],
    ("05-expert", "expert_moe"): ["out~silu_up_swapped", "out~silu_is_sigmoid"],
    ("06-router", "route_e8_k2"): ["weights~softmax_over_topk"],
    ("06-router", "route_e8_k2_norm"): ["weights~no_renormalisation"],
    ("06-router", "route_big"): ["probs~nonfinite"],
    ("06-router", "loss_e8_k2"): ["lb_loss~lb_loss_per_assignment"],
    ("06-router", "loss_big"): ["z_loss~nonfinite"],
    ("07-moe", "moe_e8_k2"): ["out~weights_wrong_slot"],
    ("07-moe", "moe_capacity"): ["out~capacity_slot_major", "out~capacity_floor"],
    ("07-moe", "moe_shared"): ["out~shared_gate_no_sigmoid"],
    ("07-moe", "moe_capacity_shared"): ["out~shared_gate_no_sigmoid"],
    ("10-routing", "switch_e8"): ["weights~switch_weight_one"],
    ("10-routing", "switch_big"): ["weights~nonfinite"],
    ("10-routing", "ecmoe_basic"): ["out~ec_softmax_over_tokens"],
    ("10-routing", "noisy_e8_k2"): ["weights~noisy_softmax_over_all"],
    ("10-routing", "noisy_eval"): ["weights~noisy_softmax_over_all"],
    ("10-routing", "noisy_big"): ["weights~nonfinite"],
    ("10-routing", "noisymoe_e8_k2"): ["out~noisy_softmax_over_all"],
    ("10-routing", "dense_basic"): ["out~dense_logits_as_weights"],
    ("10-routing", "soft_basic"): ["out~soft_dispatch_over_slots"],
    ("10-routing", "soft_p2"): ["out~soft_dispatch_over_slots"],
    ("12-expert-parallel", "ep_p2"): ["out~ep_arrival_order", "out~ep_weights_twice",
                                      "send_displs~ep_counts_as_displs"],
    ("12-expert-parallel", "ep_p3"): ["out~ep_arrival_order"],
    ("12-expert-parallel", "ep_capacity_p2"): ["out~ep_capacity_local_T"],
    ("13-quantization", "bf16_mixed"): ["bf16~bf16_truncate"],
    ("13-quantization", "q8_basic"): ["blocks~q8_0_truncate", "blocks~q8_0_scale_128"],
    ("13-quantization", "q8_blocks"): ["blocks~q8_0_truncate", "blocks~q8_0_scale_128"],
    ("13-quantization", "q4_basic"): ["blocks~q4_0_nibbles_interleaved", "blocks~q4_0_no_offset"],
    ("13-quantization", "q4_blocks"): ["blocks~q4_0_nibbles_interleaved", "blocks~q4_0_no_offset"],
}

# Routing fixtures keep every token's k-th and (k+1)-th router logit at least this far
# apart (a row that comes out closer is drawn again), so that float32 in C and float64
# here choose the same experts. The one exception is `route_tie`, built with an exact tie.
ROUTER_MARGIN = 0.05


@dataclass
class Case:
    """One test case: its float32 inputs, expected output and known-wrong variants."""
    id: str
    title: str
    params: dict  # name -> int | float, written as metadata `<id>/<name>`
    tensors: dict = field(default_factory=dict)  # name -> float32 tensor, inputs + outputs
    nonfinite: dict = field(default_factory=dict)  # output name -> mistake name
    log: list = field(default_factory=list)  # what happened to each variant (--verbose)


# ------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------


def case_generator(seed: int, lesson: str, case_id: str) -> torch.Generator:
    """A generator seeded from (seed, lesson, case id) through SHA-256 (63 bits)."""
    digest = hashlib.sha256(f"moekit/{seed}/{lesson}/{case_id}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def short(v: float) -> str:
    """A number for titles: 10000, 0.001, 1e6, 1e-6."""
    return f"{v:g}".replace("e+0", "e").replace("e-0", "e-")


def randn(g: torch.Generator, *shape, scale: float = 1.0) -> torch.Tensor:
    """Standard normal float32 tensor of the given shape, times scale."""
    return torch.randn(*shape, generator=g, dtype=torch.float32) * scale


def f64(x):
    """float64 copy of a tensor, or of every tensor in a dict."""
    return {k: v.double() for k, v in x.items()} if isinstance(x, dict) else x.double()


def variant_gap(expected: torch.Tensor, variant: torch.Tensor) -> float | None:
    """Max abs difference over the variant's finite elements (NaN = "no defined value",
    ignored by the C harness too); None when it has no finite element at all."""
    finite = torch.isfinite(variant)
    if not finite.any():
        return None
    return (variant - expected)[finite].abs().max().item()


def add_output(case: Case, name: str, expected: torch.Tensor, variants: dict) -> None:
    """Stores `name` and every variant `name~mistake` that is distinguishable from it.

    expected, variants {mistake: tensor}: float64, rounded to float32 here.
    """
    assert torch.isfinite(expected).all(), f"{case.id}/{name}: expected output not finite"
    case.tensors[name] = expected.float()
    scale = max(1.0, expected.abs().max().item())
    for mistake, variant in variants.items():
        gap = variant_gap(expected, variant)
        if gap is None or gap <= SAME_TOL * scale:
            case.log.append(f"{name}~{mistake}: skipped, "
                            + ("all NaN" if gap is None else f"same as expected ({gap:.2g})"))
            continue
        if gap < MIN_GAP:
            case.log.append(f"{name}~{mistake}: skipped, too close to expected ({gap:.2g})")
            continue
        case.log.append(f"{name}~{mistake}: stored, max abs diff {gap:.3g}")
        case.tensors[f"{name}~{mistake}"] = variant.float()


def with_mistakes(fn, mistake_fns, *args) -> tuple[torch.Tensor, dict]:
    """-> (fn(*args), {mistake name: m(*args)}): mistakes share their reference's signature."""
    return fn(*args), {m.__name__: m(*args) for m in mistake_fns}


def mark_overflow(case: Case, output: str, naive_out: torch.Tensor) -> None:
    """Marks `output~nonfinite = softmax_overflow` where the same computation in float32
    with a naive softmax (naive_out) is non-finite: then that is the likely cause."""
    if not torch.isfinite(naive_out).all():
        case.nonfinite[output] = mistakes.softmax_overflow.__name__


# ------------------------------------------------------------------------------------
# Lesson 01: matmul
# ------------------------------------------------------------------------------------


def matmul_case(g, cid, T, in_f, out_f, x_scale=1.0) -> Case:
    """x (T, in) ~ N(0, x_scale^2), w (out, in) ~ N(0, 1/in) so y ~ x_scale."""
    x = randn(g, T, in_f, scale=x_scale)
    w = randn(g, out_f, in_f, scale=1 / math.sqrt(in_f))
    title = f"T={T} in={in_f} out={out_f}" + (f" |x|~{short(x_scale)}" if x_scale != 1 else "")
    case = Case(cid, title, {"T": T, "in_features": in_f, "out_features": out_f},
                {"x": x, "w": w})
    add_output(case, "y", *with_mistakes(ref.linear, mistakes.BY_LESSON["01-matmul"],
                                         f64(x), f64(w)))
    return case


LESSON_01 = [  # (id, T, in_features, out_features, |x|)
    ("tiny", 1, 16, 8, 1.0),
    ("odd", 5, 37, 19, 1.0),
    ("square", 7, 64, 64, 1.0),
    ("wide", 17, 256, 24, 1.0),
    ("big_values", 3, 50, 31, 1e3),
]


# ------------------------------------------------------------------------------------
# Lesson 02: RMSNorm
# ------------------------------------------------------------------------------------


def rmsnorm_case(g, cid, T, n, eps=1e-6, x_scale=1.0) -> Case:
    """x (T, n) ~ N(0, x_scale^2), weight (n) ~ 1 + 0.1 N(0, 1)."""
    x = randn(g, T, n, scale=x_scale)
    weight = 1 + randn(g, n, scale=0.1)
    title = f"T={T} n={n} eps={short(eps)}" + (f" |x|~{short(x_scale)}" if x_scale != 1 else "")
    case = Case(cid, title, {"T": T, "n": n, "eps": eps}, {"x": x, "weight": weight})
    add_output(case, "y", *with_mistakes(ref.rmsnorm, mistakes.BY_LESSON["02-rmsnorm"],
                                         f64(x), f64(weight), eps))
    return case


LESSON_02 = [  # (id, T, n, eps, |x|): tiny_values is where eps inside/outside the sqrt shows
    ("basic", 4, 64, 1e-6, 1.0),
    ("odd", 3, 37, 1e-6, 1.0),
    ("one", 1, 1, 1e-6, 1.0),
    ("tiny_values", 4, 48, 1e-5, 1e-3),
    ("big_values", 2, 96, 1e-6, 1e3),
]


# ------------------------------------------------------------------------------------
# Lesson 03: RoPE
# ------------------------------------------------------------------------------------


def rope_case(g, cid, T, n_heads, head_dim, pos0, theta) -> Case:
    """x (T, n_heads, head_dim) ~ N(0, 1); token t at position pos0 + t."""
    x = randn(g, T, n_heads, head_dim)
    title = (f"T={T} heads={n_heads} head_dim={head_dim} pos={pos0}..{pos0 + T - 1} "
             f"theta={short(theta)}")
    params = {"T": T, "n_heads": n_heads, "head_dim": head_dim, "pos0": pos0,
              "rope_theta": theta}
    case = Case(cid, title, params, {"x": x})
    add_output(case, "y", *with_mistakes(ref.rope, mistakes.BY_LESSON["03-rope"],
                                         f64(x), pos0, theta))
    return case


LESSON_03 = [  # (id, T, n_heads, head_dim, pos0, rope_theta)
    ("basic", 4, 2, 64, 0, 10000.0),
    ("qwen3", 3, 4, 128, 17, 1e6),
    ("odd_dim", 5, 3, 6, 2, 10000.0),  # 3 pairs: an odd number of frequencies
    ("long", 160, 1, 16, 0, 10000.0),
    ("far", 1, 2, 64, 4095, 1e6),
    # past 32k, Qwen3's theta: an angle pos * f_i kept in float is off by ~2e-3 here
    ("far_32k", 3, 2, 128, 40000, 1e6),
    ("far_128k", 2, 1, 64, 131070, 1e6),
]


# ------------------------------------------------------------------------------------
# Lesson 04: attention
# ------------------------------------------------------------------------------------

PREFILL_MISTAKES = [mistakes.no_scale, mistakes.gqa_modulo, mistakes.mask_excludes_self,
                    mistakes.no_causal_mask]
QK_NORM_MISTAKES = [mistakes.qk_norm_missing, mistakes.qk_norm_after_rope]


def softmax_case(g, cid, rows, n, x_scale) -> Case:
    """x (rows, n) ~ N(0, x_scale^2); x_scale ~1e3 makes a naive float32 exp() overflow."""
    x = randn(g, rows, n, scale=x_scale)
    title = f"rows={rows} n={n} |x|~{short(x_scale)}"
    case = Case(cid, title, {"rows": rows, "n": n}, {"x": x})
    add_output(case, "y", ref.softmax(f64(x)), {})
    mark_overflow(case, "y", mistakes.softmax_overflow(x))
    return case


def prefill_case(g, cid, T, H, KV, D, qk_scale=1.0) -> Case:
    """q (T, H, D), k and v (T, KV, D) ~ N(0, 1), q and k times qk_scale.

    Raw scores q.k grow like qk_scale^2 sqrt(D): qk_scale 16 at D=16 gives scaled scores of
    a few hundred, past float32's exp() limit of ~88.7.
    """
    q, k = randn(g, T, H, D, scale=qk_scale), randn(g, T, KV, D, scale=qk_scale)
    v = randn(g, T, KV, D)
    title = f"T={T} H={H} KV={KV} head_dim={D}" + (f" |q|,|k|~{short(qk_scale)}"
                                                   if qk_scale != 1 else "")
    params = {"T": T, "num_attention_heads": H, "num_key_value_heads": KV, "head_dim": D}
    case = Case(cid, title, params, {"q": q, "k": k, "v": v})
    add_output(case, "out", *with_mistakes(ref.causal_attention, PREFILL_MISTAKES,
                                           f64(q), f64(k), f64(v)))
    naive = ref.attention(q, k, v, ref.causal_mask(T), softmax=mistakes.softmax_overflow)
    mark_overflow(case, "out", naive)
    return case


def selfattn_weights(g, cfg: ref.AttnConfig, qk_norm: bool, bias: bool) -> dict:
    """Random layer weights: projections ~ N(0, 1/in), biases ~ 0.5 N(0, 1), so every
    intermediate stays O(1); q/k norm weights ~ 1 + 0.3 N(0, 1), spread enough that
    normalising after RoPE (which mixes elements with different weights) shows."""
    hidden, D = cfg.hidden_size, cfg.head_dim
    dims = {"q": cfg.num_attention_heads * D, "k": cfg.num_key_value_heads * D,
            "v": cfg.num_key_value_heads * D}
    w = {f"{p}_proj.weight": randn(g, n, hidden, scale=1 / math.sqrt(hidden))
         for p, n in dims.items()}
    w["o_proj.weight"] = randn(g, hidden, dims["q"], scale=1 / math.sqrt(dims["q"]))
    if bias:
        w.update({f"{p}_proj.bias": randn(g, n, scale=0.5) for p, n in dims.items()})
    if qk_norm:
        w.update({f"{p}_norm.weight": 1 + randn(g, D, scale=0.3) for p in ("q", "k")})
    return w


def selfattn_case(g, cid, T, hidden, H, KV, D, qk_norm, bias, eps, theta) -> Case:
    """h (T, hidden) ~ N(0, 1) (an already normalised input) through one attention layer."""
    cfg = ref.AttnConfig(hidden, H, KV, D, eps, theta)
    w = selfattn_weights(g, cfg, qk_norm, bias)
    h = randn(g, T, hidden)
    kind = "q/k norm" if qk_norm else "q/k/v bias" if bias else "plain"
    title = f"T={T} hidden={hidden} H={H} KV={KV} head_dim={D} {kind} theta={short(theta)}"
    params = {"T": T, "hidden_size": hidden, "num_attention_heads": H,
              "num_key_value_heads": KV, "head_dim": D, "rms_norm_eps": eps,
              "rope_theta": theta, "qk_norm": int(qk_norm), "bias": int(bias)}
    case = Case(cid, title, params, {"h": h, **w})
    mistake_fns = (QK_NORM_MISTAKES if qk_norm else []) + [mistakes.sees_whole_call]
    add_output(case, "out", *with_mistakes(ref.self_attention, mistake_fns,
                                           f64(h), f64(w), cfg))
    return case


LESSON_04 = [  # (id, builder, args): the id prefix picks the C test (softmax/prefill/selfattn)
    ("softmax_basic", softmax_case, (4, 10, 2.0)),
    ("softmax_one", softmax_case, (1, 1, 1.0)),
    ("softmax_big", softmax_case, (3, 33, 1e3)),
    ("prefill_mha", prefill_case, (6, 4, 4, 16)),
    ("prefill_gqa", prefill_case, (9, 8, 2, 12)),
    ("prefill_t1", prefill_case, (1, 2, 1, 8)),
    ("prefill_long", prefill_case, (128, 4, 2, 6)),
    ("prefill_big", prefill_case, (5, 2, 1, 16, 16.0)),
    # (T, hidden, H, KV, D, qk_norm, bias, eps, theta); Qwen3's H*D need not equal hidden
    ("selfattn_qwen3", selfattn_case, (7, 48, 4, 2, 16, True, False, 1e-6, 1e6)),
    ("selfattn_qwen2", selfattn_case, (5, 40, 4, 4, 10, False, True, 1e-6, 10000.0)),
    ("selfattn_t1", selfattn_case, (1, 32, 4, 2, 8, True, False, 1e-6, 1e6)),
    # QK-norm with T > 1 and grouped kv heads, in several shapes (not one case deciding it)
    ("selfattn_qwen3_gqa4", selfattn_case, (6, 32, 8, 2, 8, True, False, 1e-6, 1e6)),
    ("selfattn_qwen3_mqa", selfattn_case, (5, 24, 4, 1, 12, True, False, 1e-6, 10000.0)),
    ("selfattn_qwen3_long", selfattn_case, (12, 40, 6, 3, 16, True, False, 1e-5, 1e6)),
]


# ------------------------------------------------------------------------------------
# Integer outputs and routing margins (lessons 06, 07, 10)
# ------------------------------------------------------------------------------------


def add_ints(case: Case, name: str, values) -> None:
    """Stores an integer output (expert or token indices, counts) as I32."""
    case.tensors[name] = torch.as_tensor(values).to(torch.int32).reshape(-1) \
        if torch.as_tensor(values).dim() == 0 else torch.as_tensor(values).to(torch.int32)


def add_scalar(case: Case, name: str, expected: torch.Tensor, variants: dict) -> None:
    """A 0-dim output stored as a 1-element tensor (the C tests compare it like any other)."""
    add_output(case, name, expected.reshape(1),
               {m: v.reshape(1) for m, v in variants.items()})


def margin(row: torch.Tensor, k: int) -> float:
    """Gap between the k-th and (k+1)-th largest finite values of row (inf when k covers
    every finite value: nothing can be chosen instead)."""
    v = row[torch.isfinite(row)].sort(descending=True).values
    return float("inf") if k >= v.numel() else (v[k - 1] - v[k]).item()


def draw_rows(g, n_rows: int, draw, score, k: int, min_gap: float = ROUTER_MARGIN):
    """Rows of draw() (a float32 tensor per call), each drawn again until score(row) keeps
    a gap of min_gap between its k-th and (k+1)-th largest entries."""
    rows = []
    for _ in range(n_rows):
        for _ in range(1000):
            row = draw()
            if margin(score(row), k) >= min_gap:
                break
        else:
            raise RuntimeError("could not draw a row with a safe routing margin")
        rows.append(row)
    return torch.stack(rows)


# ------------------------------------------------------------------------------------
# Lesson 05: the SwiGLU expert
# ------------------------------------------------------------------------------------


def silu_case(g, cid, n, scale, uniform=False) -> Case:
    """x (n) ~ N(0, scale^2), or uniform in [-scale, scale] (large |x|: exp(-x) overflows
    for x < -88, and silu must still come out finite)."""
    x = (torch.rand(n, generator=g) * 2 - 1) * scale if uniform else randn(g, n, scale=scale)
    title = f"n={n} " + (f"x in [-{short(scale)}, {short(scale)}]" if uniform
                         else f"|x|~{short(scale)}")
    case = Case(cid, title, {"n": n}, {"x": x})
    add_output(case, "y", ref.silu(f64(x)),
               {mistakes.silu_is_sigmoid.__name__: mistakes.silu_is_sigmoid(f64(x))})
    return case


def swiglu_weights(g, C, I, prefix=""):
    """gate_proj, up_proj (I, C) ~ N(0, 1/C), down_proj (C, I) ~ N(0, 1/I): outputs O(1)."""
    return {f"{prefix}gate_proj.weight": randn(g, I, C, scale=1 / math.sqrt(C)),
            f"{prefix}up_proj.weight": randn(g, I, C, scale=1 / math.sqrt(C)),
            f"{prefix}down_proj.weight": randn(g, C, I, scale=1 / math.sqrt(I))}


def expert_case(g, cid, T, C, I) -> Case:
    """x (T, C) ~ N(0, 1) through one SwiGLU expert of intermediate size I."""
    w = swiglu_weights(g, C, I)
    x = randn(g, T, C)
    title = f"T={T} hidden={C} intermediate={I}"
    params = {"T": T, "hidden_size": C, "intermediate_size": I}
    case = Case(cid, title, params, {"x": x, **w})
    args = (f64(x), *(f64(w[f"{p}_proj.weight"]) for p in ("gate", "up", "down")))
    add_output(case, "out", ref.expert(*args), {
        mistakes.silu_up_swapped.__name__: mistakes.silu_up_swapped(*args),
        mistakes.silu_is_sigmoid.__name__: ref.expert(*args, act=mistakes.silu_is_sigmoid),
    })
    return case


LESSON_05 = [  # the id prefix picks the C test: silu_*, expert_*
    ("silu_basic", silu_case, (64, 3.0)),
    ("silu_wide", silu_case, (41, 100.0, True)),
    # (T, hidden_size, intermediate_size)
    ("expert_t1", expert_case, (1, 16, 8)),
    ("expert_moe", expert_case, (5, 32, 12)),  # an MoE expert: I < C (Qwen3: 768 vs 2048)
    ("expert_dense", expert_case, (4, 24, 64)),  # a dense MLP: I > C (Qwen3: 6144 vs 2048)
    ("expert_odd", expert_case, (7, 19, 13)),
]


# ------------------------------------------------------------------------------------
# Lesson 06: the router
# ------------------------------------------------------------------------------------

ROUTE_MISTAKES = [mistakes.softmax_over_topk, mistakes.no_renormalisation]


def topk_case(g, cid, n, k, kind) -> Case:
    """p (n): 'normal' N(0, 1); 'ties' values in {1, 2, 3, 4} / 10 with many repeats (the
    tie rule shows); 'probs' a softmax; 'masked' N(0, 1) with -inf entries (the
    disabled experts of route)."""
    if kind == "ties":
        p = torch.randint(1, 5, (n,), generator=g).float() / 10
    elif kind == "probs":
        p = torch.softmax(randn(g, n, scale=2.0), 0)
    else:
        p = randn(g, n)
    if kind == "masked":
        p[torch.randperm(n, generator=g)[:n // 3]] = float("-inf")
    idx, val = ref.topk(f64(p), k)
    case = Case(cid, f"n={n} k={k} {kind}", {"n": n, "k": k}, {"p": p})
    add_ints(case, "idx", idx)
    add_output(case, "val", val, {})
    return case


def route_logits(g, T, E, k, scale, disabled):
    """(T, E) float32 logits ~ N(0, scale^2), each row with a safe top-k margin among the
    enabled experts."""
    def score(row):
        return row.masked_fill(disabled, float("-inf")) / scale
    return draw_rows(g, T, lambda: randn(g, E, scale=scale), score, k)


def route_case(g, cid, T, E, k, norm, scale=1.0, disabled=(), tie=False) -> Case:
    """logits (T, E) through route(); `disabled` experts are never chosen; `tie` makes the
    k-th and (k+1)-th logit of token 1 exactly equal (either expert is accepted)."""
    dis = torch.zeros(E, dtype=torch.bool)
    dis[list(disabled)] = True
    logits = route_logits(g, T, E, k, scale, dis)
    if tie:
        order = logits[1].sort(descending=True).indices
        logits[1, order[k]] = logits[1, order[k - 1]]
    title = (f"T={T} E={E} k={k} norm_topk_prob={'on' if norm else 'off'}"
             + (f" |logits|~{short(scale)}" if scale != 1 else "")
             + (f" disabled={','.join(map(str, disabled))}" if disabled else "")
             + (" exact tie for the last place in token 1" if tie else ""))
    params = {"T": T, "num_experts": E, "num_experts_per_tok": k, "norm_topk_prob": int(norm)}
    case = Case(cid, title, params, {"logits": logits})
    if disabled:
        add_ints(case, "disabled", dis)
    args = (f64(logits), k, norm, dis if disabled else None)
    probs, experts, weights = ref.route(*args)
    add_output(case, "probs", probs, {})
    mark_overflow(case, "probs", mistakes.softmax_overflow(logits))
    add_ints(case, "experts", experts)
    add_output(case, "weights", weights, {m.__name__: m(*args) for m in ROUTE_MISTAKES})
    return case


def loss_case(g, cid, N, E, k, kind, scale=1.0) -> Case:
    """N routed tokens for the two losses. kind 'random': top-k of N(0, scale^2) logits;
    'balanced': equal logits and round-robin experts (the loss is exactly k);
    'collapsed': one expert far ahead for every token (the loss nears E)."""
    if kind == "balanced":
        logits = torch.zeros(N, E)
        experts = (torch.arange(N * k) % E).reshape(N, k)
    else:
        logits = route_logits(g, N, E, k, scale, torch.zeros(E, dtype=torch.bool))
        if kind == "collapsed":
            logits[:, 0] += 6.0
        experts = ref.route(f64(logits), k, False)[1]
    probs = ref.softmax(f64(logits)).float()  # an input here: what route() would give
    title = f"N={N} E={E} k={k} {kind}" + (f" |logits|~{short(scale)}" if scale != 1 else "")
    case = Case(cid, title, {"N": N, "num_experts": E, "num_experts_per_tok": k},
                {"logits": logits, "probs": probs})
    add_ints(case, "experts", experts)
    add_scalar(case, "lb_loss", ref.load_balancing_loss(f64(probs), experts, E), {
        mistakes.lb_loss_per_assignment.__name__:
            mistakes.lb_loss_per_assignment(f64(probs), experts, E)})
    add_scalar(case, "z_loss", ref.router_z_loss(f64(logits)), {})
    if not torch.isfinite(mistakes.logsumexp_overflow(logits)):
        case.nonfinite["z_loss"] = mistakes.logsumexp_overflow.__name__
    return case


LESSON_06 = [  # the id prefix picks the C test: topk_*, route_*, loss_*
    ("topk_basic", topk_case, (10, 3, "normal")),
    ("topk_ties", topk_case, (12, 5, "ties")),
    ("topk_k1", topk_case, (128, 1, "probs")),
    ("topk_all", topk_case, (7, 7, "normal")),
    ("topk_e128_k8", topk_case, (128, 8, "probs")),
    ("topk_masked", topk_case, (9, 4, "masked")),
    # (T, E, k, norm_topk_prob, |logits|, disabled, tie)
    ("route_e8_k2", route_case, (8, 8, 2, False)),  # Qwen2-MoE style: no renormalisation
    ("route_e8_k2_norm", route_case, (8, 8, 2, True)),
    ("route_e64_k8", route_case, (6, 64, 8, False)),  # OLMoE's 64 experts, 8 active
    ("route_e128_k8", route_case, (4, 128, 8, True)),  # Qwen3-30B-A3B
    ("route_k1", route_case, (6, 16, 1, False)),  # Switch-style top-1
    ("route_k1_norm", route_case, (3, 8, 1, True)),  # every weight becomes 1
    ("route_ke", route_case, (3, 4, 4, False)),  # k = E: every expert, dense
    ("route_disabled", route_case, (6, 8, 2, True, 1.0, (2, 5))),
    ("route_big", route_case, (4, 16, 2, True, 60.0)),
    ("route_tie", route_case, (3, 8, 2, True, 1.0, (), True)),
    # (N, E, k, kind, |logits|)
    ("loss_e8_k2", loss_case, (16, 8, 2, "random")),
    ("loss_balanced", loss_case, (8, 4, 2, "balanced")),
    ("loss_collapsed", loss_case, (8, 4, 1, "collapsed")),
    ("loss_e128_k8", loss_case, (8, 128, 8, "random")),
    ("loss_big", loss_case, (4, 8, 2, "random", 100.0)),
]


# ------------------------------------------------------------------------------------
# Lesson 07: the MoE layer
# ------------------------------------------------------------------------------------


def moe_weights(g, C, I, E, shared_I, popular, u):
    """One sparse layer's tensors: the router 'gate.weight' (E, C) ~ N(0, 1/C), plus 1.5 u
    (a unit vector) on the rows of the `popular` experts; the experts stacked as
    'experts.{gate,up,down}_proj.weight' (E, I, C), (E, I, C), (E, C, I); a shared
    expert and 'shared_expert_gate.weight' (1, C) when shared_I > 0."""
    gate = randn(g, E, C, scale=1 / math.sqrt(C))
    for e in popular:
        gate[e] += 1.5 * u
    per_expert = [swiglu_weights(g, C, I) for _ in range(E)]
    w = {"gate.weight": gate}
    for p in ("gate", "up", "down"):
        w[f"experts.{p}_proj.weight"] = torch.stack([x[f"{p}_proj.weight"] for x in per_expert])
    if shared_I:
        w.update(swiglu_weights(g, C, shared_I, "shared_expert."))
        w["shared_expert_gate.weight"] = randn(g, 1, C, scale=1 / math.sqrt(C))
    return w


def moe_case(g, cid, T, C, I, E, k, norm, shared_I=0, cf=0.0, popular=(), twice=False) -> Case:
    """h (T, C) ~ N(0, 1) through one MoE layer. With `popular` experts, every token also
    leans 2 u towards them (logits ~ +3), so they overflow a capacity limit. `twice`: a
    second input h2 (T, C), drawn the same way, and out2 = the layer on h2: the C test runs
    moe_forward on h2 right after h, on the same scratch."""
    u = randn(g, C)
    u = u / u.norm()
    w = moe_weights(g, C, I, E, shared_I, popular, u)
    lean = 2 * u if popular else torch.zeros(C)
    gate64 = f64(w["gate.weight"])
    h = draw_rows(g, T, lambda: randn(g, C) + lean,
                  lambda row: ref.linear(f64(row), gate64), k)
    cfg = ref.MoeConfig(E, k, norm, cf)
    title = (f"T={T} hidden={C} I={I} E={E} k={k} norm_topk_prob={'on' if norm else 'off'}"
             + (f" shared I={shared_I}" if shared_I else "")
             + (f" capacity_factor={short(cf)} (capacity {ref.expert_capacity(T, cfg)})"
                if cf else "")
             + (" called twice on one scratch" if twice else ""))
    params = {"T": T, "hidden_size": C, "moe_intermediate_size": I,
              "shared_expert_intermediate_size": shared_I, "num_experts": E,
              "num_experts_per_tok": k, "norm_topk_prob": int(norm), "capacity_factor": cf}
    case = Case(cid, title, params, {"h": h, **w})
    r = ref.moe_forward(f64(h), f64(w), cfg)
    add_output(case, "out", *with_mistakes(ref.moe_layer, mistakes.BY_LESSON["07-moe"],
                                           f64(h), f64(w), cfg))
    add_ints(case, "experts", r.experts)
    add_output(case, "weights", r.weights, {})
    add_ints(case, "expert_count", r.expert_count)
    add_ints(case, "dropped", r.dropped)
    if twice:
        h2 = draw_rows(g, T, lambda: randn(g, C) + lean,
                       lambda row: ref.linear(f64(row), gate64), k)
        case.tensors["h2"] = h2
        add_output(case, "out2", ref.moe_layer(f64(h2), f64(w), cfg), {})
    return case


LESSON_07 = [  # (T, hidden, I, E, k, norm_topk_prob, shared I, capacity_factor, popular)
    ("moe_e8_k2", moe_case, (8, 16, 8, 8, 2, True)),
    ("moe_e8_k2_nonorm", moe_case, (8, 16, 8, 8, 2, False)),
    ("moe_e64_k8", moe_case, (6, 8, 4, 64, 8, False)),
    ("moe_e128_k8", moe_case, (4, 16, 8, 128, 8, True)),  # Qwen3 shape: most experts idle
    ("moe_k1", moe_case, (6, 16, 8, 8, 1, False)),
    ("moe_ke", moe_case, (4, 12, 6, 4, 4, True)),  # k = E: every expert runs every token
    ("moe_idle", moe_case, (2, 16, 8, 16, 2, True)),  # 2 tokens, 16 experts: 12+ idle
    ("moe_t1", moe_case, (1, 16, 8, 8, 2, True)),  # one decode step
    ("moe_shared", moe_case, (6, 16, 8, 8, 2, False, 32)),  # Qwen2-MoE
    ("moe_capacity", moe_case, (10, 16, 8, 4, 2, True, 0, 1.25, (0, 1))),
    ("moe_capacity_shared", moe_case, (8, 16, 8, 4, 2, False, 16, 0.5, (2,))),
    # moe_forward twice on the same scratch (h, then h2): nothing of the first call may stay
    ("moe_twice", moe_case, (6, 16, 8, 8, 2, True, 0, 0.0, (), True)),
    ("moe_twice_capacity", moe_case, (8, 16, 8, 4, 2, True, 16, 1.0, (0,), True)),
]


# ------------------------------------------------------------------------------------
# Bonus lesson 10: routing variants
# ------------------------------------------------------------------------------------


def switch_case(g, cid, T, E, scale=1.0) -> Case:
    """logits (T, E) ~ N(0, scale^2) with a safe top-1 margin, through switch_route."""
    logits = route_logits(g, T, E, 1, scale, torch.zeros(E, dtype=torch.bool))
    title = f"T={T} E={E}" + (f" |logits|~{short(scale)}" if scale != 1 else "")
    case = Case(cid, title, {"T": T, "num_experts": E}, {"logits": logits})
    experts, weights = ref.switch_route(f64(logits))
    add_ints(case, "experts", experts)
    add_output(case, "weights", weights, {
        mistakes.switch_weight_one.__name__: mistakes.switch_weight_one(f64(logits))})
    mark_overflow(case, "weights", mistakes.softmax_overflow(logits))
    return case


def ecroute_case(g, cid, T, E, capacity, dup=None) -> Case:
    """probs (T, E): softmax rows of N(0, 4) logits, exact float32 inputs, so the choice
    has no rounding to disagree on; `dup` = (a, b) makes token b a copy of token a (ties:
    the lower token comes first)."""
    logits = randn(g, T, E, scale=2.0)
    if dup:
        logits[dup[1]] = logits[dup[0]]
    probs = torch.softmax(logits, -1)
    title = f"T={T} E={E} capacity={capacity}" + (
        f" tokens {dup[0]} and {dup[1]} equal" if dup else "")
    case = Case(cid, title, {"T": T, "num_experts": E, "capacity": capacity}, {"probs": probs})
    tokens, gates = ref.expert_choice_route(f64(probs), capacity)
    add_ints(case, "tokens", tokens)
    add_output(case, "gates", gates, {})
    return case


def ecmoe_case(g, cid, T, C, I, E, capacity, popular=()) -> Case:
    """h (T, C) through an expert-choice MoE layer; tokens are redrawn until every expert's
    capacity-th and (capacity+1)-th probability are safely apart."""
    u = randn(g, C)
    u = u / u.norm()
    w = moe_weights(g, C, I, E, 0, popular, u)
    gate64 = f64(w["gate.weight"])
    h = randn(g, T, C)
    for _ in range(1000):
        probs = ref.softmax(ref.linear(f64(h), gate64))
        bad = [e for e in range(E) if margin(probs[:, e], capacity) < 1e-3]
        if not bad:
            break
        col = probs[:, bad[0]].sort(descending=True).indices
        h[col[capacity]] = randn(g, C)  # redraw the first token left out
    else:
        raise RuntimeError("could not draw an expert-choice case with safe margins")
    title = f"T={T} hidden={C} I={I} E={E} capacity={capacity}"
    case = Case(cid, title, {"T": T, "hidden_size": C, "moe_intermediate_size": I,
                             "num_experts": E, "capacity": capacity}, {"h": h, **w})
    out, tokens = ref.expert_choice_moe(f64(h), f64(w), capacity)
    add_output(case, "out", out, {mistakes.ec_softmax_over_tokens.__name__:
                                  mistakes.ec_softmax_over_tokens(f64(h), f64(w), capacity)})
    add_ints(case, "tokens", tokens)
    picked = torch.zeros(T, dtype=torch.bool)
    picked[tokens.reshape(-1)] = True
    add_ints(case, "dropped", (~picked).sum())
    return case


def noisy_rows(g, T, E, k, scale, noise_scale, noisy):
    """(T, 3, E) float32: per token its logits ~ N(0, scale^2), noise logits ~
    N(0, noise_scale^2) and standard-normal noise (zeros unless `noisy`), drawn again until
    the noisy logits H keep a safe top-k margin."""
    def draw():
        return torch.stack([randn(g, E, scale=scale), randn(g, E, scale=noise_scale),
                            randn(g, E) * (1.0 if noisy else 0.0)])

    def score(row):
        r = f64(row)
        return r[0] + r[2] * ref.softplus(r[1])
    return draw_rows(g, T, draw, score, k)


def noisy_case(g, cid, T, E, k, noisy=True, scale=1.0, noise_scale=1.0) -> Case:
    """logits, noise_logits, noise (T, E) through noisy_topk_route; noisy=False is the
    evaluation case (noise all zeros: plain top-k, softmax over the kept k)."""
    rows = noisy_rows(g, T, E, k, scale, noise_scale, noisy)
    logits, noise_logits, noise = (rows[:, i].contiguous() for i in range(3))
    title = (f"T={T} E={E} k={k}" + ("" if noisy else " noise = 0 (evaluation)")
             + (f" |logits|~{short(scale)}" if scale != 1 else "")
             + (f" |noise_logits|~{short(noise_scale)}" if noise_scale != 1 else ""))
    case = Case(cid, title, {"T": T, "num_experts": E, "num_experts_per_tok": k},
                {"logits": logits, "noise_logits": noise_logits, "noise": noise})
    args = (f64(logits), f64(noise_logits), f64(noise), k)
    experts, weights = ref.noisy_topk_route(*args)
    add_ints(case, "experts", experts)
    add_output(case, "weights", weights, {
        mistakes.noisy_softmax_over_all.__name__: mistakes.noisy_softmax_over_all(*args)})
    if not torch.isfinite(mistakes.softplus_overflow(logits, noise_logits, noise, k)).all():
        case.nonfinite["weights"] = mistakes.softplus_overflow.__name__
    return case


def noisymoe_case(g, cid, T, C, I, E, k) -> Case:
    """h (T, C) ~ N(0, 1) and noise (T, E) through the noisy top-k MoE layer; 'noise.weight'
    (E, C) ~ N(0, 1/C) is W_noise. Tokens are drawn again until H keeps a safe margin."""
    w = moe_weights(g, C, I, E, 0, (), None)
    w["noise.weight"] = randn(g, E, C, scale=1 / math.sqrt(C))
    gate64, noise64 = f64(w["gate.weight"]), f64(w["noise.weight"])

    def score(row):
        x, z = f64(row[:C]), f64(row[C:])
        return ref.linear(x, gate64) + z * ref.softplus(ref.linear(x, noise64))
    rows = draw_rows(g, T, lambda: torch.cat([randn(g, C), randn(g, E)]), score, k)
    h, noise = rows[:, :C].contiguous(), rows[:, C:].contiguous()
    title = f"T={T} hidden={C} I={I} E={E} k={k}"
    case = Case(cid, title, {"T": T, "hidden_size": C, "moe_intermediate_size": I,
                             "num_experts": E, "num_experts_per_tok": k},
                {"h": h, "noise": noise, **w})
    args = (f64(h), f64(w), f64(noise), k)
    out, experts, weights = ref.noisy_topk_moe(*args)
    add_output(case, "out", out, {mistakes.noisy_softmax_over_all.__name__:
                                  ref.noisy_topk_moe(*args, keep_topk=False)[0]})
    add_ints(case, "experts", experts)
    add_output(case, "weights", weights, {})
    return case


def dense_case(g, cid, T, C, I, E) -> Case:
    """h (T, C) ~ N(0, 1) through the dense softmax mixture of E experts."""
    w = moe_weights(g, C, I, E, 0, (), None)
    h = randn(g, T, C)
    title = f"T={T} hidden={C} I={I} E={E}"
    case = Case(cid, title, {"T": T, "hidden_size": C, "moe_intermediate_size": I,
                             "num_experts": E}, {"h": h, **w})
    add_output(case, "out", *with_mistakes(ref.dense_moe, [mistakes.dense_logits_as_weights],
                                           f64(h), f64(w)))
    add_output(case, "probs", ref.softmax(ref.linear(f64(h), f64(w["gate.weight"]))), {})
    return case


def soft_case(g, cid, T, C, I, E, p) -> Case:
    """h (T, C) ~ N(0, 1) through Soft MoE with p slots per expert; phi (E * p, C) ~
    N(0, 1/C), so the slot logits are ~ N(0, 1)."""
    w = moe_weights(g, C, I, E, 0, (), None)
    # (its 'gate.weight' is drawn and stored, as by every layer's helper, and never read:
    # Soft MoE routes with phi)
    phi = randn(g, E * p, C, scale=1 / math.sqrt(C))
    h = randn(g, T, C)
    title = f"T={T} hidden={C} I={I} E={E} slots_per_expert={p} (S={E * p})"
    case = Case(cid, title, {"T": T, "hidden_size": C, "moe_intermediate_size": I,
                             "num_experts": E, "slots_per_expert": p},
                {"h": h, "phi": phi, **w})
    add_output(case, "out", *with_mistakes(ref.soft_moe, [mistakes.soft_dispatch_over_slots],
                                           f64(h), f64(phi), f64(w), p))
    return case


LESSON_10 = [  # the id prefix picks the C test: switch_, ecroute_, ecmoe_, noisy_, noisymoe_,
    # dense_, soft_
    ("switch_e8", switch_case, (8, 8)),
    ("switch_e128", switch_case, (4, 128)),
    ("switch_big", switch_case, (4, 16, 60.0)),
    # (T, E, capacity, duplicated tokens)
    ("ecroute_basic", ecroute_case, (8, 4, 4)),
    ("ecroute_e16", ecroute_case, (16, 16, 2)),
    ("ecroute_ties", ecroute_case, (6, 3, 3, (1, 4))),
    # (T, hidden, I, E, capacity, popular)
    ("ecmoe_basic", ecmoe_case, (8, 16, 8, 4, 4)),
    ("ecmoe_cap2", ecmoe_case, (8, 16, 8, 4, 2)),  # 8 picks for 8 tokens: some get none
    # (T, E, k, noisy, |logits|, |noise_logits|)
    ("noisy_e8_k2", noisy_case, (8, 8, 2)),
    ("noisy_eval", noisy_case, (6, 8, 2, False)),  # noise = 0: plain top-k
    ("noisy_e64_k4", noisy_case, (4, 64, 4)),
    ("noisy_big", noisy_case, (4, 16, 2, True, 30.0, 100.0)),  # softplus(100): exp overflows
    # (T, hidden, I, E, k)
    ("noisymoe_e8_k2", noisymoe_case, (8, 16, 8, 8, 2)),
    ("noisymoe_k1", noisymoe_case, (5, 16, 8, 4, 1)),  # k = 1: the weight is always 1
    # (T, hidden, I, E)
    ("dense_basic", dense_case, (6, 16, 8, 4)),
    ("dense_e8", dense_case, (3, 8, 4, 8)),
    ("dense_t1", dense_case, (1, 16, 8, 4)),
    # (T, hidden, I, E, slots per expert)
    ("soft_basic", soft_case, (8, 16, 8, 4, 1)),
    ("soft_p2", soft_case, (6, 16, 8, 4, 2)),
    ("soft_slots", soft_case, (3, 8, 4, 2, 4)),  # 8 slots for 3 tokens
    ("soft_t1", soft_case, (1, 16, 8, 4, 2)),  # one token: every slot is that token
]


# ------------------------------------------------------------------------------------
# Lesson 09: fast matmul (the same product as lesson 01, on sizes that exercise the tails
# of the vector loop, the edges of the register tiles and the threaded paths)
# ------------------------------------------------------------------------------------

def fast_matmul_case(g, cid, T, in_f, out_f, x_scale=1.0) -> Case:
    """Lesson 01's case, plus y_bf16 = x @ W.T with W rounded to bf16 first (round to
    nearest even, as .bfloat16() does): what fast_matmul_bf16 must give."""
    case = matmul_case(g, cid, T, in_f, out_f, x_scale)
    w_bf16 = case.tensors["w"].bfloat16().double()
    add_output(case, "y_bf16", ref.linear(f64(case.tensors["x"]), w_bf16), {})
    return case


LESSON_09 = [  # (id, T, in_features, out_features, |x|)
    ("one", 1, 1, 1, 1.0),
    ("small_odd", 3, 17, 31, 1.0),
    ("few_rows", 17, 31, 3, 1.0),
    ("tail_257", 5, 257, 17, 1.0),
    ("tile_edges", 31, 33, 7, 1.0),
    ("expert_shape", 17, 160, 192, 1.0),
    ("down_shape", 13, 192, 160, 1.0),
    ("one_token_257", 1, 257, 257, 1.0),
    ("rows_4k", 3, 1024, 9, 1.0),  # rows 4 KiB apart: the short tile for leftover tokens
    ("threads", 67, 257, 131, 1.0),  # T * in * out >= 2^18: the parallel path
    ("one_token_threads", 2, 1031, 263, 1.0),  # in * out >= 2^18: fast_matmul in parallel
]


# ------------------------------------------------------------------------------------
# Lesson 12: expert parallelism
# ------------------------------------------------------------------------------------


def ep_case(g, cid, T, C, I, E, k, norm, P, cf=0.0, popular=()) -> Case:
    """One MoE layer (no shared expert) as lesson 07 draws it, run by P ranks: the expected
    output is moe_layer's (it must not change with P); the exchange's counts and
    displacements (P, P) and the rows each rank's experts dropped come from the
    simulation ref.ep_moe_forward, checked here to agree with moe_layer."""
    u = randn(g, C)
    u = u / u.norm()
    w = moe_weights(g, C, I, E, 0, popular, u)
    lean = 2 * u if popular else torch.zeros(C)
    gate64 = f64(w["gate.weight"])
    h = draw_rows(g, T, lambda: randn(g, C) + lean,
                  lambda row: ref.linear(f64(row), gate64), k)
    cfg = ref.MoeConfig(E, k, norm, cf)
    owned = [ref.ep_first_expert(r + 1, P, E) - ref.ep_first_expert(r, P, E) for r in range(P)]
    title = (f"P={P} ranks (experts per rank {','.join(map(str, owned))}) T={T} hidden={C} "
             f"I={I} E={E} k={k}"
             + (f" capacity_factor={short(cf)} (capacity {ref.expert_capacity(T, cfg)})"
                if cf else ""))
    params = {"ranks": P, "T": T, "hidden_size": C, "moe_intermediate_size": I,
              "num_experts": E, "num_experts_per_tok": k, "norm_topk_prob": int(norm),
              "capacity_factor": cf}
    case = Case(cid, title, params, {"h": h, **w})
    r = ref.ep_moe_forward(f64(h), f64(w), cfg, P)
    single = ref.moe_forward(f64(h), f64(w), cfg)
    assert (r.out - single.out).abs().max() < 1e-12 and r.dropped.sum() == single.dropped
    variants = {m.__name__: m(f64(h), f64(w), cfg, P)
                for m in mistakes.BY_LESSON["12-expert-parallel"][:3]}
    add_output(case, "out", single.out, variants)
    for name in ("send_counts", "send_displs", "recv_counts", "recv_displs", "dropped"):
        add_ints(case, name, getattr(r, name))
    wrong = mistakes.ep_counts_as_displs(r.send_counts)
    if not torch.equal(wrong, r.send_displs):
        add_ints(case, "send_displs~ep_counts_as_displs", wrong)
    return case


LESSON_12 = [  # (T, hidden, I, E, k, norm_topk_prob, P, capacity_factor, popular)
    ("ep_p1", ep_case, (8, 16, 8, 8, 2, True, 1)),
    ("ep_p2", ep_case, (8, 16, 8, 8, 2, True, 2)),
    ("ep_p3", ep_case, (8, 16, 8, 8, 2, True, 3)),  # 8 experts over 3 ranks: 2, 3, 3
    ("ep_p4", ep_case, (12, 16, 8, 8, 2, False, 4)),
    ("ep_e6_p4", ep_case, (9, 12, 6, 6, 3, True, 4)),  # 6 experts over 4: 1, 2, 1, 2
    ("ep_t2_p4", ep_case, (2, 16, 8, 8, 2, True, 4)),  # a decode step: two ranks hold no token
    ("ep_capacity_p2", ep_case, (10, 16, 8, 4, 2, True, 2, 1.25, (0, 1))),
    ("ep_capacity_p3", ep_case, (12, 16, 8, 4, 2, True, 3, 1.0, (0,))),
]


# ------------------------------------------------------------------------------------
# Lesson 13: quantization (bits and bytes: every output exact, see reference.py)
# ------------------------------------------------------------------------------------


def add_exact(case: Case, name: str, expected: torch.Tensor, variants: dict) -> None:
    """Stores bits or bytes (exact in float32) and every variant that differs anywhere: one
    wrong bit is the mistake, whatever add_output's scale-relative gap would say. NaN in a
    variant: undefined there (any value matches)."""
    case.tensors[name] = expected.float()
    for mistake, variant in variants.items():
        differ = (variant.double() != expected.double()) & ~torch.isnan(variant.double())
        same = not differ.any()
        case.log.append(f"{name}~{mistake}: " + ("skipped, same as expected" if same else
                        f"stored, {differ.sum().item()} values differ"))
        if not same:
            case.tensors[f"{name}~{mistake}"] = variant.float()


def as_i32(bits: torch.Tensor) -> torch.Tensor:
    """uint32 patterns (int64) -> the int32 with the same bits, to store as I32."""
    return (((bits + 2**31) % 2**32) - 2**31).to(torch.int32)


# float32 bits worth testing by name: zeros, ties to even (down and up), just off a tie, the
# largest floats (round to inf), infinities, NaNs whose payload is only in the low 16 bits
# (rounding would make them inf, or wrap to 0), subnormals and a subnormal tie.
BF16_SPECIALS = [0x00000000, 0x80000000, 0x3F800000, 0x3F808000, 0x3F818000, 0x3F808001,
                 0x3F807FFF, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000,
                 0x7F800001, 0xFFFFFFFF, 0x7FFFFFFF, 0x00000001, 0x807FFFFF, 0x00018000]
# bf16 bits: zeros, 1.0, the smallest subnormal, the largest finite values
BF16_BACK_SPECIALS = [0x0000, 0x8000, 0x3F80, 0x0001, 0x807F, 0x7F7F, 0xFF7F]


def bf16_case(g, cid, n_random) -> Case:
    """x_bits: the specials, floats N(0, 1) * 10^U(-10, 10) and raw 32-bit patterns;
    b_bits: the specials and random finite bf16 patterns."""
    mags = randn(g, n_random) * torch.pow(10.0, torch.rand(n_random, generator=g) * 20 - 10)
    floats = mags.view(torch.int32).to(torch.int64) % 2**32
    raw = torch.randint(0, 2**32, (n_random,), generator=g, dtype=torch.int64)
    x_bits = torch.cat([torch.tensor(BF16_SPECIALS, dtype=torch.int64), floats, raw])
    b = torch.randint(0, 2**16, (4 * n_random,), generator=g, dtype=torch.int64)
    b = b[(b & 0x7F80) != 0x7F80][:n_random]
    b_bits = torch.cat([torch.tensor(BF16_BACK_SPECIALS, dtype=torch.int64), b])
    n, m = x_bits.numel(), b_bits.numel()
    case = Case(cid, f"{n} floats to bf16 ({len(BF16_SPECIALS)} special), {m} bf16 back",
                {"n": n, "m": m}, {"x_bits": as_i32(x_bits), "b_bits": as_i32(b_bits)})
    add_exact(case, "bf16", ref.bf16_bits(x_bits),
              {mistakes.bf16_truncate.__name__: mistakes.bf16_truncate(x_bits)})
    add_output(case, "f32", ref.bf16_value(b_bits).double(), {})
    return case


# One block of each format whose x / d lands exactly on halves (d = 1, id = 1): q8_0 with
# max|x| = 127, where roundf sends -2.5 to -3 (rint would give -2); q4_0 with -8 and 8 tied
# for the largest |x| (the first, -8, makes d = 1; the last would make d = -1), where
# (int)(x + 8.5) sends -2.5 to level 6.
HALVES_Q8 = [127.0] + [k + 0.5 for k in range(-15, 16)]
HALVES_Q4 = [-8.0, 8.0] + [k + 0.5 for k in range(-8, 8)] + [k + 0.5 for k in range(-7, 7)]


def quant_blocks(g, nb, kind, halves) -> torch.Tensor:
    """nb blocks of 32 floats ~ N(0, 1); for 'scales' each block times 10^U(-2, 2), then
    block 1 all zero, block 2 one outlier (20x its largest), block 3 the exact halves."""
    x = randn(g, nb, QK)
    if kind == "scales":
        x *= torch.pow(10.0, torch.rand(nb, 1, generator=g) * 4 - 2)
        x[1] = 0
        x[2, 5] = 20 * x[2].abs().max()
        x[3] = torch.tensor(halves)
    return x.reshape(-1)


QK = ref.QK


def q8_case(g, cid, nb, kind="normal") -> Case:
    """x (nb * 32) through q8_0: the blocks' bytes, and those bytes dequantized."""
    x = quant_blocks(g, nb, kind, HALVES_Q8)
    blocks = ref.q8_0_quantize(x)
    n = x.numel()
    title = f"n={n} ({nb} blocks)" + (", scales 1e-2..1e2, a zero block, an outlier, exact "
                                      "halves" if kind == "scales" else ", N(0, 1)")
    case = Case(cid, title, {"n": n}, {"x": x, "q": blocks.to(torch.int32)})
    add_exact(case, "blocks", blocks, {m.__name__: m(x) for m in (mistakes.q8_0_truncate,
                                                                  mistakes.q8_0_scale_128)})
    add_output(case, "deq", ref.q8_0_dequantize(blocks).double(), {})
    return case


def q4_case(g, cid, nb, kind="normal") -> Case:
    """x (nb * 32) through q4_0: the blocks' bytes, and those bytes dequantized."""
    x = quant_blocks(g, nb, kind, HALVES_Q4)
    blocks = ref.q4_0_quantize(x)
    n = x.numel()
    title = f"n={n} ({nb} blocks)" + (", scales 1e-2..1e2, a zero block, an outlier, a tie "
                                      "for the largest |x|, exact halves" if kind == "scales"
                                      else ", N(0, 1)")
    case = Case(cid, title, {"n": n}, {"x": x, "q": blocks.to(torch.int32)})
    add_exact(case, "blocks", blocks,
              {m.__name__: m(x) for m in (mistakes.q4_0_nibbles_interleaved,
                                          mistakes.q4_0_no_offset)})
    add_output(case, "deq", ref.q4_0_dequantize(blocks).double(), {})
    return case


def dot_case(g, cid, rows, cols) -> Case:
    """W (rows, cols) ~ N(0, 0.01) and x (cols) ~ N(0, 1), both in q8_0: y = W x as
    ggml_vec_dot_q8_0_q8_0 gives it, row by row."""
    w = randn(g, rows, cols, scale=0.1)
    x = randn(g, cols)
    wq, xq = ref.q8_0_quantize(w.reshape(-1)), ref.q8_0_quantize(x)
    case = Case(cid, f"rows={rows} cols={cols}", {"rows": rows, "cols": cols},
                {"wq": wq.to(torch.int32), "xq": xq.to(torch.int32), "x": x})
    add_output(case, "y", ref.q8_0_dot(wq, xq), {})
    return case


LESSON_13 = [  # the id prefix picks the C test: bf16_*, q8_*, q4_*, dot_*
    ("bf16_mixed", bf16_case, (64,)),
    ("q8_basic", q8_case, (2,)),
    ("q8_blocks", q8_case, (8, "scales")),
    ("q4_basic", q4_case, (2,)),
    ("q4_blocks", q4_case, (8, "scales")),
    ("dot_small", dot_case, (3, 64)),
    ("dot_expert", dot_case, (16, 256)),
]


# ------------------------------------------------------------------------------------
# Lessons and files
# ------------------------------------------------------------------------------------

LESSONS = {  # file name -> [(case id, builder, args)]
    "01-matmul": [(c, matmul_case, a) for c, *a in LESSON_01],
    "02-rmsnorm": [(c, rmsnorm_case, a) for c, *a in LESSON_02],
    "03-rope": [(c, rope_case, a) for c, *a in LESSON_03],
    "04-attention": LESSON_04,
    "05-expert": LESSON_05,
    "06-router": LESSON_06,
    "07-moe": LESSON_07,
    "09-fast-matmul": [(c, fast_matmul_case, a) for c, *a in LESSON_09],
    "10-routing": LESSON_10,
    "12-expert-parallel": LESSON_12,
    "13-quantization": LESSON_13,
}


def fmt_param(v) -> str:
    """Metadata spelling: integers without a decimal point, floats as repr (1e-06)."""
    if isinstance(v, bool) or isinstance(v, int):
        return str(int(v))
    return repr(float(v))


MAX_DRAWS = 20


def build_case(lesson: str, seed: int, cid: str, build, args) -> Case:
    """Builds one case. Where a draw happens not to show a REQUIRED variant or mark (rare:
    e.g. a capacity case whose tokens all fill the experts in the same order under both
    policies), the case is drawn again from the same generator, so the result still
    depends only on (seed, lesson, case id); the committed seed needs no second draw."""
    g = case_generator(seed, lesson, cid)
    for _ in range(MAX_DRAWS):
        case = build(g, cid, *args)
        have = set(case.tensors) | {f"{out}~nonfinite" for out in case.nonfinite}
        missing = [v for v in REQUIRED.get((lesson, cid), []) if v not in have]
        if not missing:
            return case
    raise AssertionError(f"{lesson} {cid}: variants {missing} not stored in {MAX_DRAWS} "
                         f"draws: {case.log}")


def build_lesson(lesson: str, seed: int) -> list[Case]:
    """Builds every case of a lesson; checks that each of its mistakes is stored somewhere
    and that the REQUIRED variants and marks are there."""
    cases = [build_case(lesson, seed, cid, build, args) for cid, build, args in LESSONS[lesson]]
    stored = {key.split("~")[1] for c in cases for key in c.tensors if "~" in key}
    missing = [m.__name__ for m in mistakes.BY_LESSON[lesson] if m.__name__ not in stored]
    assert not missing, f"{lesson}: no case stores the mistakes {missing}"
    return cases


def lesson_file(lesson: str, cases: list[Case], seed: int) -> tuple[dict, dict]:
    """-> (tensors {'<case>/<name>': tensor}, metadata) of one lesson's fixture file."""
    meta = {"lesson": lesson, "seed": str(seed), "generator": GENERATOR,
            "cases": " ".join(c.id for c in cases)}
    tensors = {}
    for c in cases:
        meta[f"{c.id}/title"] = c.title
        meta.update({f"{c.id}/{k}": fmt_param(v) for k, v in c.params.items()})
        meta.update({f"{c.id}/{out}~nonfinite": m for out, m in c.nonfinite.items()})
        tensors.update({f"{c.id}/{name}": t.contiguous() for name, t in c.tensors.items()})
    return tensors, meta


def pick_lessons(wanted: list[str] | None) -> list[str]:
    """--lesson accepts '3', '03', '03-rope' or 'rope'; none means every lesson."""
    if not wanted:
        return list(LESSONS)
    picked = []
    for w in wanted:
        hits = [name for name in LESSONS
                if w in (name, name[:2], name[3:]) or (w.isdigit() and int(w) == int(name[:2]))]
        if not hits:
            raise SystemExit(f"export_fixtures: unknown lesson {w!r}; have {list(LESSONS)}")
        picked += [h for h in hits if h not in picked]
    return picked


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"fixture seed (default {DEFAULT_SEED}, the committed set)")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help="output directory (default: the repository's data/fixtures)")
    parser.add_argument("--lesson", action="append",
                        help="only this lesson (repeatable), e.g. 03 or 03-rope")
    parser.add_argument("--verbose", action="store_true",
                        help="say which variants were stored or skipped, and why")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    os.makedirs(args.out, exist_ok=True)
    for lesson in pick_lessons(args.lesson):
        cases = build_lesson(lesson, args.seed)
        if args.verbose:
            for c in cases:
                print(f"  {lesson} {c.id}: {c.title}", *c.log, sep="\n    ")
        tensors, meta = lesson_file(lesson, cases, args.seed)
        path = os.path.join(args.out, f"{lesson}.safetensors")
        safetensors_io.save(path, tensors, meta)
        print(f"{path}: {len(cases)} cases, {len(tensors)} tensors, "
              f"{os.path.getsize(path)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
