#!/usr/bin/env python3
"""Writes the malformed-input corpus (harness/test/malformed/) and the fuzz seed corpora
(harness/fuzz/corpus/). Standard library only; deterministic: running it again rewrites
the same bytes, so the committed files can be checked against it.

    python3 harness/test/malformed/make_corpus.py

The corpus is a micro model in base/ (a valid Qwen3-MoE checkpoint: vocab 256, hidden 8,
2 layers, 4 experts) and one directory per case under cases/. A case holds

    expect   one line: text the error message must contain
    args     optional, one argument per line after `moekit` (printf %b escapes, so \\0377
             is the byte 0xff; @MODEL@ is the case's model directory); default:
             generate --model @MODEL@ --ids "1 2" -n 2 --greedy.
             A first line `check` runs the harness's check program instead, with
             @MODEL@ as the fixtures directory.
    remove   optional, base files to delete
    ...      files laid over a copy of base/ (config.json, model.safetensors, shards ...)

harness/test/kit_test.d/reliability.sh runs every case: it must exit 1 or 2 with the
expected text in a one-line message (check: in its report) and no sanitizer report.
"""

import json
import os
import random
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
FUZZ = os.path.join(ROOT, "harness", "fuzz", "corpus")

# ------------------------------------------------------------------------------------------
# safetensors writing, including the ways of getting it wrong
# ------------------------------------------------------------------------------------------

SIZES = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "I64": 8, "U8": 1}


def f32(values):
    return b"".join(struct.pack("<f", v) for v in values)


def bf16(values):
    return b"".join(struct.pack("<I", struct.unpack("<I", struct.pack("<f", v))[0])[2:]
                    for v in values)


def header_bytes(header, pad=True):
    """The 8-byte length and the JSON text (header: a dict, or already-made bytes)."""
    text = header if isinstance(header, bytes) else json.dumps(
        header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, raw bytes)] in data order -> a valid file."""
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    return header_bytes(header) + data


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


# ------------------------------------------------------------------------------------------
# the micro model
# ------------------------------------------------------------------------------------------

MICRO = {
    "architectures": ["Qwen3MoeForCausalLM"],
    "model_type": "qwen3_moe",
    "vocab_size": 256,
    "hidden_size": 8,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 4,
    "intermediate_size": 8,
    "moe_intermediate_size": 4,
    "num_experts": 4,
    "num_experts_per_tok": 2,
    "norm_topk_prob": True,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [0],
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-06,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
}


def model_shapes(c):
    """[(HF name, shape)] of a Qwen3-MoE config, in a fixed order."""
    C, D = c["hidden_size"], c["head_dim"]
    q, kv = c["num_attention_heads"] * D, c["num_key_value_heads"] * D
    out = [("model.embed_tokens.weight", [c["vocab_size"], C]), ("model.norm.weight", [C])]
    if not c.get("tie_word_embeddings"):
        out.append(("lm_head.weight", [c["vocab_size"], C]))
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        out += [(p + "input_layernorm.weight", [C]), (p + "post_attention_layernorm.weight", [C]),
                (p + "self_attn.q_proj.weight", [q, C]), (p + "self_attn.k_proj.weight", [kv, C]),
                (p + "self_attn.v_proj.weight", [kv, C]), (p + "self_attn.o_proj.weight", [C, q]),
                (p + "self_attn.q_norm.weight", [D]), (p + "self_attn.k_norm.weight", [D])]
        sparse = (l not in c.get("mlp_only_layers", []) and c.get("num_experts", 0) > 0
                  and (l + 1) % c.get("decoder_sparse_step", 1) == 0)
        if sparse:
            I = c["moe_intermediate_size"]
            out.append((p + "mlp.gate.weight", [c["num_experts"], C]))
            for e in range(c["num_experts"]):
                q_ = p + f"mlp.experts.{e}."
                out += [(q_ + "gate_proj.weight", [I, C]), (q_ + "up_proj.weight", [I, C]),
                        (q_ + "down_proj.weight", [C, I])]
        else:
            I = c["intermediate_size"]
            out += [(p + "mlp.gate_proj.weight", [I, C]), (p + "mlp.up_proj.weight", [I, C]),
                    (p + "mlp.down_proj.weight", [C, I])]
    return out


def model_values(c, seed=7):
    """{name: (shape, [floats])}: norms near 1, matrices small and random."""
    rng = random.Random(seed)
    vals = {}
    for name, shape in model_shapes(c):
        n = numel(shape)
        if name.endswith("norm.weight"):
            vals[name] = (shape, [1.0 + rng.uniform(-0.1, 0.1) for _ in range(n)])
        else:
            vals[name] = (shape, [rng.gauss(0.0, 0.3) for _ in range(n)])
    return vals


def model_file(c, dtype="F32", patch=None, drop=(), seed=7):
    """The weights of config c; patch(name, values) may change values; drop: names left out."""
    vals = model_values(c, seed)
    tensors = []
    for name, (shape, v) in vals.items():
        if name in drop:
            continue
        if patch:
            v = patch(name, list(v))
        tensors.append((name, dtype, shape, f32(v) if dtype == "F32" else bf16(v)))
    return safetensors(tensors, {"format": "pt"})


def config_text(c):
    return (json.dumps(c, indent=2) + "\n").encode()


def with_config(**changes):
    c = dict(MICRO)
    for k, v in changes.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return config_text(c)


def set_value(target, index, value):
    def patch(name, v):
        if name == target:
            v[index] = value
        return v
    return patch


# ------------------------------------------------------------------------------------------
# the cases: (name, expected text, {file: bytes}, args or None, removed base files)
# ------------------------------------------------------------------------------------------

CASES = []


def case(name, expect, files=None, args=None, remove=()):
    CASES.append((name, expect, files or {}, args, list(remove)))


def st_case(name, expect, data):
    case(name, "model.safetensors: " + expect, {"model.safetensors": data})


def one_tensor(entry, data=b"\0" * 16):
    return header_bytes({"t": entry}) + data


NORM = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}

# safetensors: the container
st_case("st-empty", "file is 0 bytes, shorter than the 8-byte header length", b"")
st_case("st-short", "file is 5 bytes, shorter than the 8-byte header length", b"\x10\0\0\0\0")
st_case("st-header-huge", "header length 1099511627776 exceeds the 100000000-byte limit",
        struct.pack("<Q", 1 << 40) + b"{}")
st_case("st-header-past-end", "header length 4096 runs past the end of the file (28 bytes)",
        struct.pack("<Q", 4096) + b'{"t":{"dtype":"F32"}')
st_case("st-header-not-json", "header (JSON from file byte 8): invalid JSON at byte 0: expected a value",
        header_bytes(b"PK\x03\x04 this is a zip file", pad=False))
st_case("st-header-truncated-json", "header (JSON from file byte 8): invalid JSON at byte 14: expected ':' after an object key",
        header_bytes(b'{"t": {"dtype"', pad=False))
st_case("st-header-array", "header is a JSON array, not an object", header_bytes(b"[]"))
st_case("st-header-deep", "header (JSON from file byte 8): invalid JSON at byte 68: nested deeper than 64 arrays/objects",
        header_bytes(b'{"t":' + b"[" * 100 + b"]" * 100 + b"}"))
st_case("st-name-invalid-utf8", "header (JSON from file byte 8): invalid JSON at byte 3: invalid UTF-8 byte 0xff",
        header_bytes(b'{"t\xff":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}') + b"\0" * 16)
st_case("st-duplicate-tensor", "header (JSON from file byte 8): invalid JSON at byte 55: duplicate key \"t\"",
        header_bytes(b'{"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},'
                     b'"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}') + b"\0" * 16)
st_case("st-trailing-garbage", "header (JSON from file byte 8): invalid JSON at byte 55: unexpected ',' after the value",
        header_bytes(b'{"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}},') + b"\0" * 16)
# safetensors: one entry
st_case("st-unknown-dtype", "tensor 't' has unknown dtype \"F12\"",
        one_tensor(dict(NORM, dtype="F12")))
st_case("st-dtype-not-string", "tensor 't' dtype is a JSON number, not a string",
        one_tensor(dict(NORM, dtype=4)))
st_case("st-no-shape", "tensor 't' has no \"shape\"",
        one_tensor({"dtype": "F32", "data_offsets": [0, 16]}))
st_case("st-shape-negative", "tensor 't' shape[0] is negative (-4)",
        one_tensor(dict(NORM, shape=[-4])))
st_case("st-shape-fraction", "tensor 't' shape[0] is not an integer",
        one_tensor(dict(NORM, shape=[4.0])))
st_case("st-shape-overflow", "tensor 't' shape [1099511627776, 1099511627776] is too large (byte size overflows)",
        one_tensor(dict(NORM, shape=[1 << 40, 1 << 40])))
st_case("st-too-many-dims", "tensor 't' shape has 9 dimensions (at most 8 supported)",
        one_tensor(dict(NORM, shape=[1] * 9)))
st_case("st-size-mismatch", "tensor 't' data_offsets [0, 16] do not match dtype F32 x shape [4, 8] (128 bytes)",
        one_tensor(dict(NORM, shape=[4, 8])))
st_case("st-offsets-reversed", "tensor 't' data_offsets [16, 0] are reversed (begin > end)",
        one_tensor(dict(NORM, data_offsets=[16, 0])))
st_case("st-offsets-negative", "tensor 't' data_offsets [-16, 0] are negative",
        one_tensor(dict(NORM, data_offsets=[-16, 0])))
st_case("st-offsets-not-array", "tensor 't' data_offsets is not an array of two integers",
        one_tensor(dict(NORM, data_offsets="0-16")))
st_case("st-truncated-data", "tensor 't' data_offsets [0, 16] run past the end of the data section (10 bytes; file truncated?)",
        one_tensor(NORM, b"\0" * 10))
st_case("st-overlap", "tensors 'a' [0, 16] and 'b' [8, 24] overlap",
        header_bytes({"a": NORM, "b": dict(NORM, data_offsets=[8, 24])}) + b"\0" * 24)
st_case("st-metadata-not-string", "__metadata__ value for 'format' is a JSON number",
        header_bytes({"__metadata__": {"format": 1}, "t": NORM}) + b"\0" * 16)
st_case("st-entry-not-object", "tensor 't' is a JSON string, not an object",
        header_bytes({"t": "F32"}))
# safetensors against the model
case("model-nan-norm", "tensor 'model.norm.weight' holds NaN at element 3",
     {"model.safetensors": model_file(MICRO, patch=set_value("model.norm.weight", 3, float("nan")))})
case("model-inf-embedding", "tensor 'model.embed_tokens.weight' holds Inf at element 100",
     {"model.safetensors": model_file(MICRO, patch=set_value("model.embed_tokens.weight", 100,
                                                             float("inf")))})
case("model-nan-router-bf16", "tensor 'model.layers.1.mlp.gate.weight' holds NaN at element 0",
     {"model.safetensors": model_file(MICRO, "BF16", patch=set_value(
         "model.layers.1.mlp.gate.weight", 0, float("nan")))})
case("model-nan-qk-norm", "tensor 'model.layers.0.self_attn.k_norm.weight' holds NaN",
     {"model.safetensors": model_file(MICRO, patch=set_value(
         "model.layers.0.self_attn.k_norm.weight", 1, float("nan")))})
case("model-nan-dense-matrix", "the logits at position 0 are not finite",
     {"model.safetensors": model_file(MICRO, patch=set_value(
         "model.layers.0.mlp.down_proj.weight", 5, float("nan")))})
case("model-missing-tensor", "tensor 'model.layers.1.mlp.experts.2.up_proj.weight' is missing",
     {"model.safetensors": model_file(MICRO, drop=("model.layers.1.mlp.experts.2.up_proj.weight",))})
case("model-int-weights", "tensor 'model.norm.weight' has dtype I32; moekit reads F32, BF16 and F16",
     {"model.safetensors": safetensors(
         [(n, "I32" if n == "model.norm.weight" else "F32", s, f32(v))
          for n, (s, v) in model_values(MICRO).items()])})
case("model-head-dim-vs-q-proj",
     "tensor 'model.layers.0.self_attn.q_proj.weight' has shape [8, 8], config.json implies [16, 8]",
     {"config.json": with_config(head_dim=8)})
case("model-heads-vs-q-proj",
     "tensor 'model.layers.0.self_attn.q_proj.weight' has shape [8, 8], config.json implies [16, 8]",
     {"config.json": with_config(num_attention_heads=4)})
case("model-experts-vs-router",
     "tensor 'model.layers.1.mlp.gate.weight' has shape [4, 8], config.json implies [6, 8]",
     {"config.json": with_config(num_experts=6)})

# sharded checkpoints
SHARD_A = [n for n, _ in model_shapes(MICRO) if ".layers.1." not in n]
SHARD_B = [n for n, _ in model_shapes(MICRO) if ".layers.1." in n]


def shard(names, extra=()):
    vals = model_values(MICRO)
    return safetensors([(n, "F32", vals[n][0], f32(vals[n][1])) for n in list(names) + list(extra)])


def index(mapping):
    return (json.dumps({"metadata": {"total_size": 0}, "weight_map": mapping}, indent=2) + "\n").encode()


A, B = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
GOOD_MAP = {**{n: A for n in SHARD_A}, **{n: B for n in SHARD_B}}
case("index-missing-shard", B + ": cannot open (No such file or directory) (a shard named in",
     {"model.safetensors.index.json": index(GOOD_MAP), A: shard(SHARD_A)})
case("index-tensor-in-two-shards", "tensor 'model.norm.weight' is also in",
     {"model.safetensors.index.json": index(GOOD_MAP), A: shard(SHARD_A),
      B: shard(SHARD_B, ["model.norm.weight"])})
case("index-wrong-shard", "model.safetensors.index.json: maps 'model.norm.weight' to " + B +
     ", which does not hold it",
     {"model.safetensors.index.json": index({**GOOD_MAP, "model.norm.weight": B}),
      A: shard(SHARD_A), B: shard(SHARD_B)})
case("index-path-traversal", "weight_map[\"model.norm.weight\"] must be the name of a file in",
     {"model.safetensors.index.json": index({**GOOD_MAP, "model.norm.weight": "../model.safetensors"}),
      A: shard(SHARD_A), B: shard(SHARD_B)})
case("index-not-json", "model.safetensors.index.json: invalid JSON at byte 1",
     {"model.safetensors.index.json": b"{weight_map: {}}\n"})
case("index-no-weight-map", "model.safetensors.index.json: has no \"weight_map\"",
     {"model.safetensors.index.json": b'{"metadata": {}}\n'})
case("index-empty-weight-map", "model.safetensors.index.json: \"weight_map\" is empty",
     {"model.safetensors.index.json": b'{"weight_map": {}}\n'})
case("index-bad-shard-file", B + ": header length 4096 runs past the end of the file",
     {"model.safetensors.index.json": index(GOOD_MAP), A: shard(SHARD_A),
      B: struct.pack("<Q", 4096) + b"{}"})
case("model-weights-missing", "model.safetensors: cannot open (No such file or directory)", {},
     remove=["model.safetensors"])

# config.json
case("config-not-json", "config.json: invalid JSON at byte 2", {"config.json": b"{\n'vocab_size': 256}\n"})
case("config-array", "config.json: must hold a JSON object", {"config.json": b"[1, 2]\n"})
case("config-missing-field", "config.json: missing field \"hidden_size\"",
     {"config.json": with_config(hidden_size=None)})
case("config-string-size", "config.json: field \"num_hidden_layers\" must be an integer, not a string",
     {"config.json": with_config(num_hidden_layers="2")})
case("config-fractional-size", "config.json: field \"hidden_size\" must be an integer, not 8.5",
     {"config.json": with_config(hidden_size=8.5)})
case("config-negative-size", "config.json: field \"vocab_size\" = -256 is out of range",
     {"config.json": with_config(vocab_size=-256)})
case("config-huge-size", "config.json: field \"intermediate_size\" = 1000000000000 is out of range",
     {"config.json": with_config(intermediate_size=10 ** 12)})
case("config-topk-above-experts", "num_experts_per_tok (5) must be between 1 and num_experts (4)",
     {"config.json": with_config(num_experts_per_tok=5)})
case("config-zero-experts", "num_experts_per_tok is 2 but the model has no experts",
     {"config.json": with_config(num_experts=0)})
case("config-zero-topk", "num_experts_per_tok (0) must be between 1 and num_experts (4)",
     {"config.json": with_config(num_experts_per_tok=0)})
case("config-odd-head-dim", "head_dim (3) must be even", {"config.json": with_config(head_dim=3)})
case("config-head-dim-zero", "head_dim is 0 (hidden_size 8 / num_attention_heads 16)",
     {"config.json": with_config(head_dim=None, num_attention_heads=16, num_key_value_heads=16)})
case("config-kv-heads", "num_attention_heads (2) must be a multiple of num_key_value_heads (3)",
     {"config.json": with_config(num_key_value_heads=3)})
case("config-architecture", "architecture LlamaForCausalLM (model_type llama) is not supported",
     {"config.json": with_config(architectures=["LlamaForCausalLM"], model_type="llama")})
case("config-model-type-newline",  # found by fuzz_config: the name split the message
     "architecture (none) (model_type qw\\x0a3_moe) is not supported",
     {"config.json": with_config(architectures=None, model_type="qw\n3_moe")})
case("config-rope-scaling", "rope_scaling is not supported",
     {"config.json": with_config(rope_scaling={"rope_type": "yarn", "factor": 4.0})})
case("config-rope-type", "rope_parameters.rope_type must be \"default\"",
     {"config.json": with_config(rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0})})
case("config-sliding-window", "use_sliding_window is not supported",
     {"config.json": with_config(use_sliding_window=True)})
case("config-eps-string", "field \"rms_norm_eps\" must be a positive number, not a string",
     {"config.json": with_config(rms_norm_eps="1e-6")})
case("config-theta-negative", "field \"rope_theta\" = -10000 must be a positive number",
     {"config.json": with_config(rope_theta=-10000.0)})
case("config-bool-string", "field \"tie_word_embeddings\" must be true or false, not a string",
     {"config.json": with_config(tie_word_embeddings="yes")})
case("config-mlp-only-range", "mlp_only_layers[0] must be a layer index 0..1",
     {"config.json": with_config(mlp_only_layers=[5])})
case("config-matrix-too-large",
     "vocab_size x hidden_size (embed_tokens) = 100000000 x 4096 is more than the 2147483647",
     {"config.json": with_config(vocab_size=100000000, hidden_size=4096)})
case("config-layers-beyond-weights",
     "tensor 'model.layers.99999.input_layernorm.weight' is missing",
     {"config.json": with_config(num_hidden_layers=100000)})
case("config-too-many-layers",
     "field \"num_hidden_layers\" = 100000000 is out of range (1 .. 100000)",
     {"config.json": with_config(num_hidden_layers=100000000)})
case("config-no-moe-size", "config.json: missing field \"moe_intermediate_size\"",
     {"config.json": with_config(moe_intermediate_size=None)})
case("config-duplicate-key", "config.json: invalid JSON at byte 22: duplicate key \"vocab_size\"",
     {"config.json": b'{"vocab_size": 256,\n  "vocab_size": 512}\n'})
case("config-is-directory", "config.json: not a regular file",
     {"config.json/README": b"a directory where config.json should be\n"},
     remove=["config.json"])

# the prompt and the command line (cli_test.sh covers the first bad numbers: these extend it)
GEN = ["generate", "--model", "@MODEL@", "-n", "2", "--greedy"]
case("prompt-invalid-byte", "--prompt: invalid UTF-8 at byte 5 (0xff)", args=GEN + ["--prompt", "hello\\0377"])
case("prompt-overlong", "--prompt: invalid UTF-8 at byte 0 (0xc0)", args=GEN + ["--prompt", "\\0300\\0257"])
case("prompt-surrogate", "--prompt: invalid UTF-8 at byte 1 (0xed)", args=GEN + ["--prompt", "a\\0355\\0240\\0200"])
case("prompt-truncated", "--prompt: invalid UTF-8 at byte 2 (0xe2)", args=GEN + ["--prompt", "ab\\0342\\0202"])
case("prompt-latin1", "--prompt: invalid UTF-8 at byte 3 (0xe9)", args=GEN + ["--prompt", "caf\\0351"])
case("prompt-empty", "--prompt: the prompt is empty", args=GEN + ["--prompt", ""])
case("perplexity-invalid-utf8", "text.txt: invalid UTF-8 at byte 7 (0xfe)",
     {"text.txt": b"%\nfine \xfe text\n%\n"},
     args=["perplexity", "--model", "@MODEL@", "--file", "@MODEL@/text.txt"])
case("perplexity-directory", "--file @MODEL@: not a regular file",
     args=["perplexity", "--model", "@MODEL@", "--file", "@MODEL@"])
case("perplexity-context-too-short", "a context of 2 positions is too short",
     {"text.txt": b"%\nsome text\n"},
     args=["perplexity", "--model", "@MODEL@", "--file", "@MODEL@/text.txt", "--ctx", "2",
           "--fortunes"])
IDS = ["--ids", "1 2"]
case("ids-trailing-garbage", "--ids: '2x' is not a token id 0..255", args=GEN[:3] + ["--ids", "1 2x"])
case("ids-negative", "--ids: '-1' is not a token id 0..255", args=GEN[:3] + ["--ids", "1 -1"])
case("ids-hex", "--ids: '0x10' is not a token id 0..255", args=GEN[:3] + ["--ids", "0x10"])
case("ids-overflow", "--ids: '99999999999999999999' is not a token id",
     args=GEN[:3] + ["--ids", "99999999999999999999"])
case("n-leading-blank", "-n: ' 5' is not a whole number", args=GEN[:3] + IDS + ["-n", " 5"])
case("n-plus-sign", "-n: '+5' is not a whole number", args=GEN[:3] + IDS + ["-n", "+5"])
case("n-newline", "-n: '1\\x0a2' is not a whole number", args=GEN[:3] + IDS + ["-n", "1\\n2"])
case("temperature-nan", "--temperature: 'nan' is not a number", args=GEN[:3] + IDS + ["--temperature", "nan"])
case("temperature-inf", "--temperature: 'inf' is not a number", args=GEN[:3] + IDS + ["--temperature", "inf"])
case("temperature-huge", "--temperature: 1e999 is out of range (0..100)",
     args=GEN[:3] + IDS + ["--temperature", "1e999"])
case("top-p-negative", "--top-p: -0.5 is out of range (0..1)", args=GEN[:3] + IDS + ["--top-p", "-0.5"])
case("seed-overflow", "--seed: 99999999999999999999 is out of range",
     args=GEN[:3] + IDS + ["--seed", "99999999999999999999"])
case("seed-negative", "--seed: -1 is out of range", args=GEN[:3] + IDS + ["--seed", "-1"])
case("ctx-zero", "--ctx: 0 is out of range (1..1048576)", args=GEN[:3] + IDS + ["--ctx", "0"])
case("top-k-zero", "--top-k: 0 is out of range (1..4096)", args=GEN[:3] + IDS + ["--top-k", "0"])
case("disable-expert-overflow", "--disable-expert (layer): 99999999999 is out of range",
     args=GEN[:3] + IDS + ["--disable-expert", "99999999999:1"])
case("disable-expert-empty", "--disable-expert (expert): '' is not a whole number",
     args=GEN[:3] + IDS + ["--disable-expert", "1:"])
case("replace-expert-overflow", "--replace-expert (layer2): 99999999999 is out of range",
     args=GEN[:3] + IDS + ["--replace-expert", "1:0:@MODEL@:99999999999:1"])
case("replace-expert-no-dir", "--replace-expert: '1:0:' names no checkpoint directory",
     args=GEN[:3] + IDS + ["--replace-expert", "1:0:"])
case("model-empty-name", "generate: --model: the directory name is empty",
     args=["generate", "--model", "", "--ids", "1"])
case("unknown-control-flag", "generate: unknown option '--x\\x1b[31m'",
     args=GEN[:3] + IDS + ["--x\\033[31m", "1"])


# the harness's check program and malformed fixtures
def check_case(name, expect, data):
    case(name, expect, {"01-matmul.safetensors": data},
         args=["check", "--tree", "solutions", "--fixtures", "@MODEL@", "--lesson", "01", "--no-fork"])


check_case("fixture-truncated", "ERROR   cannot read the fixtures: @MODEL@/01-matmul.safetensors: "
           "header length 4096 runs past the end of the file", struct.pack("<Q", 4096) + b"{")
check_case("fixture-missing-tensor", "fixture problem in @MODEL@/01-matmul.safetensors, case tiny",
           safetensors([], {"cases": "tiny", "tiny/T": "1", "tiny/in_features": "2",
                            "tiny/out_features": "2", "tiny/title": "a case without tensors"}))
check_case("fixture-bad-parameter", "case tiny: parameter 'T' = \"one\" is not an integer",
           safetensors([("tiny/x", "F32", [1, 2], f32([1, 2])), ("tiny/w", "F32", [2, 2], f32([1, 0, 0, 1])),
                        ("tiny/y", "F32", [1, 2], f32([1, 2]))],
                       {"cases": "tiny", "tiny/T": "one", "tiny/in_features": "2",
                        "tiny/out_features": "2", "tiny/title": "a bad parameter"}))


# ------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------

def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def write_corpus():
    base = os.path.join(HERE, "base")
    shutil.rmtree(base, ignore_errors=True)
    write(os.path.join(base, "config.json"), config_text(MICRO))
    write(os.path.join(base, "model.safetensors"), model_file(MICRO))
    cases = os.path.join(HERE, "cases")
    shutil.rmtree(cases, ignore_errors=True)
    names = set()
    for name, expect, files, args, remove in CASES:
        assert name not in names, name
        names.add(name)
        d = os.path.join(cases, name)
        write(os.path.join(d, "expect"), expect.encode() + b"\n")
        if args is not None:
            write(os.path.join(d, "args"), "".join(a + "\n" for a in args).encode())
        if remove:
            write(os.path.join(d, "remove"), "".join(r + "\n" for r in remove).encode())
        for fname, data in files.items():
            write(os.path.join(d, fname), data)
    return len(CASES)


# ------------------------------------------------------------------------------------------
# fuzz seeds: valid inputs of every shape, plus the malformed cases of each kind
# ------------------------------------------------------------------------------------------

NANO = dict(MICRO, vocab_size=8, hidden_size=4, head_dim=2, intermediate_size=4,
            moe_intermediate_size=2, num_experts=2, num_experts_per_tok=1,
            max_position_embeddings=16)
NANO_QWEN2 = dict(NANO, architectures=["Qwen2MoeForCausalLM"], model_type="qwen2_moe",
                  shared_expert_intermediate_size=2, mlp_only_layers=[], tie_word_embeddings=False)


def qwen2_file(c):
    """NANO_QWEN2's weights: Qwen3 names less QK-norm, plus biases and the shared expert."""
    rng = random.Random(3)
    tensors = []
    C, D = c["hidden_size"], c["head_dim"]
    for name, shape in model_shapes(c):
        if "q_norm" in name or "k_norm" in name:
            continue
        tensors.append((name, shape))
        if name.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight")):
            tensors.append((name.replace(".weight", ".bias"), [shape[0]]))
        if name.endswith("mlp.gate.weight"):
            p = name[: -len("gate.weight")]
            S = c["shared_expert_intermediate_size"]
            tensors += [(p + "shared_expert.gate_proj.weight", [S, C]),
                        (p + "shared_expert.up_proj.weight", [S, C]),
                        (p + "shared_expert.down_proj.weight", [C, S]),
                        (p + "shared_expert_gate.weight", [1, C])]
    del D
    return safetensors([(n, "F32", s, f32([rng.gauss(0, 0.3) for _ in range(numel(s))]))
                        for n, s in tensors])


def printf_b(arg):
    """The bytes the shell's printf %b makes of an args line: \\0NNN octal, \\n."""
    out, i = bytearray(), 0
    while i < len(arg):
        if arg.startswith("\\0", i):
            j = i + 2
            while j < len(arg) and j < i + 5 and arg[j] in "01234567":
                j += 1
            out.append(int(arg[i + 2:j] or "0", 8) & 0xFF)
            i = j
        elif arg.startswith("\\n", i):
            out += b"\n"
            i += 2
        else:
            out += arg[i].encode()
            i += 1
    return bytes(out)


def write_seeds():
    for kind in ("safetensors", "config", "args", "model", "tape"):
        shutil.rmtree(os.path.join(FUZZ, kind), ignore_errors=True)
    st = {
        "micro-f32": model_file(NANO),
        "micro-bf16": model_file(NANO, "BF16"),
        "qwen2": qwen2_file(NANO_QWEN2),
        "dtypes": safetensors([("a", "F16", [2], b"\x00\x3c\x00\xc0"), ("b", "I64", [1], b"\1" + b"\0" * 7),
                               ("c", "U8", [3], b"abc"), ("s", "F32", [], f32([1.5])),
                               ("e", "BF16", [0, 4], b"")], {"k": "v", "cases": "a b"}),
        "gap-unaligned": header_bytes(b'{"x":{"dtype":"F32","shape":[2],"data_offsets":[3,11]}}',
                                      pad=False) + b"\0" * 12,
        "empty-header": header_bytes(b"{}"),
    }
    for name, expect, files, args, remove in CASES:  # the broken containers (not the
        for fname, data in files.items():              # micro model with one NaN: big, alike)
            if fname.endswith(".safetensors") and len(data) < 4096:
                st[f"{name}-{fname}"] = data
    for name, data in st.items():
        write(os.path.join(FUZZ, "safetensors", name), data)
    cfg = {"micro": config_text(MICRO), "nano": config_text(NANO), "qwen2": config_text(NANO_QWEN2),
           "v5": config_text({**{k: v for k, v in MICRO.items() if k not in ("num_experts", "rope_theta")},
                              "num_local_experts": 4, "rope_parameters": {"rope_theta": 5e5,
                                                                          "rope_type": "default"}})}
    for d in sorted(os.listdir(os.path.join(ROOT, "data", "models"))):
        p = os.path.join(ROOT, "data", "models", d, "config.json")
        if os.path.exists(p):
            cfg["hf-" + d] = open(p, "rb").read()
    for name, expect, files, args, remove in CASES:
        if "config.json" in files:
            cfg[name] = files["config.json"]
    for name, data in cfg.items():
        write(os.path.join(FUZZ, "config", name), data)
    argv = {
        "generate": ["generate", "--model", "m", "--prompt", "The secret", "-n", "20", "--temperature",
                     "0.7", "--top-p", "0.9", "--seed", "42", "--top-k", "1", "--disable-expert", "1:3",
                     "--dump-routing", "r.tsv", "--ctx", "128"],
        "greedy": ["generate", "--model", "m", "--ids", "1 2, 3\t4", "--greedy", "--print-ids"],
        "logits": ["logits", "--model", "m", "--ids", "0 255", "--out", "x.bin"],
        "perplexity": ["perplexity", "--model", "m", "--file", "t.txt", "--ctx", "64"],
        "help": ["generate", "--help"],
    }
    for name, expect, files, args, remove in CASES:
        if args and args[0] != "check":
            argv["case-" + name] = [printf_b(a.replace("@MODEL@", "m")) for a in args]
    for name, a in argv.items():
        data = b"\0".join(x if isinstance(x, bytes) else x.encode() for x in a)
        write(os.path.join(FUZZ, "args", name), data)
    models = {"nano": (NANO, model_file(NANO)), "nano-bf16": (NANO, model_file(NANO, "BF16")),
              "qwen2": (NANO_QWEN2, qwen2_file(NANO_QWEN2)),
              "nano-untied": (dict(NANO, tie_word_embeddings=False),
                              model_file(dict(NANO, tie_word_embeddings=False)))}
    for name, (c, w) in models.items():
        write(os.path.join(FUZZ, "model", name), config_text(c) + b"\0" + w)
    for name, expect, files, args, remove in CASES:  # the micro model's weights broken one
        if args is None and "model.safetensors" in files:  # way (config.json: fuzz_config)
            data = (files.get("config.json", config_text(MICRO)) + b"\0" +
                    files.get("model.safetensors", model_file(MICRO)))
            write(os.path.join(FUZZ, "model", "case-" + name), data)
    tapes = {  # the grader's tape (harness/test/tape.h): a pass, a todo, a crash, cut short
        "pass": b"T 01\tmatmul\tbasic\nO y F 2\n" + f32([1.5, -2.0]) + b"E \t\t\n",
        "ints": b"T 06\ttopk\tt1\nO idx I 2\n\x01\0\0\0\x03\0\0\0O val F 1\n" + f32([0.5]) +
                b"E \t\tprinted\\n a line\n",
        "todo": b"T 03\trope\tbasic\nD rope\trope.c\t12\trotate the pairs\nE \t\t\n",
        "crash": b"T 02\trmsnorm\tbig\nE CRASH\tSegmentation fault\t\n",
        "cut": b"T 01\tmatmul\tbasic\nO y F 100\n" + f32([1.0]),
    }
    for name, data in tapes.items():
        write(os.path.join(FUZZ, "tape", name), data)


if __name__ == "__main__":
    n = write_corpus()
    write_seeds()
    print(f"{n} malformed cases in {os.path.relpath(os.path.join(HERE, 'cases'), ROOT)}, "
          f"fuzz seeds in {os.path.relpath(FUZZ, ROOT)}", file=sys.stderr)
