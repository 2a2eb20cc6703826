"""Converts a Qwen3-MoE checkpoint in Hugging Face layout to GGUF, for llama.cpp.

    /usr/bin/python3 harness/pytorch/gguf_writer.py MODEL_DIR OUT.gguf [--type f32|f16|bf16|q8_0]

MODEL_DIR holds config.json and model.safetensors (or model.safetensors.index.json and its
shards), as the kit's CLI loads them. Standard library and numpy only: the bench runs it
where torch and the `gguf` package are absent. Written from the format's description
(llama.cpp's docs/gguf.md and gguf.h); no code of llama.cpp's converter is used.

GGUF v3, little-endian:

    "GGUF" | u32 version=3 | u64 n_tensors | u64 n_kv
    n_kv x (string key | u32 value type | value)          strings: u64 length + UTF-8 bytes
    n_tensors x (string name | u32 n_dims | u64 dims[n_dims], innermost first
                 | u32 ggml type | u64 offset into the data section)
    zero padding to general.alignment (32) | data section, each tensor aligned to 32

Dimensions are listed innermost first, so a PyTorch weight of shape (out, in) is written
with dims {in, out}, and the experts of a layer, stacked as (E, out, in), as {in, out, E}.
Qwen3 uses NeoX ("rotate half") RoPE, which llama.cpp applies to qwen3moe as it is: Q and K
are not permuted (unlike llama's interleaved pairs).

Names (llama.cpp's src/llama-arch.cpp, architecture `qwen3moe`):

    model.embed_tokens.weight                       token_embd.weight        {C, V}
    model.norm.weight                               output_norm.weight       {C}
    lm_head.weight (absent when tied)               output.weight            {C, V}
    model.layers.L.input_layernorm.weight           blk.L.attn_norm.weight   {C}
    ...self_attn.{q,k,v,o}_proj.weight              blk.L.attn_{q,k,v,output}.weight
    ...self_attn.{q,k}_norm.weight                  blk.L.attn_{q,k}_norm.weight  {head_dim}
    ...post_attention_layernorm.weight              blk.L.ffn_norm.weight    {C}
    ...mlp.gate.weight                              blk.L.ffn_gate_inp.weight {C, E}
    ...mlp.experts.{e}.{gate,up}_proj.weight        blk.L.ffn_{gate,up}_exps.weight {C, I, E}
    ...mlp.experts.{e}.down_proj.weight             blk.L.ffn_down_exps.weight {I, C, E}

llama.cpp's qwen3moe has every layer sparse and always renormalises the top-k weights, so a
config with dense layers (mlp_only_layers, decoder_sparse_step > 1) or norm_topk_prob false
is refused rather than converted into a different model.

Types: the vectors (norms) and the router stay float32, as llama.cpp's own converter keeps
them; every other matrix takes --type. q8_0 is llama.cpp's Q8_0 block, quantized here:
32 weights share a float16 scale d = max|w| / 127, each stored as round(w / d) in int8
(34 bytes per 32 weights), the rounding llama.cpp's reference quantizer uses, so both
engines can be given the same 8-bit weights.

Tokenizer: the kit's models are byte-level with ids only, so the file carries the smallest
vocabulary llama.cpp loads: tokenizer.ggml.model "gpt2" (byte-level BPE) with no merges,
ids 0-255 the 256 bytes in GPT-2's byte-to-unicode spelling, any further ids "<|id_N|>"
marked unused. The bench feeds token ids directly, so nothing is ever tokenized.
"""

import argparse
import json
import mmap
import os
import struct
import sys

import numpy as np

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGNMENT = 32

# GGUF metadata value types (gguf.h)
T_UINT32, T_INT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY = 4, 5, 6, 7, 8, 9

# ggml tensor types (ggml.h) and llama file types (llama.h, general.file_type)
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0, GGML_BF16 = 0, 1, 2, 8, 30
TYPES = {  # --type: (ggml type, general.file_type)
    "f32": (GGML_F32, 0),
    "f16": (GGML_F16, 1),
    "bf16": (GGML_BF16, 32),
    "q8_0": (GGML_Q8_0, 7),
    "q4_0": (GGML_Q4_0, 2),
}
Q8_0_BLOCK = 32

# token types (llama.h, llama_token_type)
TOKEN_NORMAL, TOKEN_UNUSED = 1, 5


class ConvertError(Exception):
    """A problem with the input checkpoint; the message names the file."""


# ------------------------------------------------------------------------------------
# reading: config.json and safetensors (numpy views of the mapped files)
# ------------------------------------------------------------------------------------

_ST_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}


def read_safetensors(path: str) -> dict:
    """{name: (dtype name, shape, numpy array of the raw elements)}, memory-mapped."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ConvertError(f"{path}: shorter than the 8-byte header length")
            (n,) = struct.unpack("<Q", head)
            if n > 100 * 1024 * 1024:
                raise ConvertError(f"{path}: header length {n} is not plausible")
            header = json.loads(f.read(n))
    except (OSError, ValueError) as e:
        raise ConvertError(f"{path}: {e}") from e
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] not in _ST_DTYPES:
            raise ConvertError(f"{path}: tensor {name}: dtype {e['dtype']} is not F32, F16 or BF16")
        dt = _ST_DTYPES[e["dtype"]]
        begin, end = e["data_offsets"]
        count = int(np.prod(e["shape"], dtype=np.int64))
        if end - begin != count * dt.itemsize or end > data.size:
            raise ConvertError(f"{path}: tensor {name}: data_offsets do not fit its shape")
        out[name] = (e["dtype"], list(e["shape"]), data[begin:end].view(dt))
    return out


def read_checkpoint(model_dir: str) -> tuple[dict, dict]:
    """(config dict, {name: (dtype, shape, raw)}) from a Hugging Face model directory."""
    cfg_path = os.path.join(model_dir, "config.json")
    try:
        with open(cfg_path) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise ConvertError(f"{cfg_path}: {e}") from e
    single = os.path.join(model_dir, "model.safetensors")
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(single):
        return cfg, read_safetensors(single)
    if not os.path.exists(index):
        raise ConvertError(f"{model_dir}: neither model.safetensors nor model.safetensors.index.json")
    try:
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    except (OSError, ValueError, KeyError) as e:
        raise ConvertError(f"{index}: {e}") from e
    tensors = {}
    for shard in shards:
        tensors.update(read_safetensors(os.path.join(model_dir, shard)))
    return cfg, tensors


def as_float32(entry) -> np.ndarray:
    """The tensor as float32 with its shape (bf16 widened exactly: the bits go on top)."""
    dtype, shape, raw = entry
    if dtype == "BF16":
        return (raw.astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return raw.astype(np.float32).reshape(shape)


# ------------------------------------------------------------------------------------
# the model: what llama.cpp's qwen3moe can represent
# ------------------------------------------------------------------------------------


def hparams(cfg: dict, where: str) -> dict:
    """The config's numbers under the kit's names, checked for what qwen3moe supports."""
    def need(key, *alts):
        for k in (key,) + alts:
            if k in cfg:
                return cfg[k]
        raise ConvertError(f"{where}: config.json has no {key}")

    if cfg.get("model_type", "qwen3_moe") != "qwen3_moe":
        raise ConvertError(f"{where}: model_type {cfg.get('model_type')!r}: only qwen3_moe converts")
    h = {
        "V": need("vocab_size"), "C": need("hidden_size"), "L": need("num_hidden_layers"),
        "H": need("num_attention_heads"), "KV": need("num_key_value_heads"),
        "I": need("moe_intermediate_size"), "E": need("num_experts", "num_local_experts"),
        "K": need("num_experts_per_tok"), "eps": need("rms_norm_eps"),
        "ctx": cfg.get("max_position_embeddings", 2048),
        "tied": bool(cfg.get("tie_word_embeddings", False)),
    }
    h["D"] = cfg.get("head_dim") or h["C"] // h["H"]
    rope = cfg.get("rope_parameters") or {}
    h["theta"] = cfg.get("rope_theta", rope.get("rope_theta", 10000.0))
    if cfg.get("mlp_only_layers") or cfg.get("decoder_sparse_step", 1) != 1:
        raise ConvertError(f"{where}: dense layers (mlp_only_layers or decoder_sparse_step > 1): "
                           "llama.cpp's qwen3moe makes every layer sparse")
    if not cfg.get("norm_topk_prob", True):
        raise ConvertError(f"{where}: norm_topk_prob false: llama.cpp's qwen3moe always renormalises")
    if h["E"] <= 0 or h["K"] <= 0:
        raise ConvertError(f"{where}: num_experts and num_experts_per_tok must be positive")
    return h


def gguf_tensors(h: dict, tensors: dict, where: str) -> list:
    """[(GGUF name, PyTorch-order shape, is_matrix, load)] in file order; load() gives the
    float32 array, read only when it is written (a big checkpoint never sits in memory)."""
    def shape(name):
        if name not in tensors:
            raise ConvertError(f"{where}: tensor {name} is missing")
        return tensors[name][1]

    def one(gguf, hf, is_matrix):
        return (gguf, shape(hf), is_matrix, lambda: as_float32(tensors[hf]))

    def experts(gguf, names):
        shapes = [shape(n) for n in names]
        if any(s != shapes[0] for s in shapes):
            raise ConvertError(f"{where}: {names[0]} and its siblings differ in shape")
        return (gguf, [len(names)] + shapes[0], True,
                lambda: np.stack([as_float32(tensors[n]) for n in names]))

    out = [one("token_embd.weight", "model.embed_tokens.weight", True),
           one("output_norm.weight", "model.norm.weight", False)]
    if not h["tied"]:
        out.append(one("output.weight", "lm_head.weight", True))
    for l in range(h["L"]):
        p, b = f"model.layers.{l}.", f"blk.{l}."
        out.append(one(b + "attn_norm.weight", p + "input_layernorm.weight", False))
        for hf, gg in (("q_proj", "attn_q"), ("k_proj", "attn_k"), ("v_proj", "attn_v"),
                       ("o_proj", "attn_output")):
            out.append(one(b + gg + ".weight", p + f"self_attn.{hf}.weight", True))
        out.append(one(b + "attn_q_norm.weight", p + "self_attn.q_norm.weight", False))
        out.append(one(b + "attn_k_norm.weight", p + "self_attn.k_norm.weight", False))
        out.append(one(b + "ffn_norm.weight", p + "post_attention_layernorm.weight", False))
        out.append(one(b + "ffn_gate_inp.weight", p + "mlp.gate.weight", False))  # router: f32
        for proj in ("gate", "up", "down"):
            out.append(experts(b + f"ffn_{proj}_exps.weight",
                               [p + f"mlp.experts.{e}.{proj}_proj.weight" for e in range(h["E"])]))
    return out


def metadata(h: dict, file_type: int, name: str) -> list:
    """[(key, GGUF type, value)]: the keys llama.cpp's qwen3moe loader reads."""
    a = "qwen3moe"
    kv = [
        ("general.architecture", T_STRING, a),
        ("general.name", T_STRING, name),
        ("general.file_type", T_UINT32, file_type),
        ("general.alignment", T_UINT32, ALIGNMENT),
        ("general.quantization_version", T_UINT32, 2),  # ggml's block layouts, version 2
        (f"{a}.context_length", T_UINT32, h["ctx"]),
        (f"{a}.embedding_length", T_UINT32, h["C"]),
        (f"{a}.block_count", T_UINT32, h["L"]),
        (f"{a}.feed_forward_length", T_UINT32, h["I"] * h["K"]),  # unused: no dense layer
        (f"{a}.expert_feed_forward_length", T_UINT32, h["I"]),
        (f"{a}.expert_count", T_UINT32, h["E"]),
        (f"{a}.expert_used_count", T_UINT32, h["K"]),
        (f"{a}.attention.head_count", T_UINT32, h["H"]),
        (f"{a}.attention.head_count_kv", T_UINT32, h["KV"]),
        (f"{a}.attention.key_length", T_UINT32, h["D"]),
        (f"{a}.attention.value_length", T_UINT32, h["D"]),
        (f"{a}.attention.layer_norm_rms_epsilon", T_FLOAT32, h["eps"]),
        (f"{a}.rope.dimension_count", T_UINT32, h["D"]),
        (f"{a}.rope.freq_base", T_FLOAT32, h["theta"]),
    ]
    tokens, types = vocabulary(h["V"])
    kv += [
        ("tokenizer.ggml.model", T_STRING, "gpt2"),
        ("tokenizer.ggml.pre", T_STRING, "default"),
        ("tokenizer.ggml.tokens", T_ARRAY, (T_STRING, tokens)),
        ("tokenizer.ggml.token_type", T_ARRAY, (T_INT32, types)),
        ("tokenizer.ggml.merges", T_ARRAY, (T_STRING, [])),
        ("tokenizer.ggml.add_bos_token", T_BOOL, False),
    ]
    return kv


def byte_spelling() -> list:
    """GPT-2's byte-to-unicode map: printable bytes stand for themselves, the rest are
    shifted to code points 256 and up, so every byte is one visible character."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return [out[b] for b in range(256)]


def vocabulary(V: int) -> tuple[list, list]:
    """V token strings and types: the 256 bytes, then unused placeholders."""
    spell = byte_spelling()
    tokens = [spell[i] if i < 256 else f"<|id_{i}|>" for i in range(V)]
    types = [TOKEN_NORMAL if i < 256 else TOKEN_UNUSED for i in range(V)]
    return tokens, types


# ------------------------------------------------------------------------------------
# encoding the tensors
# ------------------------------------------------------------------------------------


def to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> bf16 bits (uint16), rounded to nearest, ties to even (NaN kept a NaN)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        rounded[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded


def quantize_q8_0(x: np.ndarray) -> bytes:
    """Rows of x (..., n), n a multiple of 32 -> Q8_0 blocks: f16 d, then 32 x int8.
    d = max|w| / 127 over the block; q = round(w / d), half away from zero (roundf)."""
    blocks = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, Q8_0_BLOCK)
    d = np.abs(blocks).max(axis=1) / 127.0
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    scaled = blocks * inv[:, None]
    q = (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int8)
    out = np.empty(blocks.shape[0], dtype=[("d", "<f2"), ("q", "i1", (Q8_0_BLOCK,))])
    out["d"] = d.astype(np.float16)
    out["q"] = q
    return out.tobytes()


def quantize_q4_0(x: np.ndarray) -> bytes:
    """Rows of x (..., n), n a multiple of 32 -> Q4_0 blocks: f16 d, then 16 bytes, byte j
    holding weight j (low nibble) and weight j + 16 (high nibble), as llama.cpp's
    quantize_row_q4_0_ref (ggml/src/ggml-quants.c): m = the value of largest magnitude
    (the first one, with its sign), d = m / -8, q = min(15, (int8)(w / d + 8.5)); all in
    float32 like the C code."""
    blocks = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, Q8_0_BLOCK)
    m = blocks[np.arange(blocks.shape[0]), np.abs(blocks).argmax(axis=1)]
    d = (m / np.float32(-8)).astype(np.float32)
    inv = np.divide(np.float32(1), d, out=np.zeros_like(d), where=d != 0)
    q = np.minimum(15, (blocks * inv[:, None] + np.float32(8.5)).astype(np.int8)).astype(np.uint8)
    half = Q8_0_BLOCK // 2
    out = np.empty(blocks.shape[0], dtype=[("d", "<f2"), ("q", "u1", (half,))])
    out["d"] = d.astype(np.float16)
    out["q"] = q[:, :half] | (q[:, half:] << 4)
    return out.tobytes()


def encode(x: np.ndarray, ggml_type: int, name: str) -> bytes:
    """The tensor's bytes in ggml_type (x float32, any shape, row-major)."""
    if ggml_type == GGML_F32:
        return np.ascontiguousarray(x, dtype="<f4").tobytes()
    if ggml_type == GGML_F16:
        return np.ascontiguousarray(x, dtype="<f4").astype("<f2").tobytes()
    if ggml_type == GGML_BF16:
        return to_bf16(x).astype("<u2").tobytes()
    if ggml_type in (GGML_Q8_0, GGML_Q4_0):
        if x.shape[-1] % Q8_0_BLOCK:
            raise ConvertError(f"{name}: rows of {x.shape[-1]} are not a multiple of {Q8_0_BLOCK} (Q8_0, Q4_0)")
        return quantize_q8_0(x) if ggml_type == GGML_Q8_0 else quantize_q4_0(x)
    raise ValueError(f"ggml type {ggml_type}")


# ------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------


def _string(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _scalar(t: int, v) -> bytes:
    if t == T_STRING:
        return _string(v)
    return struct.pack({T_UINT32: "<I", T_INT32: "<i", T_FLOAT32: "<f", T_BOOL: "<?"}[t], v)


def _kv(key: str, t: int, v) -> bytes:
    out = _string(key) + struct.pack("<I", t)
    if t != T_ARRAY:
        return out + _scalar(t, v)
    elem, items = v
    return out + struct.pack("<IQ", elem, len(items)) + b"".join(_scalar(elem, i) for i in items)


def _pad(n: int) -> int:
    return (ALIGNMENT - n % ALIGNMENT) % ALIGNMENT


def encoded_size(shape: list, ggml_type: int) -> int:
    n = int(np.prod(shape, dtype=np.int64))
    if ggml_type == GGML_Q8_0:
        return n // Q8_0_BLOCK * (2 + Q8_0_BLOCK)
    if ggml_type == GGML_Q4_0:
        return n // Q8_0_BLOCK * (2 + Q8_0_BLOCK // 2)
    return n * {GGML_F32: 4, GGML_F16: 2, GGML_BF16: 2}[ggml_type]


def convert(model_dir: str, out_path: str, type_name: str) -> dict:
    """Writes out_path; returns {n_tensors, bytes}. Raises ConvertError on bad input."""
    ggml_type, file_type = TYPES[type_name]
    cfg, tensors = read_checkpoint(model_dir)
    h = hparams(cfg, os.path.join(model_dir, "config.json"))
    plan = gguf_tensors(h, tensors, model_dir)
    # the header first: every size follows from the shapes
    kv = metadata(h, file_type, os.path.basename(os.path.normpath(model_dir)))
    header = GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(plan), len(kv))
    header += b"".join(_kv(*e) for e in kv)
    offset = 0
    for name, shape, is_matrix, _ in plan:
        t = ggml_type if is_matrix else GGML_F32
        if t in (GGML_Q8_0, GGML_Q4_0) and shape[-1] % Q8_0_BLOCK:
            raise ConvertError(f"{name}: rows of {shape[-1]} are not a multiple of {Q8_0_BLOCK} "
                               f"({type_name})")
        dims = list(reversed(shape))  # innermost first
        header += _string(name) + struct.pack("<I", len(dims))
        header += struct.pack(f"<{len(dims)}Q", *dims) + struct.pack("<IQ", t, offset)
        size = encoded_size(shape, t)
        offset += size + _pad(size)
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(header + b"\0" * _pad(len(header)))
        for name, shape, is_matrix, load in plan:
            blob = encode(load(), ggml_type if is_matrix else GGML_F32, name)
            f.write(blob + b"\0" * _pad(len(blob)))
        size = f.tell()
    os.replace(tmp, out_path)
    return {"n_tensors": len(plan), "bytes": size}


def read_gguf(path: str) -> tuple[dict, dict]:
    """({key: value}, {name: (dims innermost first, ggml type, raw bytes)}) of a GGUF v3
    file, for checks (the tests; the bench compares llama.cpp's Q8_0 blocks with ours).
    The bytes are memoryviews of the mapped file: nothing is read until compared."""
    with open(path, "rb") as f:
        buf = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0] if len(v) == 1 else v

    def string():
        nonlocal pos
        n = take("Q")
        s = bytes(buf[pos:pos + n]).decode()
        pos += n
        return s

    def value(t):
        if t == T_STRING:
            return string()
        if t == T_ARRAY:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take("BbHhIif?__Qqd"[t])  # GGUF's scalar types 0-12 (8, 9: above)

    if bytes(buf[:4]) != GGUF_MAGIC:
        raise ConvertError(f"{path}: not a GGUF file")
    pos = 4
    version, n_t, n_kv = take("I"), take("Q"), take("Q")
    if version != GGUF_VERSION:
        raise ConvertError(f"{path}: GGUF version {version}, not {GGUF_VERSION}")
    kv = {}
    for _ in range(n_kv):
        k = string()
        kv[k] = value(take("I"))
    infos = []
    for _ in range(n_t):
        name = string()
        nd = take("I")
        dims = [take("Q") for _ in range(nd)]
        infos.append((name, dims, take("I"), take("Q")))
    data = pos + (-pos % kv.get("general.alignment", 32))
    starts = sorted(off for *_, off in infos) + [len(buf) - data]
    tensors = {}
    for name, dims, t, off in infos:
        if t in (GGML_F32, GGML_F16, GGML_BF16, GGML_Q8_0, GGML_Q4_0):
            end = off + encoded_size(list(reversed(dims)), t)
        else:  # another type: up to the next tensor (with its padding)
            end = next(s for s in starts if s > off)
        tensors[name] = (dims, t, buf[data + off:data + end])
    return kv, tensors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir", help="config.json + model.safetensors (Qwen3-MoE)")
    ap.add_argument("out", help="the .gguf file to write")
    ap.add_argument("--type", default="f32", choices=sorted(TYPES),
                    help="type of the matrices (norms and router stay f32)")
    a = ap.parse_args()
    try:
        r = convert(a.model_dir, a.out, a.type)
    except ConvertError as e:
        print(f"gguf_writer: {e}", file=sys.stderr)
        return 1
    print(f"wrote {a.out}: {r['n_tensors']} tensors, {a.type}, {r['bytes'] / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
