"""Lesson 11's fixture (data/fixtures/11-tokenizer.safetensors) from bpe.py.

The vocabulary is the kit's own: bpe.train on the first TRAIN_BYTES of each
data/corpus/heldout-*.txt (N_MERGES merges, three added tokens, Qwen's spelling), so the
fixture stays small. The texts are lines from the end of those files and edge cases
(added tokens in text, whitespace runs, emoji, invalid UTF-8). Every case carries the
vocabulary (a test reads only its own case), the expected output and the outputs of the
named mistakes (`<output>~<mistake>`, as export_fixtures.py stores them).

    /usr/bin/python3 harness/pytorch/export_bpe.py [--seed 1234] [--out data/fixtures]
"""

import argparse
import glob
import hashlib
import os
import random
import sys

import torch

import bpe
import safetensors_io
from export_fixtures import DEFAULT_SEED

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TRAIN_BYTES = 20000
N_MERGES = 256
ADDED = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
PAD = -9  # past the end of an output: no id, byte or offset is negative but -1 (no span id)


def corpus() -> dict:
    """{language: bytes} of data/corpus/heldout-*.txt."""
    files = sorted(glob.glob(os.path.join(ROOT, "data/corpus/heldout-*.txt")))
    return {os.path.basename(f)[8:10]: open(f, "rb").read() for f in files}


def fortune(rng: random.Random, text: bytes) -> bytes:
    """One of the last 60 fortunes of a corpus file (fortunes end with a "%" line; the
    trainer read the file's start) of 40 to 300 bytes, drawn by rng."""
    fortunes = [f.rstrip(b"\n") for f in text.split(b"%\n")[-60:]]
    return rng.choice([f for f in fortunes if 40 <= len(f) <= 300])


def count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def ints(values) -> torch.Tensor:
    return torch.tensor(list(values), dtype=torch.int32)


def padded(values, cap: int) -> torch.Tensor:
    """An output as float32 (ids and bytes are exact), PAD after its end."""
    values = list(values)
    assert len(values) <= cap, (len(values), cap)
    return torch.tensor(values + [PAD] * (cap - len(values)), dtype=torch.float32)


def strings(prefix: str, items: list) -> dict:
    """Byte strings as <prefix>.bytes (concatenated) and <prefix>.offsets (n + 1)."""
    offsets, data = [0], b""
    for s in items:
        data += s
        offsets.append(len(data))
    return {f"{prefix}.bytes": ints(data), f"{prefix}.offsets": ints(offsets)}


def vocab_tensors(v: bpe.Vocab) -> dict:
    t = strings("vocab", [s.encode() for s in v.tokens])
    t.update(strings("added", [c.encode() for c, _ in v.added]))
    t["added.ids"] = ints(i for _, i in v.added)
    t["merges"] = ints(x for m in v.merges for x in m).reshape(len(v.merges), 3)
    return t


def vocab_params(v: bpe.Vocab) -> dict:
    return {"n_vocab": len(v.tokens), "n_merges": len(v.merges), "n_added": len(v.added)}


def with_variants(name: str, cap: int, expected, variants: dict) -> dict:
    """The output and each variant that differs from it."""
    t = {name: padded(expected, cap)}
    for mistake, got in variants.items():
        if list(got) != list(expected):
            t[f"{name}~{mistake}"] = padded(got, cap)
    return t


# ------------------------------------------------------------------------------------
# The cases
# ------------------------------------------------------------------------------------


def bytemap_case():
    return ("bytemap_all", "the 256 bytes", {}, with_variants(
        "cp", 256, bpe.bytes_to_unicode(), {"byte_map_off_by_one": bpe.byte_map_off_by_one(),
                                            "byte_map_soft_hyphen": bpe.byte_map_soft_hyphen()}))


def word_case(v, cid, title, text):
    """Each pre-token of text through bpe_word; the ids one after the other."""
    pieces = bpe.pretokenize(text)
    cap = sum(len(p) for p in pieces)
    ids = [i for p in pieces for i in bpe.bpe_word(v, p)]
    wrong = [i for p in pieces for i in bpe.bpe_word(v, p, bpe.merge_first_found)]
    t = {**vocab_tensors(v), **strings("pieces", pieces)}
    t.update(with_variants("ids", cap, ids, {"merge_first_found": wrong}))
    return (cid, f"{title}: {count(len(pieces), 'piece')}, {cap} bytes",
            {**vocab_params(v), "n_pieces": len(pieces), "cap": cap}, t)


def added_case(v, cid, title, text):
    spans = bpe.split_added(v, text)
    cap = 3 * max(len(text), 1)
    t = {**vocab_tensors(v), "text": ints(text)}
    t.update(with_variants("spans", cap, [x for s in spans for x in s], {}))
    return (cid, f"{title}: {len(text)} bytes, {count(len(spans), 'span')}",
            {**vocab_params(v), "len": len(text), "cap": cap}, t)


def encode_case(v, cid, title, text):
    ids = bpe.encode(v, text)
    variants = {"specials_split_by_bpe": bpe.encode(v, text, added=False),
                "merge_first_found": bpe.encode(v, text, merge=bpe.merge_first_found)}
    t = {**vocab_tensors(v), "text": ints(text)}
    t.update(with_variants("ids", len(text), ids, variants))
    return (cid, f"{title}: {len(text)} bytes, {len(ids)} ids",
            {**vocab_params(v), "len": len(text), "cap": len(text)}, t)


def decode_case(v, cid, title, text):
    ids = bpe.encode(v, text)
    assert bpe.decode(v, ids) == text, cid
    cap = sum(len(bpe.token_text(v, i).encode()) for i in ids)
    t = {**vocab_tensors(v), "ids": ints(ids)}
    t.update(with_variants("text", cap, bpe.decode(v, ids),
                           {"decode_no_byte_map": bpe.decode_no_byte_map(v, ids)}))
    return (cid, f"{title}: {len(ids)} ids, {len(text)} bytes",
            {**vocab_params(v), "n_ids": len(ids), "cap": cap}, t)


EDGE = ("Tabs\tand  two spaces,   three,\n\nnew lines; emoji \U0001F600\U0001F44D, "
        "soft\u00adhyphen, caf\u00e9 \u6771\u4eac, bytes ").encode() + b"\xff\x80\xfe"
# (the last three bytes are no UTF-8: byte-level BPE takes any byte)


def chat(question: bytes, answer: bytes) -> bytes:
    """A ChatML exchange, as Qwen3's template writes one."""
    return (b"<|im_start|>user\n" + question + b"<|im_end|>\n<|im_start|>assistant\n" + answer
            + b"<|im_end|><|endoftext|>")


SPECIALS = b"<|im_end|><|im_end|> <|im_start|x <|im_end <|endoftext|>"


def cases(v, text, seed: int) -> list:
    """The texts are drawn from (seed, lesson) as export_fixtures.py draws its cases, so a
    private SEED gives other texts (the vocabulary stays)."""
    digest = hashlib.sha256(f"moekit/{seed}/11-tokenizer".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "little"))
    en, ru, de = fortune(rng, text["en"]), fortune(rng, text["ru"]), fortune(rng, text["de"])
    mixed = fortune(rng, text["es"]) + b"\n" + fortune(rng, text["it"])
    first_line = lambda lang: fortune(rng, text[lang]).split(b"\n")[0]
    CHAT = chat(first_line("en"), first_line("de"))
    return [
        bytemap_case(),
        word_case(v, "word_en", "English", en),
        word_case(v, "word_ru", "Russian", ru),
        word_case(v, "word_edge", "edge cases", EDGE),
        added_case(v, "added_chat", "a chat prompt", CHAT),
        added_case(v, "added_edge", "adjacent, partial", SPECIALS),
        added_case(v, "added_none", "no added token", de),
        encode_case(v, "encode_de", "German", de),
        encode_case(v, "encode_chat", "a chat prompt", CHAT),
        encode_case(v, "encode_edge", "edge cases", SPECIALS + EDGE),
        encode_case(v, "encode_mixed", "Spanish, Italian", mixed),
        decode_case(v, "decode_ru", "Russian", ru),
        decode_case(v, "decode_chat", "a chat prompt", CHAT + EDGE),
    ]


MISTAKES = {"cp": ["byte_map_off_by_one", "byte_map_soft_hyphen"],
            "ids": ["merge_first_found", "specials_split_by_bpe"],
            "text": ["decode_no_byte_map"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "data/fixtures"))
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"draws the texts (default {DEFAULT_SEED}, the committed set)")
    args = parser.parse_args(argv)
    text = corpus()
    v = bpe.train([t[:TRAIN_BYTES] for t in text.values()], N_MERGES, ADDED)
    tensors, meta = {}, {"lesson": "11-tokenizer", "seed": str(args.seed),
                         "generator": "harness/pytorch/export_bpe.py"}
    built = cases(v, text, args.seed)
    for cid, title, params, t in built:
        meta[f"{cid}/title"] = title
        meta.update({f"{cid}/{k}": str(x) for k, x in params.items()})
        tensors.update({f"{cid}/{k}": x for k, x in t.items()})
    meta["cases"] = " ".join(c[0] for c in built)
    stored = {k.split("~")[1] for k in tensors if "~" in k}
    missing = [m for ms in MISTAKES.values() for m in ms if m not in stored]
    assert not missing, f"no case stores the mistakes {missing}"
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "11-tokenizer.safetensors")
    safetensors_io.save(path, tensors, meta)
    print(f"{path}: {len(built)} cases, {len(tensors)} tensors, {os.path.getsize(path)} bytes; "
          f"vocabulary {len(v.tokens)} tokens, {len(v.merges)} merges, {len(v.added)} added")
    return 0


if __name__ == "__main__":
    sys.exit(main())
