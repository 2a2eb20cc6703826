"""`make bench`'s llama.cpp part: the kit's model against llama.cpp on the same weights.

    /usr/bin/python3 harness/bench/llamacpp.py --moekit BUILD/.../moekit_gen [--quick]
        [--rounds 3] [--prompt 128] [--decode 64] [--cc gcc] [--json build/bench-llamacpp.json]

1. llama.cpp: harness/bench/llamacpp_setup.sh installs node-llama-cpp@3.21.1 with npm
   (pinned, install scripts off: nothing downloaded but the package, nothing compiled but
   the driver) and builds harness/bench/llamacpp_bench.c against its prebuilt libraries.
   Without npm, or when that fails, this part prints one "skipped" line and exits 0.
2. The weights: a synthetic Qwen3-MoE checkpoint (harness/pytorch/synth_checkpoint.py; the
   `small` shape, or `quick` with --quick), written once under build/llamacpp/, and its
   GGUF conversions (harness/pytorch/gguf_writer.py): f32, f16, bf16, q8_0 and q4_0. The weights
   are bf16 values, so the f32 and bf16 files hold the same numbers.
3. Rounds: in each, every engine runs at 1 thread, then at 2, one after the other
   (moekit f32 through the lessons, moekit with typed weights: bf16 (--weights bf16), and
   q8_0 and q4_0 from checkpoints `moekit quantize` wrote (--weights auto, the blocks used
   in place); llama.cpp f32, f16, bf16, q8_0, q4_0), each a fresh process: an untimed
   warm-up rep, then a timed one (prefill of the prompt, greedy decode); each prints its
   load time too (the model opened and its buffers set up). The figures are medians over the
   rounds; the ratios moekit / llama.cpp are of those medians, each moekit type against
   llama.cpp's same type. The weights are the same on both sides: the checkpoint holds
   bf16 values, and moekit's q8_0 and q4_0 are the same quantizers as gguf_writer.py's
   (checked against llama.cpp's below), except that moekit keeps the token embedding
   float32 (a row per token is read, not multiplied) where the q8_0 and q4_0 GGUFs
   quantize it. Peak resident
   memory per engine comes from /usr/bin/time (GNU time), when it is installed.
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
GGUF_TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0"]
MOEKIT_TYPES = ["bf16", "q8_0", "q4_0"]  # --weights, besides the lessons' float32 model
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


def weights(build: str, shape: str, types: list, layers: int = 0, dtype: str = "f32") -> tuple:
    """(checkpoint dir, {type: gguf path}), written once per shape, layer count and seed."""
    sys.path.insert(0, PYTORCH)
    import gguf_writer  # noqa: E402 (numpy; checked by the caller)
    import synth_checkpoint  # noqa: E402

    def stale(path, *sources):  # missing, or older than what writes it
        return not os.path.exists(path) or any(os.path.getmtime(f) > os.path.getmtime(path)
                                               for f in sources)

    s = dict(synth_checkpoint.SHAPES[shape], **({"layers": layers} if layers else {}))
    base = os.path.join(build, f"{shape}{layers or ''}-seed{SEED}")
    model = os.path.join(base, "model")
    if stale(os.path.join(model, "config.json"), synth_checkpoint.__file__):
        say(f"writing the synthetic checkpoint {model} ({shape}, {s['layers']} layers, "
            f"{dtype}) ...")
        synth_checkpoint.write(model, s, dtype, SEED)
    ggufs = {}
    for t in types:
        path = os.path.join(base, f"model-{t}.gguf")
        if stale(path, gguf_writer.__file__, os.path.join(model, "config.json")):
            say(f"converting it to GGUF {t} ...")
            gguf_writer.convert(model, path, t)
        ggufs[t] = path
    return model, ggufs


def moekit_quantized(moekit: str, model: str, t: str) -> str:
    """model's copy in blocks of type t (`moekit quantize`, through moekit_gen --quantize),
    written once: moekit runs it with --weights auto, its blocks in place from the mapping,
    as llama.cpp runs its quantized GGUF (the logits are those of --weights t on model)."""
    out = f"{model}-{t}"
    src = os.path.join(model, "model.safetensors")
    done = os.path.join(out, "model.safetensors")
    if not os.path.exists(done) or os.path.getmtime(done) < os.path.getmtime(src):
        say(f"moekit quantize --type {t} {model} ...")
        subprocess.run([moekit, "--quantize", t, model, out], check=True)
    return out


def same_quantized(driver: str, ggufs: dict, t: str) -> None:
    """Compares gguf_writer.py's Q8_0 or Q4_0 file with llama.cpp's own quantizer's
    (llama_model_quantize of the f32 file; Q4_0 "pure", every matrix Q4_0), tensor by
    tensor; prints the outcome."""
    import gguf_writer  # noqa: E402

    T = t.upper()
    theirs = ggufs[t] + ".llama-quantize"
    if not os.path.exists(theirs) or os.path.getmtime(theirs) < os.path.getmtime(ggufs["f32"]):
        r = subprocess.run([driver, f"--quantize-{t}", ggufs["f32"], theirs], capture_output=True,
                           text=True)
        if r.returncode != 0:
            say(f"{T}: llama.cpp's quantizer failed: {r.stderr.strip()[-200:]}")
            return
    _, a = gguf_writer.read_gguf(ggufs[t])
    _, b = gguf_writer.read_gguf(theirs)
    quant = [n for n in a if a[n][1] == gguf_writer.TYPES[t][0]]
    diff = [n for n in a if n not in b or a[n][:2] != b[n][:2] or a[n][2] != b[n][2]]
    if diff:
        say(f"{T}: {len(diff)} of {len(a)} tensors differ from llama.cpp's own quantizer "
            f"(llama_model_quantize), first {diff[0]}: the two engines' quantized weights are "
            "not the same")
    else:
        say(f"{T}: all {len(a)} tensors ({len(quant)} of them {T}) are byte for byte what "
            "llama.cpp's own quantizer (llama_model_quantize) writes")


def prompt_ids(build: str, P: int, V: int) -> str:
    """A file of P ids: the bytes of TEXT, as bench.c's prompt."""
    path = os.path.join(build, f"prompt-{P}.txt")
    with open(path, "w") as f:
        f.write(" ".join(str(TEXT[i % len(TEXT)] % V) for i in range(P)) + "\n")
    return path


TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run(cmd: list, timeout: float) -> dict:
    """One engine run: {ids, prefill, decode, engine, rss_mib} or {error}."""
    name = os.path.basename(cmd[0])
    if TIME:
        cmd = [TIME, "-f", "peak_rss_kb %M"] + cmd
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"{name} took over {timeout:.0f} s (a busy machine?)"}
    out = {"error": None}
    for line in r.stdout.splitlines():
        key, _, rest = line.partition(" ")
        if key == "ids":
            out["ids"] = [int(v) for v in rest.split()]
        elif key in ("prefill_tokens_per_s", "decode_tokens_per_s", "load_s"):
            out[key.split("_")[0]] = float(rest)
        elif key == "engine":
            out["engine"] = rest.strip()
        elif key == "todo":
            return {"error": f"skipped: {rest.strip()} has a TODO"}
    for line in r.stderr.splitlines():
        if line.startswith("peak_rss_kb "):
            out["rss_mib"] = int(line.split()[1]) / 1024
    if r.returncode != 0 or "ids" not in out:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        out["error"] = f"{name} exited {r.returncode}: {tail}"
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
    ap.add_argument("--real", action="store_true",
                    help="Qwen3-30B-A3B's layer shape in bf16, q8_0 and q4_0, at 2 and 4 layers, "
                         "extrapolated to 48")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--prompt", type=int, default=None)
    ap.add_argument("--decode", type=int, default=None)
    ap.add_argument("--threads", default=None, help="thread counts, e.g. 1,2 (default: 1 and 2)")
    ap.add_argument("--cc", default="cc")
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "llamacpp"))
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    rounds = a.rounds or (1 if a.quick or a.real else 3)
    P = a.prompt or (32 if a.quick or a.real else 128)
    N = a.decode or (16 if a.quick or a.real else 64)
    threads = [int(t) for t in a.threads.split(",")] if a.threads else \
        ([1, 2] if (os.cpu_count() or 1) >= 2 else [1])

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
    if a.real:
        return real_shape(a, driver, backends, release, rounds, P, N, threads)
    model, ggufs = weights(a.build, "quick" if a.quick else "small", GGUF_TYPES)
    for t in ("q8_0", "q4_0"):
        same_quantized(driver, ggufs, t)
    engines = [("moekit f32", [a.moekit, model]), ("moekit bf16", [a.moekit, model, "--weights", "bf16"])] + \
              [(f"moekit {t}", [a.moekit, moekit_quantized(a.moekit, model, t), "--weights", "auto"])
               for t in MOEKIT_TYPES[1:]] + \
              [(f"llama.cpp {t}", [driver, ggufs[t], "--backends", backends]) for t in GGUF_TYPES]
    pairs = [("moekit f32", f"llama.cpp {t}") for t in GGUF_TYPES] + \
            [(f"moekit {t}", f"llama.cpp {t}") for t in MOEKIT_TYPES]
    ids_path = announce(a.build, model, release, P, N, rounds, threads)
    samples = time_rounds(engines, threads, rounds, ["--ids", ids_path, "--decode", str(N)],
                          30 if a.quick else 120)
    med = medians(samples)
    table(med, engines, threads, P, N, rounds)
    mismatch, checks = id_check(med, [n for n, _ in engines], threads, "moekit f32")
    ratios = ratio_lines(med, pairs, threads, ("decode", "prefill"))
    if mismatch:
        say("\nMISMATCH: moekit and llama.cpp decode different greedy ids from the same f32 "
            "weights and prompt.\nOne engine or harness/pytorch/gguf_writer.py is wrong; "
            f"the checkpoint is {model}.")
    write_json(a.json, release, model, P, N, rounds, med, engines, threads, checks, ratios)
    return 1 if mismatch else 0


def announce(build: str, model: str, release: str, P: int, N: int, rounds: int,
             threads: list) -> str:
    """Prints the model and the plan; returns the prompt ids' file."""
    with open(os.path.join(model, "config.json")) as f:
        cfg = json.load(f)
    say(f"model {model}: hidden {cfg['hidden_size']}, {cfg['num_hidden_layers']} layers, "
        f"{cfg['num_experts']} experts top-{cfg['num_experts_per_tok']} of "
        f"{cfg['moe_intermediate_size']}, vocab {cfg['vocab_size']}; llama.cpp {release}")
    say(f"timing: prompt {P} ids, greedy decode {N}, {rounds} round(s) of every engine at "
        f"{' and '.join(map(str, threads))} thread(s), interleaved ...")
    return prompt_ids(build, P, cfg["vocab_size"])


def medians(samples: dict) -> dict:
    """{(engine, threads): {prefill, decode, load, ids, rss_mib}} over the runs without error."""
    med = {}
    for key, rs in samples.items():
        ok = [r for r in rs if not r["error"]]
        if ok:
            med[key] = {k: statistics.median(r[k] for r in ok)
                        for k in ("prefill", "decode", "load") if all(k in r for r in ok)}
            med[key]["ids"] = ok[0]["ids"]
            if all("rss_mib" in r for r in ok):
                med[key]["rss_mib"] = max(r["rss_mib"] for r in ok)
    return med


def table(med: dict, engines: list, threads: list, P: int, N: int, rounds: int) -> None:
    names = [n for n, _ in engines]
    say(f"\ntokens/s, median of {rounds} round(s) (prefill of {P}, decode of {N}); load in s")
    say(f"{'threads':>7} {'phase':<8}" + "".join(f" {n:>15}" for n in names))
    for t in threads:
        for phase in ("prefill", "decode", "load"):
            cells = [f"{med[(n, t)][phase]:15.{3 if phase == 'load' else 1}f}"
                     if phase in med.get((n, t), {}) else f"{'-':>15}" for n in names]
            say(f"{t:>7} {phase:<8}" + "".join(" " + c for c in cells))
    if any("rss_mib" in v for v in med.values()):
        cells = [f"{max(med[(n, t)].get('rss_mib', 0) for t in threads if (n, t) in med):15.0f}"
                 if any((n, t) in med for t in threads) else f"{'-':>15}" for n in names]
        say(f"{'peak RSS MiB':<16}" + "".join(" " + c for c in cells))


def id_check(med: dict, names: list, threads: list, ref_name: str) -> tuple:
    """(mismatch, checks): every engine's greedy ids against ref_name's. Only moekit f32
    against llama.cpp f32 is an error (the same numbers, in float32 on both sides)."""
    mismatch, checks = False, []
    say(f"\ngreedy ids against {ref_name}'s:")
    for t in threads:
        ref = med.get((ref_name, t))
        for n in [n for n in names if n.startswith("llama.cpp")] + \
                 [n for n in names if n.startswith("moekit") and n != ref_name]:
            m = med.get((n, t))
            if not ref or not m:
                continue
            d = first_difference(ref["ids"], m["ids"])
            checks.append({"engine": n, "threads": t, "same": d < 0, "first_difference": d})
            if d < 0:
                say(f"  {n:<15} {t} thread(s): the same {len(ref['ids'])} ids")
            elif n == "llama.cpp f32" and ref_name == "moekit f32":
                mismatch = True
                say(f"  {n:<15} {t} thread(s): MISMATCH at decoded id {d}: moekit "
                    f"{ref['ids'][d:d + 8]} ..., llama.cpp {m['ids'][d:d + 8]} ...")
            else:
                say(f"  {n:<15} {t} thread(s): differ from decoded id {d} on (rounded "
                    f"{'weights' if 'q8' in n or 'q4' in n else 'activations'}; not an error)")
    return mismatch, checks


def ratio_lines(med: dict, pairs: list, threads: list, phases: tuple, suffix: str = "") -> dict:
    """{key: moekit / llama.cpp} for each pair, phase and thread count; printed."""
    ratios = {}
    say(f"\n{'ratio':<48} {'measured':>9}  what")
    for t in threads:
        for phase in phases:
            for mine, theirs in pairs:
                key = (f"{phase}_{mine.replace('moekit ', 'moekit_')}_vs_"
                       f"{theirs.replace('llama.cpp ', 'llamacpp_')}_{t}t{suffix}")
                mk, ll = med.get((mine, t), {}), med.get((theirs, t), {})
                if phase in mk and phase in ll:
                    # speeds: moekit / llama.cpp; a time (load): llama.cpp / moekit, so
                    # that above 1 always means moekit does better
                    ratios[key] = ll[phase] / mk[phase] if phase == "load" else mk[phase] / ll[phase]
                    what = "load time, llama.cpp / moekit" if phase == "load" else \
                        f"{phase} tokens/s, moekit / llama.cpp"
                    say(f"{key:<48} {ratios[key]:9.2f}  {what} ({mine} vs {theirs}), "
                        f"{t} thread(s)")
    return ratios


def write_json(path, release, model, P, N, rounds, med, engines, threads, checks, ratios,
               extra=None) -> None:
    if not path:
        return
    with open(path, "w") as f:
        json.dump(dict({"package": PACKAGE, "llama_cpp_release": release, "model": model,
                        "prompt_tokens": P, "decode_tokens": N, "rounds": rounds,
                        "results": {f"{n} {t}t": med.get((n, t), {}) for n, _ in engines
                                    for t in threads},
                        "ids_check": checks, "ratios": ratios}, **(extra or {})), f, indent=1)
    say(f"\nwrote {path}")


# ---------------------------------------------------------------------------------------------
# --real: Qwen3-30B-A3B's layer shape, two layer counts, extrapolated to its 48 layers
# ---------------------------------------------------------------------------------------------

REAL_LAYERS = (2, 4)
REAL_TYPES = ["bf16", "q8_0", "q4_0"]
QWEN3_30B_LAYERS = 48  # num_hidden_layers in Qwen/Qwen3-30B-A3B's config.json


def real_shape(a, driver, backends, release, rounds, P, N, threads) -> int:
    """Times every engine at 2 and at 4 layers, then fits time per token = fixed + L x
    per-layer (fixed: the embedding row and the LM head) and extrapolates to 48 layers."""
    med_by_L, engines = {}, None
    for L in REAL_LAYERS:
        model, ggufs = weights(a.build, "real", REAL_TYPES, layers=L, dtype="bf16")
        # moekit bf16 runs the file's bf16 in place (auto), q8_0 and q4_0 their `moekit
        # quantize` copies in place: the same quantizers as the GGUF files' (the small run
        # checks them against llama.cpp's own)
        engines = [("moekit bf16", [a.moekit, model, "--weights", "auto"])] + \
                  [(f"moekit {t}", [a.moekit, moekit_quantized(a.moekit, model, t), "--weights",
                                    "auto"]) for t in REAL_TYPES[1:]] + \
                  [(f"llama.cpp {t}", [driver, ggufs[t], "--backends", backends])
                   for t in REAL_TYPES]
        ids_path = announce(a.build, model, release, P, N, rounds, threads)
        samples = time_rounds(engines, threads, rounds, ["--ids", ids_path, "--decode", str(N)],
                              900)
        med_by_L[L] = medians(samples)
        table(med_by_L[L], engines, threads, P, N, rounds)
        rss_of_file(med_by_L[L], model, threads, P + N + 1)
        id_check(med_by_L[L], [n for n, _ in engines], threads, "moekit bf16")
    pairs = [(f"moekit {t}", f"llama.cpp {t}") for t in REAL_TYPES]
    for L in REAL_LAYERS:
        say(f"\nat {L} layers:")
        ratio_lines(med_by_L[L], pairs, threads, ("decode", "prefill", "load"), f"_{L}layers")
    est = extrapolate(med_by_L, [n for n, _ in engines], threads)
    ratios = ratio_lines(est, pairs, threads, ("decode", "prefill", "load"),
                         f"_{QWEN3_30B_LAYERS}layers")
    write_json(a.json, release, "real", P, N, rounds, est, engines, threads, [], ratios,
               {"measured": {f"{L} layers": {f"{n} {t}t": m for (n, t), m in med_by_L[L].items()}
                             for L in REAL_LAYERS}})
    return 0


def rss_of_file(med: dict, model: str, threads: list, positions: int) -> None:
    """moekit bf16's peak RSS against its file: the bar is 1.1 x the file + the KV cache."""
    rss = [med[("moekit bf16", t)]["rss_mib"] for t in threads
           if "rss_mib" in med.get(("moekit bf16", t), {})]
    if not rss:
        return
    with open(os.path.join(model, "config.json")) as f:
        c = json.load(f)
    kv = 2 * c["num_hidden_layers"] * c["num_key_value_heads"] * c["head_dim"] * 4 * positions
    size = os.path.getsize(os.path.join(model, "model.safetensors"))
    say(f"moekit bf16 peak RSS {max(rss):.0f} MiB = {max(rss) * 2**20 / size:.2f} x the file "
        f"({size / 2**20:.0f} MiB); its KV cache of {positions} positions is {kv / 2**20:.1f} "
        f"MiB (the bar: 1.1 x the file + the KV cache)")


def extrapolate(med_by_L: dict, names: list, threads: list) -> dict:
    """Seconds per token (and load seconds, peak RSS) are a + b L; the line through the two
    layer counts, evaluated at 48 layers. Printed as a table; returned like medians()."""
    L1, L2 = REAL_LAYERS
    est = {}
    say(f"\nextrapolated to Qwen3-30B-A3B's {QWEN3_30B_LAYERS} layers (a line through "
        f"{L1} and {L2} layers):")
    say(f"{'engine':<16} {'threads':>7} {'prefill tok/s':>14} {'decode tok/s':>13} "
        f"{'decode ms/layer':>16} {'load s':>7} {'peak RSS GiB':>13}")
    for n in names:
        for t in threads:
            m1, m2 = med_by_L[L1].get((n, t)), med_by_L[L2].get((n, t))
            if not m1 or not m2:
                continue
            line = lambda v1, v2: v1 + (QWEN3_30B_LAYERS - L1) * (v2 - v1) / (L2 - L1)  # noqa
            if 1 / m2["decode"] <= 1 / m1["decode"] or 1 / m2["prefill"] <= 1 / m1["prefill"]:
                say(f"{n:<16} {t:>7} not extrapolated: {L2} layers ran as fast as {L1} or "
                    "faster (a busy machine, or pages read from disk): rerun it idle")
                continue
            e = {p: 1 / line(1 / m1[p], 1 / m2[p]) for p in ("prefill", "decode")}
            e["load"] = line(m1["load"], m2["load"])
            per_layer_ms = 1e3 * (1 / m2["decode"] - 1 / m1["decode"]) / (L2 - L1)
            if "rss_mib" in m1 and "rss_mib" in m2:
                e["rss_mib"] = line(m1["rss_mib"], m2["rss_mib"])
            est[(n, t)] = e
            rss = f"{e['rss_mib'] / 1024:13.1f}" if "rss_mib" in e else f"{'-':>13}"
            say(f"{n:<16} {t:>7} {e['prefill']:14.2f} {e['decode']:13.2f} {per_layer_ms:16.2f} "
                f"{e['load']:7.2f} {rss}")
    return est


if __name__ == "__main__":
    sys.exit(main())
