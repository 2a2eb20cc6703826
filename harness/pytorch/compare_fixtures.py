"""Checks that two fixture directories hold the same fixtures (CI: regenerated == committed).

    /usr/bin/python3 harness/pytorch/compare_fixtures.py data/fixtures /tmp/fx

Same *.safetensors file names, same tensor keys, dtypes and shapes, same metadata, and
every tensor within --atol (default 1e-6) max abs difference, NaN matching NaN and inf
matching inf of the same sign. The `generator` metadata names the torch version and is
reported but not compared: another torch producing the same numbers is a reproduction.
Prints one line per problem and a summary; exits 1 on any mismatch.
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

NOT_COMPARED = {"generator"}


def tensor_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max abs difference of two same-shape tensors over their finite elements; inf when
    their NaNs or infs are not in the same places (so that any tolerance fails)."""
    a, b = a.double(), b.double()
    nan, inf = torch.isnan(a), torch.isinf(a)
    if not (torch.equal(nan, torch.isnan(b)) and torch.equal(inf, torch.isinf(b))
            and torch.equal(a[inf], b[inf])):
        return float("inf")
    finite = ~(nan | inf)
    return (a[finite] - b[finite]).abs().max().item() if finite.any() else 0.0


def compare_metadata(name: str, ma: dict, mb: dict) -> list[str]:
    """-> problems: keys missing on either side or with different values."""
    problems = []
    for key in sorted(set(ma) | set(mb)):
        if key in NOT_COMPARED:
            if ma.get(key) != mb.get(key):
                print(f"note: {name}: {key} differs: {ma.get(key)!r} vs {mb.get(key)!r}")
        elif key not in ma or key not in mb:
            problems.append(f"{name}: metadata {key!r} only in {'B' if key in mb else 'A'}")
        elif ma[key] != mb[key]:
            problems.append(f"{name}: metadata {key!r}: {ma[key]!r} vs {mb[key]!r}")
    return problems


def compare_file(name: str, path_a: str, path_b: str, atol: float):
    """-> (problems, tensors compared, max abs diff) for one fixture file."""
    (ta, ma), (tb, mb) = safetensors_io.load(path_a), safetensors_io.load(path_b)
    problems = compare_metadata(name, ma, mb)
    worst = 0.0
    for key in sorted(set(ta) | set(tb)):
        if key not in ta or key not in tb:
            problems.append(f"{name}: tensor {key!r} only in {'B' if key in tb else 'A'}")
            continue
        a, b = ta[key], tb[key]
        if a.dtype != b.dtype or a.shape != b.shape:
            problems.append(f"{name}: {key}: {a.dtype} {list(a.shape)} vs "
                            f"{b.dtype} {list(b.shape)}")
            continue
        diff = tensor_diff(a, b)
        worst = max(worst, diff)
        if diff > atol:
            problems.append(f"{name}: {key}: max abs diff {diff:.3g} > {atol:g}")
    return problems, len(set(ta) & set(tb)), worst


def fixture_files(directory: str) -> set[str]:
    """Names of the *.safetensors files in a directory."""
    return {f for f in os.listdir(directory) if f.endswith(".safetensors")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("a", help="fixture directory A (e.g. data/fixtures)")
    parser.add_argument("b", help="fixture directory B (e.g. a fresh export)")
    parser.add_argument("--atol", type=float, default=1e-6,
                        help="max abs difference allowed per element (default 1e-6)")
    args = parser.parse_args(argv)
    files_a, files_b = fixture_files(args.a), fixture_files(args.b)
    problems = [f"{f}: only in {'B' if f in files_b else 'A'}"
                for f in sorted(files_a ^ files_b)]
    n_tensors, worst = 0, 0.0
    for name in sorted(files_a & files_b):
        try:
            p, n, w = compare_file(name, os.path.join(args.a, name),
                                   os.path.join(args.b, name), args.atol)
        except ValueError as e:  # malformed file: safetensors_io names it
            p, n, w = [str(e)], 0, 0.0
        problems += p
        n_tensors, worst = n_tensors + n, max(worst, w)
    for p in problems:
        print(p)
    verdict = "OK" if not problems else f"{len(problems)} MISMATCHES"
    print(f"compare_fixtures: {len(files_a & files_b)} files, {n_tensors} tensors, "
          f"max abs diff {worst:.3g}: {verdict}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
