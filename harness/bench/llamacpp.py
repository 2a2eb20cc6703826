"""`make bench`'s llama.cpp part: the kit's model against llama.cpp on the same weights.

    /usr/bin/python3 harness/bench/llamacpp.py --moekit BUILD/.../moekit_gen [--quick]
        [--rounds 3] [--prompt 128] [--decode 64] [--cc gcc] [--json build/bench-llamacpp.json]

1. llama.cpp: harness/bench/llamacpp_setup.sh installs node-llama-cpp@3.21.1 with npm
   (pinned, install scripts off: nothing downloaded but the package, nothing compiled but
   the driver) and builds harness/bench/llamacpp_bench.c against its prebuilt libraries.
   Without npm, or when that fails, this part prints one "skipped" line and exits 0.
2. The weights: a synthetic Qwen3-MoE checkpoint (harness/pytorch/synth_checkpoint.py; the
   `small` shape, or `quick` with --quick), written once under build/llamacpp/, and its
   GGUF conversions (harness/pytorch/gguf_writer.py): f32, f16, bf16 and q8_0. The weights
   are bf16 values, so the f32 and bf16 files hold the same numbers.
3. Rounds: in each, every engine runs at 1 thread, then at 2, one after the other
   (moekit f32, llama.cpp f32, f16, bf16, q8_0), each a fresh process: an untimed warm-up
   rep, then a timed one (prefill of the prompt, greedy decode). The figures are medians
   over the rounds; the ratios moekit / llama.cpp are of those medians.
4. The check: moekit f32 and llama.cpp f32 must decode the same greedy ids from the same
   prompt ids. A difference is a bug in one engine or in the GGUF writer: it is printed
   loudly and this script exits 1 (so `make bench` fails). The other types round the
   weights or the activations differently; for them a difference is shown, not an error.
   Speed never fails anything.

The machine may be shared and noisy: compare the ratios of one run, not absolute figures
from different runs.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PYTORCH = os.path.join(ROOT, "harness", "pytorch")
PACKAGE = "node-llama-cpp@3.21.1"
TEXT = (b"The secret of a happy life is to find out what you love, and then to do it with all "
        b"your heart. % Q: How many programmers does it take to change a light bulb? A: None, "
        b"that is a hardware problem. % A journey of a thousand miles begins with a single step, "
        b"and so does a journey of one. % ")
GGUF_TYPES = ["f32", "f16", "bf16", "q8_0"]
SEED = 1234


def say(msg: str) -> None:
    print(msg, flush=True)


def setup(build: str, cc: str) -> tuple:
    """(driver, backends dir, release) or (None, why, None)."""
    r = subprocess.run(["sh", os.path.join(HERE, "llamacpp_setup.sh"), build, cc], cwd=ROOT,
                       stdout=subprocess.PIPE, text=True)  # its progress on stderr shows
    last = (r.stdout.strip().splitlines() or ["skipped: llamacpp_setup.sh printed nothing"])[-1]
    if r.returncode != 0 or not last.startswith("ok "):
        return None, last if last.startswith("skipped") else f"skipped: {last}", None
    _, driver, backends, release = last.split(" ", 3)
    return driver, backends, release


def weights(build: str, shape: str, types: list) -> tuple:
    """(checkpoint dir, {type: gguf path}), written once per shape and seed."""
    sys.path.insert(0, PYTORCH)
    import gguf_writer  # noqa: E402 (numpy; checked by the caller)
    import synth_checkpoint  # noqa: E402

    def stale(path, *sources):  # missing, or older than what writes it
        return not os.path.exists(path) or any(os.path.getmtime(f) > os.path.getmtime(path)
                                               for f in sources)

    base = os.path.join(build, f"{shape}-seed{SEED}")
    model = os.path.join(base, "model")
    if stale(os.path.join(model, "config.json"), synth_checkpoint.__file__):
        say(f"writing the synthetic checkpoint {model} ({shape}) ...")
        synth_checkpoint.write(model, synth_checkpoint.SHAPES[shape], "f32", SEED)
    ggufs = {}
    for t in types:
        path = os.path.join(base, f"model-{t}.gguf")
        if stale(path, gguf_writer.__file__, os.path.join(model, "config.json")):
            say(f"converting it to GGUF {t} ...")
            gguf_writer.convert(model, path, t)
        ggufs[t] = path
    return model, ggufs


def same_q8_0(driver: str, ggufs: dict) -> None:
    """Compares gguf_writer.py's Q8_0 file with llama.cpp's own quantizer's
    (llama_model_quantize of the f32 file), tensor by tensor; prints the outcome."""
    import gguf_writer  # noqa: E402

    theirs = ggufs["q8_0"] + ".llama-quantize"
    if not os.path.exists(theirs) or os.path.getmtime(theirs) < os.path.getmtime(ggufs["f32"]):
        r = subprocess.run([driver, "--quantize-q8_0", ggufs["f32"], theirs], capture_output=True,
                           text=True)
        if r.returncode != 0:
            say(f"Q8_0: llama.cpp's quantizer failed: {r.stderr.strip()[-200:]}")
            return
    _, a = gguf_writer.read_gguf(ggufs["q8_0"])
    _, b = gguf_writer.read_gguf(theirs)
    q8 = [n for n in a if a[n][1] == gguf_writer.GGML_Q8_0]
    diff = [n for n in a if n not in b or a[n][:2] != b[n][:2] or a[n][2] != b[n][2]]
    if diff:
        say(f"Q8_0: {len(diff)} of {len(a)} tensors differ from llama.cpp's own quantizer "
            f"(llama_model_quantize), first {diff[0]}: the two engines' 8-bit weights are not "
            "the same")
    else:
        say(f"Q8_0: all {len(a)} tensors ({len(q8)} of them Q8_0) are byte for byte what "
            "llama.cpp's own quantizer (llama_model_quantize) writes")


def prompt_ids(build: str, P: int, V: int) -> str:
    """A file of P ids: the bytes of TEXT, as bench.c's prompt."""
    path = os.path.join(build, f"prompt-{P}.txt")
    with open(path, "w") as f:
        f.write(" ".join(str(TEXT[i % len(TEXT)] % V) for i in range(P)) + "\n")
    return path


def run(cmd: list, timeout: float) -> dict:
    """One engine run: {ids, prefill, decode, engine} or {error}."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"{os.path.basename(cmd[0])} took over {timeout:.0f} s (a busy machine?)"}
    out = {"error": None}
    for line in r.stdout.splitlines():
        key, _, rest = line.partition(" ")
        if key == "ids":
            out["ids"] = [int(v) for v in rest.split()]
        elif key in ("prefill_tokens_per_s", "decode_tokens_per_s"):
            out[key.split("_")[0]] = float(rest)
        elif key == "engine":
            out["engine"] = rest.strip()
        elif key == "todo":
            return {"error": f"skipped: {rest.strip()} has a TODO"}
    if r.returncode != 0 or "ids" not in out:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        out["error"] = f"{os.path.basename(cmd[0])} exited {r.returncode}: {tail}"
    return out


def first_difference(a: list, b: list) -> int:
    """Index of the first differing id, or -1 when equal."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return -1 if len(a) == len(b) else min(len(a), len(b))


def time_rounds(engines: list, threads: list, rounds: int, args: list, timeout: float) -> dict:
    """{(engine, threads): [run results]}: rounds x threads x engines, one after the other.
    An engine that overran the timeout is not run again at that thread count."""
    samples = {(name, t): [] for name, _ in engines for t in threads}
    load0, t0 = os.getloadavg()[0], time.time()
    told = set()  # each error once
    for i in range(rounds):
        for t in threads:
            for name, cmd in engines:
                if any("took over" in (r["error"] or "") for r in samples[(name, t)]):
                    continue
                r = run(cmd + args + ["--threads", str(t)], timeout)
                samples[(name, t)].append(r)
                if r["error"] and (name, r["error"]) not in told:
                    told.add((name, r["error"]))
                    say(f"{name}, {t} thread(s): {r['error']}")
        say(f"round {i + 1} of {rounds} done ({time.time() - t0:.0f} s)")
    say(f"(the load average was {load0:.1f} on {os.cpu_count()} cores before the rounds)")
    if len(threads) > 1 and load0 > 0.5:
        say("note: the machine was busy. llama.cpp's threads wait for each other in a "
            "spinning barrier (ggml_barrier), so its 2-thread figures fall far more than "
            "moekit's (OpenMP) when a core is taken: read them on an idle machine.")
    return samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--moekit", required=True, help="the moekit_gen binary")
    ap.add_argument("--quick", action="store_true", help="the tiny model, one round")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--prompt", type=int, default=None)
    ap.add_argument("--decode", type=int, default=None)
    ap.add_argument("--cc", default="cc")
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "llamacpp"))
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    shape = "quick" if a.quick else "small"
    rounds = a.rounds or (1 if a.quick else 3)
    P = a.prompt or (32 if a.quick else 128)
    N = a.decode or (16 if a.quick else 64)

    say(f"\nllama.cpp on the same weights ({PACKAGE}, through llama.h)")
    driver, backends, release = setup(a.build, a.cc)
    if driver is None:
        say(f"llama.cpp: {backends}")
        return 0
    try:
        import numpy  # noqa: F401
    except ImportError:
        say("llama.cpp: skipped: the GGUF writer needs numpy (apt-get install python3-numpy)")
        return 0
    model, ggufs = weights(a.build, shape, GGUF_TYPES)
    types = GGUF_TYPES
    same_q8_0(driver, ggufs)
    with open(os.path.join(model, "config.json")) as f:
        cfg = json.load(f)
    ids_path = prompt_ids(a.build, P, cfg["vocab_size"])
    threads = [1, 2] if (os.cpu_count() or 1) >= 2 else [1]
    engines = [("moekit f32", [a.moekit, model])] + \
              [(f"llama.cpp {t}", [driver, ggufs[t], "--backends", backends]) for t in types]
    say(f"model {model}: hidden {cfg['hidden_size']}, {cfg['num_hidden_layers']} layers, "
        f"{cfg['num_experts']} experts top-{cfg['num_experts_per_tok']} of "
        f"{cfg['moe_intermediate_size']}, vocab {cfg['vocab_size']}; llama.cpp {release}")
    say(f"timing: prompt {P} ids, greedy decode {N}, {rounds} round(s) of every engine at "
        f"{' and '.join(map(str, threads))} thread(s), interleaved ...")
    samples = time_rounds(engines, threads, rounds, ["--ids", ids_path, "--decode", str(N)],
                          30 if a.quick else 120)
    return report(samples, engines, threads, a, P, N, rounds, release, model)


def report(samples, engines, threads, a, P, N, rounds, release, model) -> int:
    """The table, the id check and the ratios; 1 on an f32 id mismatch."""
    med = {}
    for key, rs in samples.items():
        ok = [r for r in rs if not r["error"]]
        if ok:
            med[key] = {"prefill": statistics.median(r["prefill"] for r in ok),
                        "decode": statistics.median(r["decode"] for r in ok), "ids": ok[0]["ids"]}
    names = [n for n, _ in engines]
    say(f"\ntokens/s, median of {rounds} round(s) (prefill of {P}, decode of {N})")
    say(f"{'threads':>7} {'phase':<8}" + "".join(f" {n:>15}" for n in names))
    for t in threads:
        for phase in ("prefill", "decode"):
            cells = [f"{med[(n, t)][phase]:15.1f}" if (n, t) in med else f"{'-':>15}" for n in names]
            say(f"{t:>7} {phase:<8}" + "".join(" " + c for c in cells))
    if not any(("moekit f32", t) in med for t in threads):
        say("\nno id check and no ratios: moekit did not run (above)")
        return 0
    # the ids
    mismatch, checks = False, []
    say("\ngreedy ids against moekit f32's:")
    for t in threads:
        ref = med.get(("moekit f32", t))
        for n in names[1:]:
            m = med.get((n, t))
            if not ref or not m:
                continue
            d = first_difference(ref["ids"], m["ids"])
            same = d < 0
            checks.append({"engine": n, "threads": t, "same": same, "first_difference": d})
            if same:
                say(f"  {n:<15} {t} thread(s): the same {len(ref['ids'])} ids")
            elif n == "llama.cpp f32":
                mismatch = True
                say(f"  {n:<15} {t} thread(s): MISMATCH at decoded id {d}: moekit "
                    f"{ref['ids'][d:d + 8]} ..., llama.cpp {m['ids'][d:d + 8]} ...")
            else:
                say(f"  {n:<15} {t} thread(s): differ from decoded id {d} on (rounded "
                    f"{'weights' if 'q8' in n else 'activations'}; not an error)")
    # the ratios
    ratios = {}
    say(f"\n{'ratio':<40} {'measured':>9}  what")
    for t in threads:
        for phase in ("decode", "prefill"):
            for n in names[1:]:
                key = f"{phase}_vs_{n.replace('llama.cpp ', 'llamacpp_')}_{t}t"
                mk, ll = med.get(("moekit f32", t)), med.get((n, t))
                if mk and ll:
                    ratios[key] = mk[phase] / ll[phase]
                    say(f"{key:<40} {ratios[key]:9.2f}  {phase} tokens/s, moekit f32 / {n}, "
                        f"{t} thread(s)")
    if mismatch:
        say("\nMISMATCH: moekit and llama.cpp decode different greedy ids from the same f32 "
            "weights and prompt.\nOne engine or harness/pytorch/gguf_writer.py is wrong; "
            f"the checkpoint is {model}.")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"package": PACKAGE, "llama_cpp_release": release, "model": model,
                       "prompt_tokens": P, "decode_tokens": N, "rounds": rounds,
                       "tokens_per_s": {f"{n} {t}t": med.get((n, t), {}) for n in names
                                        for t in threads},
                       "ids_check": checks, "ratios": ratios}, f, indent=1)
        say(f"\nwrote {a.json}")
    return 1 if mismatch else 0


if __name__ == "__main__":
    sys.exit(main())
