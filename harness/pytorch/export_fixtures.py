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
    ("04-attention", "selfattn_qwen3"): ["out~qk_norm_missing", "out~qk_norm_after_rope"],
}


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
]


# ------------------------------------------------------------------------------------
# Lesson 04: attention
# ------------------------------------------------------------------------------------

PREFILL_MISTAKES = [mistakes.no_scale, mistakes.gqa_modulo, mistakes.mask_excludes_self,
                    mistakes.no_causal_mask]
SELFATTN_MISTAKES = [mistakes.qk_norm_missing, mistakes.qk_norm_after_rope]


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
    mistake_fns = SELFATTN_MISTAKES if qk_norm else []
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
]


# ------------------------------------------------------------------------------------
# Lessons and files
# ------------------------------------------------------------------------------------

LESSONS = {  # file name -> [(case id, builder, args)]
    "01-matmul": [(c, matmul_case, a) for c, *a in LESSON_01],
    "02-rmsnorm": [(c, rmsnorm_case, a) for c, *a in LESSON_02],
    "03-rope": [(c, rope_case, a) for c, *a in LESSON_03],
    "04-attention": LESSON_04,
}


def fmt_param(v) -> str:
    """Metadata spelling: integers without a decimal point, floats as repr (1e-06)."""
    if isinstance(v, bool) or isinstance(v, int):
        return str(int(v))
    return repr(float(v))


def build_lesson(lesson: str, seed: int) -> list[Case]:
    """Builds every case of a lesson; checks that each of its mistakes is stored somewhere
    and that the REQUIRED variants and marks are there."""
    cases = [build(case_generator(seed, lesson, cid), cid, *args)
             for cid, build, args in LESSONS[lesson]]
    for c in cases:
        have = set(c.tensors) | {f"{out}~nonfinite" for out in c.nonfinite}
        missing = [v for v in REQUIRED.get((lesson, c.id), []) if v not in have]
        assert not missing, f"{lesson} {c.id}: variants {missing} not stored: {c.log}"
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
