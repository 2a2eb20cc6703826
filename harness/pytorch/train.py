"""Trains the kit's demo model: a byte-level Qwen3-MoE on Debian's fortune cookies.

    nice -n 5 /usr/bin/python3 harness/pytorch/train.py --minutes 50 --out data/model

Writes OUT/config.json + OUT/model.safetensors (float32, Hugging Face layout),
OUT/train_log.tsv and the model card OUT/README.md (held-out bits per byte, samples).
The held-out files go to --corpus-out (data/corpus): corpus.py explains the split.

Tokens are UTF-8 bytes (vocab_size 256, no special ids). Training windows are ctx+1 bytes
at uniformly random offsets of the training stream (fortunes in fortune file layout,
every one followed by "%\\n"); the loss is next-byte cross-entropy plus aux_coef times the
load-balancing loss (model.load_balancing_loss), plus --z-loss times the router z-loss
(model.router_z_loss) when it is set. AdamW, linear warmup then cosine decay to
min_lr; with --minutes the cosine runs over wall-clock time (stop when the time is up),
with --steps over steps (reproducible: the same seed gives the same model).

Held-out bits per byte (what the C `perplexity` tool reproduces, see heldout_nll):
each fortune of data/corpus/heldout-LANG.txt is scored on its own, as the byte sequence
"%\\n" + fortune cut to the first max_position_embeddings bytes, starting at position 0
with an empty cache; every byte after the two-byte "%\\n" prefix is scored, each given all
bytes before it in that sequence. bpb = (sum of -ln p(byte)) / (scored bytes) / ln 2.
"""

import argparse
import datetime
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402
import model as moe  # noqa: E402

PREFIX = corpus.SEPARATOR.encode()  # b"%\n": what precedes every fortune
# --balance: none; the f*P loss pooled over the layers (Hugging Face); per layer (Switch,
# ST-MoE); per layer with f over the whole step (global-batch, Qwen3); DeepSeek-V3's bias.
BALANCE = ("pooled", "per-layer", "global-batch", "bias", "none")
# how the model card names each --balance
BALANCE_WORDS = {
    "pooled": "Hugging Face's form, one E * sum f * P loss over the tokens of all MoE layers "
              "pooled together",
    "per-layer": "one E * sum f * P loss per MoE layer, averaged over the layers (Switch "
                 "Transformers, ST-MoE)",
    "global-batch": "one E * sum f * P loss per MoE layer (averaged), f counted over the whole optimizer "
                    "step (every micro-batch) and P from each micro-batch: the global-batch "
                    "loss Qwen3 was trained with (Qiu et al. 2025)",
    "bias": "none in the loss (the term is logged only): DeepSeek-V3's per-expert selection "
            "bias does the balancing",
    "none": "logged only, not in the loss",
}
# --router: topk (Qwen3-MoE, the default), switch (top-1, Fedus et al. 2021) and
# model.ROUTERS's variants (noisy-topk, dense, shared, deepseek-moe, expert-choice,
# soft-moe), and noisy-warmup: noisy-topk with the noise during the warm-up steps only
ROUTERS = ("topk", "switch") + tuple(r for r in moe.ROUTERS if r != "topk") + ("noisy-warmup",)
# routers that mix the tokens of a sequence (model.py): not causal
MIXING = ("expert-choice", "soft-moe")
SAMPLE_PROMPTS = {"en": "The ", "de": "Der ", "es": "El ", "it": "Il ", "ru": "Жизнь "}


def default_threads() -> int:
    """ATen's thread count. Debian's torch has no MKL: its matmuls call OpenBLAS, which
    runs its own pthread pool on every core (OPENBLAS_NUM_THREADS). A second, OpenMP pool
    for ATen's element-wise ops then fights it for the cores: on 2 cores, torch threads=2
    trains 3x slower than threads=1. With MKL, matmuls use ATen's pool: take every core."""
    return os.cpu_count() if torch.backends.mkl.is_available() else 1


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    run = ap.add_argument_group("run")
    run.add_argument("--out", required=True, help="model directory to write")
    run.add_argument("--corpus-out", default="data/corpus", help="where heldout-LANG.txt go")
    run.add_argument("--minutes", type=float, default=50.0, help="training time budget")
    run.add_argument("--steps", type=int, default=0,
                     help="train exactly this many steps instead of --minutes")
    run.add_argument("--seed", type=int, default=1234)
    run.add_argument("--threads", type=int, default=default_threads(),
                     help="ATen threads (default: %(default)s, see default_threads)")
    run.add_argument("--log-every", type=int, default=20, help="steps per progress line")
    run.add_argument("--eval-fortunes", type=int, default=0,
                     help="score only the first N held-out fortunes per language (0: all)")
    run.add_argument("--eval-causal", type=int, default=0, metavar="N",
                     help="also score the first N held-out fortunes per language one prefix "
                          "at a time, as generation sees them (key 'causal' of heldout_bpb.json)")
    run.add_argument("--no-samples", action="store_true",
                     help="skip the greedy samples (the slowest part of a short run's end)")
    tune = ap.add_argument_group("fine-tuning")
    tune.add_argument("--init", help="start from this checkpoint directory (its config "
                                     "replaces the architecture flags)")
    tune.add_argument("--text", help="train on this fortune file instead of the corpus: "
                                     "one fortune in 5 (by hash) held out, written to "
                                     "--corpus-out as heldout-NAME.txt")
    tune.add_argument("--trainable", choices=("all", "routers"), default="all",
                      help="routers: freeze every weight but the routers (mlp.gate)")
    tune.add_argument("--unfreeze-expert", action="append", default=[], metavar="L:E",
                      help="with --trainable routers: train layer L's expert E too")
    opt = ap.add_argument_group("optimisation")
    opt.add_argument("--batch", type=int, default=16, help="sequences per step")
    opt.add_argument("--ctx", type=int, default=256,
                     help="training sequence length = max_position_embeddings")
    opt.add_argument("--lr", type=float, default=3e-3)
    opt.add_argument("--min-lr", type=float, default=3e-4)
    opt.add_argument("--warmup", type=int, default=100, help="warmup steps")
    opt.add_argument("--weight-decay", type=float, default=0.1)
    opt.add_argument("--aux-coef", type=float, default=0.01,
                     help="load-balancing loss coefficient (0: none, experts may collapse)")
    opt.add_argument("--micro-batches", type=int, default=1,
                     help="split each step's --batch into this many gradient-accumulation "
                          "micro-batches (the balance losses but global-batch see one each)")
    opt.add_argument("--balance", choices=BALANCE, default="pooled",
                     help="how routing is balanced (see balance_loss): %(default)s")
    opt.add_argument("--bias-rate", type=float, default=0.001,
                     help="--balance bias: the bias update speed (DeepSeek-V3's gamma)")
    opt.add_argument("--z-loss", type=float, default=0.0, metavar="COEF",
                     help="router z-loss coefficient (ST-MoE, Zoph et al. 2022, eq. 5; "
                          "they use 0.001): %(default)s")
    run.add_argument("--log-router", action="store_true",
                     help="write OUT/router_log.tsv: every step's loss, z-loss and per MoE "
                          "layer the mean max |router logit| and mean logsumexp")
    arch = ap.add_argument_group("architecture (Qwen3-MoE)")
    arch.add_argument("--hidden", type=int, default=160)
    arch.add_argument("--layers", type=int, default=4)
    arch.add_argument("--heads", type=int, default=4)
    arch.add_argument("--kv-heads", type=int, default=2)
    arch.add_argument("--head-dim", type=int, default=32)
    arch.add_argument("--experts", type=int, default=8)
    arch.add_argument("--top-k", type=int, default=2)
    arch.add_argument("--router", choices=ROUTERS, default="topk",
                      help="routing variant (see make_config, model.ROUTERS): %(default)s")
    arch.add_argument("--moe-inter", type=int, default=192)
    arch.add_argument("--dense-inter", type=int, default=0,
                      help="the dense layer's intermediate_size (0: top_k * moe_inter)")
    arch.add_argument("--dense-layers", default="0",
                      help="comma list for mlp_only_layers ('' for none)")
    a = ap.parse_args(argv)
    if a.micro_batches < 1 or a.batch % a.micro_batches:
        ap.error(f"--micro-batches {a.micro_batches} must divide --batch {a.batch}")
    if a.z_loss < 0:
        ap.error(f"--z-loss {a.z_loss}: must be >= 0")
    if a.router == "shared" and a.top_k < 2:
        ap.error("--router shared: --top-k must be at least 2 (one slot goes to the shared expert)")
    return a


def make_config(a) -> dict:
    """The config.json of the model the arguments describe (transformers 4.x spelling).
    --router switch is Qwen3-MoE at k = 1 without renormalisation (renormalised, the one
    weight would be 1 and the router get no gradient); --router shared keeps the experts
    run per token at --top-k: the shared expert + top-(k-1) routed (DeepSeekMoE, Dai et
    al. 2024, section 3.2, which also subtracts the shared experts from the routed k);
    --router deepseek-moe splits every expert in two (2E experts of moe_inter / 2, their
    section 3.1, fine-grained segmentation with m = 2), so the 2k half-width experts a
    token runs cost what k full ones did, and makes k of them shared (section 3.2)."""
    cfg = base_config(a)
    if a.router == "switch":
        cfg.update(num_experts_per_tok=1, norm_topk_prob=False)
    elif a.router == "noisy-warmup":  # the same model; train() stops the noise
        cfg["router"] = "noisy-topk"
    elif a.router != "topk":
        cfg["router"] = a.router
    if a.router == "shared":
        cfg["num_experts_per_tok"] = a.top_k - 1
    if a.router == "deepseek-moe":  # each expert split in two, half of the 2k on always
        cfg.update(num_experts=2 * a.experts, moe_intermediate_size=a.moe_inter // 2,
                   num_experts_per_tok=a.top_k, num_shared_experts=a.top_k)
    if a.router == "soft-moe":  # as many slot rows as top-k runs on a training window,
        per_expert = -(-a.ctx * a.top_k // a.experts)  # rounded up to a multiple of E
        cfg["soft_moe_slots"] = per_expert * a.experts
    return cfg


def base_config(a) -> dict:
    """make_config's Qwen3-MoE with the default router."""
    return {
        "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
        "vocab_size": 256, "hidden_size": a.hidden, "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads, "num_key_value_heads": a.kv_heads,
        "head_dim": a.head_dim,
        "intermediate_size": a.dense_inter or a.top_k * a.moe_inter,
        "moe_intermediate_size": a.moe_inter, "num_experts": a.experts,
        "num_experts_per_tok": a.top_k, "norm_topk_prob": True, "decoder_sparse_step": 1,
        "mlp_only_layers": [int(l) for l in a.dense_layers.split(",") if l],
        "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "max_position_embeddings": a.ctx,
        "tie_word_embeddings": True, "router_aux_loss_coef": a.aux_coef if a.balance not in ("none", "bias") else 0.0,
        # byte-level: no special tokens; a fortune starts after b"%\n" and ends with b"\n%\n"
        "bos_token_id": None, "eos_token_id": None,
    }


def lr_at(a, step: int, progress: float) -> float:
    """Linear warmup over a.warmup steps, then cosine from a.lr to a.min_lr as progress
    (fraction of the run done, 0..1) goes from 0 to 1. The schedule is nanoGPT's get_lr
    (Andrej Karpathy, train.py, MIT licence), with the decay driven by progress."""
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    return a.min_lr + 0.5 * (a.lr - a.min_lr) * (1 + math.cos(math.pi * min(progress, 1.0)))


def make_optimizer(model, a):
    """AdamW over the trainable parameters; weight decay on matrices only (norm gains are
    scales, not features). The grouping by p.dim() and betas (0.9, 0.95) follow nanoGPT's
    configure_optimizers."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    keep = [p for p in params if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                              {"params": keep, "weight_decay": 0.0}],
                             lr=a.lr, betas=(0.9, 0.95), eps=1e-8)


def sample_batch(stream: torch.Tensor, batch: int, ctx: int, g: torch.Generator):
    """stream (S) uint8 -> inputs, targets (batch, ctx) long: windows at random offsets."""
    starts = torch.randint(0, len(stream) - ctx - 1, (batch,), generator=g)
    windows = torch.stack([stream[s:s + ctx + 1] for s in starts.tolist()]).long()
    return windows[:, :-1], windows[:, 1:]


def freeze(model, trainable: str, experts: list) -> int:
    """--trainable routers: only the routers (model.layers.L.mlp.gate.weight) and the
    experts listed ("L:E") keep requires_grad. -> the number of trainable parameters."""
    if experts and trainable != "routers":
        raise SystemExit("train.py: --unfreeze-expert goes with --trainable routers")
    if trainable == "routers":
        keep = {f"model.layers.{l}.mlp.experts.{e}." for l, e in
                (x.split(":") for x in experts)}
        for name, p in model.named_parameters():
            p.requires_grad = name.endswith(".mlp.gate.weight") or \
                any(name.startswith(k) for k in keep)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    for x in experts:
        if not any(n.startswith(f"model.layers.{x.replace(':', '.mlp.experts.')}.")
                   for n in names):
            raise SystemExit(f"train.py: --unfreeze-expert {x}: no such expert, or "
                             "without --trainable routers")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def domain_split(path: str, every: int = 5):
    """--text: a fortune file -> (training bytes, held-out fortunes (str)): one fortune in
    `every` held out by corpus.heldout_key, so the split depends on the text only."""
    with open(path, encoding="utf-8") as f:
        fortunes = corpus.split_fortunes(corpus.clean(f.read()))
    held = [f for f in fortunes if corpus.heldout_key(f) % every == 0]
    return corpus.join([f for f in fortunes if corpus.heldout_key(f) % every]), held


def selection_biases(model) -> list:
    """The sparse layers' SparseMoeBlock.selection_bias (E) tensors, or Nones."""
    return [layer.mlp.selection_bias for layer in model.model.layers if layer.sparse]


def expert_counts(router_logits: list, k: int, num_experts: int, biases=None) -> torch.Tensor:
    """-> (sparse layers, E) long: top-k assignments per expert, per layer, chosen as the
    model chooses them (moe.route: by probs + bias where a layer has a selection bias)."""
    biases = biases or [None] * len(router_logits)
    return torch.stack([
        torch.bincount(moe.route(l, k, False, b)[1].reshape(-1), minlength=num_experts)
        for l, b in zip(router_logits, biases)])


def balance_loss(kind: str, router_logits: list, k: int, E: int, step_counts=None):
    """The load-balancing loss of one micro-batch, each form E * sum_e f_e * P_e with
    f_e = (top-k assignments to e) / (routed tokens), P_e = mean router probability of e
    (k when balanced, E when every token goes to the same k experts):
      pooled:       one loss over the tokens of all layers together: transformers'
                    load_balancing_loss_func concatenates every layer's router logits;
      per-layer:    one loss per layer (Switch Transformers, Fedus et al. 2021, section
                    2.2: an auxiliary loss "for each Switch layer"), averaged over the
                    layers here so that the coefficient means the same as pooled's;
      global-batch: per layer, f from the counts of the whole optimizer step
                    (step_counts (layers, E), every micro-batch), P from this micro-batch:
                    Qwen3's global-batch loss (Qiu et al. 2025, "Demons in the Detail");
      none, bias:   no loss (bias balances through the selection bias instead).
    """
    if kind == "pooled":
        return moe.load_balancing_loss(router_logits, k, E)
    if kind == "per-layer":
        return torch.stack([moe.load_balancing_loss([l], k, E) for l in router_logits]).mean()
    if kind == "global-batch":
        P = torch.stack([l.float().softmax(dim=-1).mean(dim=0) for l in router_logits])
        f = step_counts.float() / step_counts.sum(dim=1, keepdim=True) * k  # sums to k
        return E * (f * P).sum(dim=1).mean()
    return router_logits[0].new_zeros(())


@torch.no_grad()
def update_biases(biases: list, counts: torch.Tensor, rate: float) -> None:
    """DeepSeek-V3, section 2.1.2: after each step, an overloaded expert's bias goes down
    by rate, an underloaded one's up (the sign of mean load - its load)."""
    for b, c in zip(biases, counts.float()):
        b += rate * torch.sign(c.mean() - c)


def router_stats(router_logits: list) -> list:
    """--log-router: per layer, logits (N, E) -> [mean over tokens of max_e |logit|,
    mean over tokens of logsumexp(logits)], flattened layer after layer."""
    return [v for l in router_logits for v in
            (l.abs().max(dim=-1).values.mean().item(), torch.logsumexp(l, -1).mean().item())]


def train_step(model, opt, stream, a, g, k: int, E: int, stats=None):
    """One optimizer step over a.micro_batches micro-batches. Each micro-batch's graph is
    kept until the step's one backward pass (the model is small): the same gradient as a
    backward per micro-batch, and the global-batch loss can use the whole step's counts.
    -> (LM loss, balance loss, tokens, counts (layers, E)), the first two averaged.
    stats (a list) or None: gets the step's z-loss and the first micro-batch's
    router_stats."""
    biases = selection_biases(model)
    micro = [sample_batch(stream, a.batch // a.micro_batches, a.ctx, g)
             for _ in range(a.micro_batches)]
    outs = [model(x) for x, _ in micro]
    counts = sum(expert_counts([l.detach() for l in rl], k, E, biases) for _, rl in outs)
    loss = sum(F.cross_entropy(lg.reshape(-1, lg.shape[-1]), y.reshape(-1))
               for (lg, _), (_, y) in zip(outs, micro)) / a.micro_batches
    aux = sum(balance_loss(a.balance, rl, k, E, counts) for _, rl in outs) / a.micro_batches
    total = loss + a.aux_coef * aux
    if a.z_loss or stats is not None:
        z = sum(moe.router_z_loss(rl) for _, rl in outs) / a.micro_batches
        total = total + a.z_loss * z if a.z_loss else total
        if stats is not None:
            stats[:] = [z.item()] + router_stats([l.detach() for l in outs[0][1]])
    opt.zero_grad(set_to_none=True)
    total.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    if a.balance == "bias":
        update_biases(biases, counts, a.bias_rate)
    return loss, aux, a.batch * a.ctx, counts


def fmt_time(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def set_noise(model, on: bool) -> None:
    """Router noisy-topk's noise on or off in every MoE layer (--router noisy-warmup: on
    for the warm-up steps only, the "noisy warm-up" that MoE notes describe)."""
    for layer in model.model.layers:
        if layer.sparse:
            layer.mlp.add_noise = on


def train(model, stream: torch.Tensor, a, log_path: str) -> dict:
    """The training loop. Prints a progress line and appends a row to log_path (TSV) every
    a.log_every steps, averaged over those steps; max_expert_share is the largest share of
    the top-k assignments one expert got in one layer (1/E balanced, 1/k collapsed).
    Returns {"steps", "tokens", "seconds", "loss", "aux_loss"} (the last logged averages).
    """
    cfg = model.config
    k, E = cfg["num_experts_per_tok"], cfg["num_experts"]
    opt = make_optimizer(model, a)
    g = torch.Generator().manual_seed(a.seed + 1)  # data order, independent of the init
    budget = a.minutes * 60.0
    t0 = time.time()
    t_window, step, tokens = t0, 0, 0
    window = {"loss": 0.0, "aux": 0.0, "steps": 0, "counts": 0}
    last = {"loss": float("nan"), "aux_loss": float("nan")}
    log = open(log_path, "w")
    log.write("step\tloss\taux_loss\tlr\ttokens_per_s\tmax_expert_share\n")
    rlog, stats = None, None
    if a.log_router:
        rlog, stats = open(os.path.join(os.path.dirname(log_path), "router_log.tsv"), "w"), []
        sparse = [l for l in range(cfg["num_hidden_layers"]) if moe.is_sparse_layer(cfg, l)]
        rlog.write("step\tloss\tz_loss" + "".join(f"\tmaxabs_{l}\tlse_{l}" for l in sparse)
                   + "\n")
    model.train()
    while True:
        progress = step / a.steps if a.steps else (time.time() - t0) / budget
        if progress >= 1.0:
            break
        lr = lr_at(a, step, progress)
        for group in opt.param_groups:
            group["lr"] = lr
        set_noise(model, a.router != "noisy-warmup" or step < a.warmup)
        loss, aux, n, counts = train_step(model, opt, stream, a, g, k, E, stats)
        step += 1
        if rlog:
            rlog.write(f"{step}\t{loss.item():.5f}\t" + "\t".join(f"{v:.5f}" for v in stats)
                       + "\n")
        tokens += n
        window["loss"] += loss.item()
        window["aux"] += aux.item()
        window["steps"] += 1
        window["counts"] += counts
        if step % a.log_every == 0:
            now = time.time()
            tps = window["steps"] * n / (now - t_window)
            counts = window["counts"].float()
            share = (counts / counts.sum(dim=1, keepdim=True)).max().item()
            last = {"loss": window["loss"] / window["steps"],
                    "aux_loss": window["aux"] / window["steps"]}
            eta = (a.steps - step) * (now - t0) / step if a.steps else budget - (now - t0)
            print(f"step {step:6d}  loss {last['loss']:.4f}  aux {last['aux_loss']:.4f}  "
                  f"lr {lr:.2e}  {tps:6.0f} tok/s  max expert share {share:.2f}  "
                  f"elapsed {fmt_time(now - t0)}  eta {fmt_time(max(eta, 0))}", flush=True)
            log.write(f"{step}\t{last['loss']:.5f}\t{last['aux_loss']:.5f}\t{lr:.6g}\t"
                      f"{tps:.0f}\t{share:.4f}\n")
            log.flush()
            t_window = now
            window = {"loss": 0.0, "aux": 0.0, "steps": 0, "counts": 0}
    log.close()
    if rlog:
        rlog.close()
    return {"steps": step, "tokens": tokens, "seconds": time.time() - t0, **last}


@torch.no_grad()
def heldout_nll(model, fortunes: list, batch: int = 32):
    """Scores held-out fortunes the way the C `perplexity` tool does (module docstring).

    fortunes: list of bytes. Returns (sum of -ln p over scored bytes (float64), number of
    scored bytes, expert counts (sparse layers, E) over every input byte).
    """
    L = model.config["max_position_embeddings"]
    k, E = model.config["num_experts_per_tok"], model.config["num_experts"]
    if model.config.get("router") in MIXING:  # padding would be a later token they mix in
        batch = 1
    seqs = sorted(((PREFIX + f)[:L] for f in fortunes), key=len)  # similar lengths batch well
    nll, scored, counts = 0.0, 0, 0
    for i in range(0, len(seqs), batch):
        chunk = seqs[i:i + batch]
        T = max(len(s) for s in chunk) - 1
        ids = torch.zeros(len(chunk), T + 1, dtype=torch.long)  # right padding: causal, so
        for b, s in enumerate(chunk):                            # it never reaches a real byte
            ids[b, :len(s)] = torch.tensor(list(s))
        lengths = torch.tensor([len(s) for s in chunk])
        pos = torch.arange(T)
        real = pos[None, :] < (lengths[:, None] - 1)                   # (B, T) real inputs
        score = real & (pos[None, :] + 1 >= len(PREFIX))                # targets after "%\n"
        logits, router_logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.transpose(1, 2).double(), ids[:, 1:], reduction="none")
        nll += loss[score].sum().item()
        scored += int(score.sum())
        mask = real.reshape(-1)
        counts += expert_counts([l[mask] for l in router_logits], k, E,
                                selection_biases(model))
    return nll, scored, counts


@torch.no_grad()
def causal_nll(model, fortunes: list):
    """heldout_nll's score, but byte t is predicted from a forward pass over bytes 0..t-1
    only, as generation computes it: one pass per scored byte. For a causal model it equals
    heldout_nll's; for a router that mixes tokens (MIXING) the difference is what the
    teacher-forced figure gained from seeing later bytes. -> (nll, scored bytes)."""
    model.eval()
    L = model.config["max_position_embeddings"]
    nll, scored = 0.0, 0
    for f in fortunes:
        s = list((PREFIX + f)[:L])
        for t in range(len(PREFIX), len(s)):
            logits, _ = model(torch.tensor([s[:t]]))
            nll -= F.log_softmax(logits[0, -1].double(), dim=-1)[s[t]].item()
            scored += 1
    return nll, scored


def score(nll: float, n: int) -> dict:
    """{"bpb", "bytes", "nll"} of a sum of -ln p over n scored bytes."""
    return {"bpb": nll / n / math.log(2), "bytes": n, "nll": nll}


def score_languages(scorer, corpus_dir: str, limit: int, langs) -> dict:
    """{lang: score, ..., "all": byte-weighted over languages} of scorer(fortunes) ->
    (nll, n) on the first limit (0: all) held-out fortunes of each language."""
    result = {}
    for lang in langs:
        fortunes = corpus.read_heldout(os.path.join(corpus_dir, f"heldout-{lang}.txt"))
        result[lang] = score(*scorer(fortunes[:limit] if limit else fortunes))
    result["all"] = score(sum(r["nll"] for r in result.values()),
                          sum(r["bytes"] for r in result.values()))
    return result


def evaluate_causal(model, corpus_dir: str, limit: int, langs=corpus.LANGS) -> dict:
    """{lang: {"bpb", "bytes", "nll"}, "all": ...} of causal_nll on the first limit fortunes."""
    return score_languages(lambda f: causal_nll(model, f), corpus_dir, limit, langs)


def evaluate(model, corpus_dir: str, limit: int = 0, langs=corpus.LANGS) -> dict:
    """-> {lang: {"bpb", "bytes", "nll"}, ..., "all": byte-weighted over languages,
    "expert_share": (sparse layers, E) list of the experts' share of held-out routing}."""
    model.eval()
    counts = []

    def scorer(fortunes):
        nll, n, c = heldout_nll(model, fortunes)
        counts.append(c)
        return nll, n
    result = score_languages(scorer, corpus_dir, limit, langs)
    total = sum(counts)
    result["expert_share"] = (total.double() / total.sum(dim=1, keepdim=True)).tolist()
    return result


def samples(model, max_new: int = 300) -> dict:
    """Greedy continuations of SAMPLE_PROMPTS, each started as a fresh fortune."""
    model.eval()
    out = {}
    for lang, prompt in SAMPLE_PROMPTS.items():
        ids = list(PREFIX + prompt.encode())
        new = moe.generate(model, ids, max_new, stop=list(b"\n%\n"))
        out[lang] = (prompt.encode() + bytes(new)).decode("utf-8", errors="replace")
    return out


def check_round_trip(model, out_dir: str) -> None:
    """load_hf(out_dir) must give the same logits as the model in memory."""
    back = moe.load_hf(out_dir)
    for layer, bias in zip((l for l in back.model.layers if l.sparse), selection_biases(model)):
        layer.mlp.selection_bias = bias  # not in the checkpoint (SparseMoeBlock)
    ids = torch.arange(64).reshape(2, 32) * 3 % 256
    model.eval()
    with torch.no_grad():
        if not torch.equal(model(ids)[0], back(ids)[0]):
            raise RuntimeError(f"{out_dir}: reloaded model gives different logits")


def model_card(model, a, stats, info, ev, texts, size) -> str:
    """The Markdown model card: what the model is, how it was trained and evaluated."""
    cfg = model.config
    n_params = sum(p.numel() for p in model.parameters())
    n_experts = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
    n_active = n_params - n_experts + n_experts * cfg["num_experts_per_tok"] // \
        cfg["num_experts"]  # a token runs k of the E experts
    langs = list(corpus.LANGS) + ["all"]
    bpb_rows = "\n".join(f"| {l} | {ev[l]['bpb']:.4f} | {ev[l]['bytes']} |" for l in langs)
    macro = sum(ev[l]["bpb"] for l in corpus.LANGS) / len(corpus.LANGS)
    share_rows = "\n".join(
        f"| {l} | " + " | ".join(f"{s:.3f}" for s in shares) + " |"
        for l, shares in zip([l for l in range(cfg["num_hidden_layers"])
                              if moe.is_sparse_layer(cfg, l)], ev["expert_share"]))
    sample_text = "\n\n".join(f"{lang}, prompt `{SAMPLE_PROMPTS[lang]}`:\n\n```\n{t}\n```"
                               for lang, t in texts.items())
    command = " ".join(["/usr/bin/python3"] + [os.path.relpath(sys.argv[0])] + sys.argv[1:])
    E = cfg["num_experts"]
    return f"""# moekit demo model: a byte-level Qwen3-MoE that writes fortune cookies

A {n_params / 1e6:.2f} M-parameter Qwen3-MoE ({size / 1e6:.1f} MB float32) trained from
scratch on CPU on Debian's fortune cookies in English, German, Spanish, Italian and Russian.
It is the model the C lessons end with (`make run`), the one whose routing the plots show,
and small enough to run in the test suite. It is a toy: it babbles in the style of the
fortune files and knows next to nothing.

Files: `config.json` (transformers 4.x spelling), `model.safetensors` (float32, Hugging Face
hub key names, embeddings tied to the LM head so there is no `lm_head.weight`),
`train_log.tsv` (step, loss, aux_loss, lr, tokens_per_s, max_expert_share: the largest
share of top-k assignments that one expert got in one layer, {1 / E:.3f} balanced),
`heldout_bpb.json` (the numbers below, for the C `perplexity` test).

## Model

| | |
|---|---|
| architecture | Qwen3MoeForCausalLM: QK-norm, rotate-half RoPE (theta {cfg['rope_theta']:g}) |
| layers | {cfg['num_hidden_layers']}, hidden size {cfg['hidden_size']} |
| attention | {cfg['num_attention_heads']} query heads, {cfg['num_key_value_heads']} key/value \
heads, head_dim {cfg['head_dim']} |
| MoE layers | {E} experts of moe_intermediate_size {cfg['moe_intermediate_size']}, \
top-{cfg['num_experts_per_tok']}, norm_topk_prob {str(cfg['norm_topk_prob']).lower()} |
| dense layers | mlp_only_layers {cfg['mlp_only_layers']}, intermediate_size \
{cfg['intermediate_size']} |
| context | {cfg['max_position_embeddings']} bytes (max_position_embeddings) |
| parameters | {n_params:,} ({n_active:,} used per token) |

Tokens are UTF-8 bytes: vocab_size 256, no special ids (bos/eos null). A fortune starts
after the two bytes `%\\n` and ends with `\\n%\\n`, as in the fortune files, so to generate a
fresh fortune feed `%\\n` (37, 10) and stop at `\\n%\\n`.

```json
{json.dumps(cfg, indent=2, sort_keys=True)}
```

`shared_expert_intermediate_size` is not a field of transformers' `Qwen3MoeConfig` (it is
Qwen2-MoE's); the kit's PyTorch trainer writes it, 0, and neither Hugging Face's Qwen3-MoE
model nor the C loader reads it.

## Data

Debian packages fortunes, fortunes-de, fortunes-es, fortunes-it, fortunes-ru (offensive
`off/` files excluded), cleaned and split by `harness/pytorch/corpus.py`: one fortune in 20
is held out, chosen by a hash of its text. The held-out files `data/corpus/heldout-LANG.txt`
keep the first ~60 KB of each language's held-out fortunes.

{corpus.format_stats(stats)}

## Training

{info['steps']} steps of {a.batch} x {a.ctx} bytes = {info['tokens'] / 1e6:.1f} M bytes
(~{info['tokens'] / sum(s['train_bytes'] for s in stats.values()):.1f} epochs) in
{info['seconds'] / 60:.1f} minutes on 2 CPU cores (torch {torch.__version__}, float32).
AdamW (betas 0.9/0.95, weight decay {a.weight_decay} on matrices), lr {a.lr:g} with
{a.warmup} warmup steps and cosine decay to {a.min_lr:g}, gradient clipping 1.0, seed
{a.seed}, {a.micro_batches} micro-batch(es) per step, --balance {a.balance}. Loss =
next-byte cross-entropy + {a.aux_coef:g} x load-balancing loss: {BALANCE_WORDS[a.balance]};
{cfg['num_experts_per_tok']} when balanced, at most {cfg['num_experts']} (train.py's
balance_loss has every form, and docs/experiments/balance-losses compares them).
Final training loss {info['loss']:.4f} nats/byte, aux loss {info['aux_loss']:.4f}.

The aux coefficient {a.aux_coef:g}: the Switch Transformer paper uses 0.01. Released configs
differ by family, not by the number of experts: Qwen3-30B-A3B ships 0.001 (128 experts;
Qwen3 trained with the global-batch form of the loss), OLMoE-1B-7B 0.01 (64 experts),
Mixtral-8x7B 0.02 (8 experts); lesson 06 has the sources. At
balance the aux loss is k = {cfg['num_experts_per_tok']}, so the term adds a constant
{a.aux_coef * cfg['num_experts_per_tok']:.3g} nats and only its gradient matters: a gentle
pull towards equal load. Without it (`--aux-coef 0`) the routing tends to collapse onto a
few experts.

## Held-out bits per byte

| language | bits per byte | scored bytes |
|---|---:|---:|
{bpb_rows}

"all" weights every scored byte equally; the plain mean over the five languages is
{macro:.4f}. How it is computed (the C `perplexity` tool does the same): each fortune of
`heldout-LANG.txt` (fortunes separated by lines holding only `%`; a fortune is its lines,
each ending in `\\n`) is evaluated on its own as the byte sequence `%\\n` + fortune, cut to
the first {cfg['max_position_embeddings']} bytes (max_position_embeddings), from position 0
with an empty KV cache. Every byte after the two-byte prefix is scored given all bytes
before it in that sequence: bpb = sum(-ln p(byte)) / scored bytes / ln 2.

Share of held-out routing (top-k assignments) per expert, per MoE layer:

| layer | """ + " | ".join(f"e{e}" for e in range(E)) + f""" |
|---|""" + "---:|" * E + f"""
{share_rows}

## Samples (greedy)

{sample_text}

## How to retrain

    apt-get install -y fortunes fortunes-de fortunes-es fortunes-it fortunes-ru
    {command}

With `--minutes` the run stops on wall-clock time, so the step count (and the model)
depends on the machine's speed; `--steps N` trains exactly N steps and is reproducible.
train.py writes this card; the C model's figures, the routing balance and the sampled text
of data/model's card are added by hand after `sh harness/test/demo_model_check.sh` and
`build/moekit generate`, so retrain into another directory and copy them over.
Written {datetime.date.today().isoformat()}.
"""


def write_routing(model, ev: dict, out_dir: str) -> None:
    """OUT/heldout_share.dat: one line per MoE layer, "layer share_0 .. share_E-1", the
    experts' shares of the held-out routing (harness/plot's share-all.dat format); with
    --balance bias also OUT/router_bias.json, the selection biases (not in the checkpoint)."""
    cfg = model.config
    sparse = [l for l in range(cfg["num_hidden_layers"]) if moe.is_sparse_layer(cfg, l)]
    with open(os.path.join(out_dir, "heldout_share.dat"), "w") as f:
        for l, shares in zip(sparse, ev["expert_share"]):
            f.write(f"{l} " + " ".join(f"{s:.6f}" for s in shares) + "\n")
    biases = selection_biases(model)
    if biases[0] is not None:
        with open(os.path.join(out_dir, "router_bias.json"), "w") as f:
            json.dump({str(l): b.tolist() for l, b in zip(sparse, biases)}, f, indent=1)


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    langs = corpus.LANGS
    if a.text:  # a new domain: its own held-out file, named after it
        langs = (os.path.basename(a.text).split(".")[0],)
        data, held = domain_split(a.text)
        os.makedirs(a.corpus_out, exist_ok=True)
        with open(os.path.join(a.corpus_out, f"heldout-{langs[0]}.txt"), "wb") as f:
            f.write(corpus.join(held))
        print(f"{a.text}: {len(data)} training bytes, {len(held)} held-out fortunes")
    else:
        data, stats = corpus.build(a.corpus_out)
        print(corpus.format_stats(stats), flush=True)
    stream = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    if a.init:
        model = moe.load_hf(a.init)
        a.ctx = min(a.ctx, model.config["max_position_embeddings"])
    else:
        model = moe.MoeForCausalLM(make_config(a))
        moe.init_weights(model, a.seed)
    cfg = model.config
    print(f"{freeze(model, a.trainable, a.unfreeze_expert):,} trainable parameters", flush=True)
    if a.balance == "bias":
        for layer in model.model.layers:
            if layer.sparse:
                layer.mlp.selection_bias = torch.zeros(cfg["num_experts"])
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params / 1e6:.2f} M parameters ({4 * n_params / 1e6:.1f} MB float32)",
          flush=True)
    os.makedirs(a.out, exist_ok=True)
    info = train(model, stream, a, os.path.join(a.out, "train_log.tsv"))
    moe.save_hf(model, a.out)
    check_round_trip(model, a.out)
    ev = evaluate(model, a.corpus_out, a.eval_fortunes, langs)
    scores = {l: ev[l] for l in list(langs) + ["all"]}
    if a.eval_causal:  # a kit convention: the C perplexity test reads only the languages
        scores["causal"] = evaluate_causal(model, a.corpus_out, a.eval_causal, langs)
        scores["teacher_forced_same_fortunes"] = evaluate(model, a.corpus_out, a.eval_causal,
                                                          langs)["all"]
    with open(os.path.join(a.out, "heldout_bpb.json"), "w") as f:
        json.dump(scores, f, indent=2)
        f.write("\n")
    write_routing(model, ev, a.out)
    for lang in list(langs) + ["all"]:
        print(f"held-out {lang}: {ev[lang]['bpb']:.4f} bits/byte ({ev[lang]['bytes']} bytes)")
    if a.text or a.init:  # the model card describes a model trained on the corpus
        return
    texts = {} if a.no_samples else samples(model)
    for lang, text in texts.items():
        print(f"--- {lang}\n{text}")
    size = os.path.getsize(os.path.join(a.out, "model.safetensors"))
    with open(os.path.join(a.out, "README.md"), "w") as f:
        f.write(model_card(model, a, stats, info, ev, texts, size))


if __name__ == "__main__":
    main()
