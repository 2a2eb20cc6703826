"""Byte-level BPE in pure Python: lesson 11's reference, its mistakes and its trainer.

What GPT-2, Qwen2 and Qwen3 do, in the order Hugging Face's `tokenizers` does it:

    text --added tokens (split out first, leftmost-longest)--> spans
    span --pre-tokenizer split--> pieces --bytes, byte map--> chars --merges by rank--> ids

No torch, no third-party module: the C lesson is checked against this file, and this file
against Hugging Face (`check`, on data/tokenizers/qwen3-2k: the ids tokenizers.js gave).

Sources: bytes_to_unicode and the merge loop follow GPT-2's `src/encoder.py`
(openai/gpt-2); the word merge by (rank, position) and the added-token split follow
Hugging Face tokenizers' `tokenizers/src/models/bpe/word.rs` and
`tokenizers/src/tokenizer/added_vocabulary.rs`.
"""

import json
import re
import sys
import unicodedata

# ------------------------------------------------------------------------------------
# The byte map
# ------------------------------------------------------------------------------------


def bytes_to_unicode() -> list:
    """cp[b]: the code point that stands for byte b (GPT-2's encoder.py bytes_to_unicode).

    The 188 printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other
    68 (controls, space, DEL, 0x80..0xA0, the soft hyphen 0xAD) get 256, 257, ... in byte
    order. So every token is a printable string, and 'Ġ' (U+0120) is the space."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    cp, n = [0] * 256, 0
    for b in range(256):
        if b in printable:
            cp[b] = b
        else:
            cp[b] = 256 + n
            n += 1
    return cp


def byte_map_off_by_one() -> list:
    """Mistake: the unprintable bytes numbered from 257 (n incremented before it is used)."""
    return [c + 1 if c >= 256 else c for c in bytes_to_unicode()]


def byte_map_soft_hyphen() -> list:
    """Mistake: '¡'..'ÿ' taken as one printable range: the soft hyphen 0xAD, the last
    unprintable byte, stands for itself instead of U+0143."""
    cp = bytes_to_unicode()
    cp[0xAD] = 0xAD
    return cp


# ------------------------------------------------------------------------------------
# A vocabulary: tokens (strings of byte-map chars), merges by rank, added tokens
# ------------------------------------------------------------------------------------


class Vocab:
    """tokens[id] (str), merges [(left id, right id, merged id)] in rank order,
    added [(content, id)]."""

    def __init__(self, tokens, merges, added):
        self.tokens = tokens
        self.merges = merges
        self.added = added
        self.id_of = {t: i for i, t in enumerate(tokens)}
        self.rank = {(a, b): (r, m) for r, (a, b, m) in enumerate(merges)}


def byte_ids(v: Vocab, word: bytes, cp=None) -> list:
    """The ids of word's bytes, one token per byte (-1: no such token)."""
    cp = cp or bytes_to_unicode()
    return [v.id_of.get(chr(cp[b]), -1) for b in word]


def merge_by_rank(v: Vocab, ids: list) -> list:
    """Merges the adjacent pair of lowest rank until no pair has a merge (HF word.rs:
    among equal ranks, the leftmost first)."""
    ids = list(ids)
    while True:
        best = None
        for i in range(len(ids) - 1):
            r = v.rank.get((ids[i], ids[i + 1]))
            if r and (best is None or r[0] < best[0]):
                best = (r[0], r[1], i)
        if best is None:
            return ids
        _, merged, i = best
        ids[i:i + 2] = [merged]


def merge_first_found(v: Vocab, ids: list) -> list:
    """Mistake: merges the leftmost pair that has any merge, whatever its rank."""
    ids = list(ids)
    while True:
        for i in range(len(ids) - 1):
            r = v.rank.get((ids[i], ids[i + 1]))
            if r:
                ids[i:i + 2] = [r[1]]
                break
        else:
            return ids


def bpe_word(v: Vocab, word: bytes, merge=merge_by_rank) -> list:
    """One pre-token's bytes -> ids."""
    return merge(v, byte_ids(v, word))


def split_added(v: Vocab, text: bytes) -> list:
    """[(start, length, id)]: the added tokens (id) and the text between them (id -1),
    leftmost first, the longest added token where several start at one place."""
    spans, start, i = [], 0, 0
    added = sorted(((c.encode(), t) for c, t in v.added), key=lambda a: -len(a[0]))
    while i < len(text):
        hit = next(((c, t) for c, t in added if text.startswith(c, i)), None)
        if hit is None:
            i += 1
            continue
        if i > start:
            spans.append((start, i - start, -1))
        spans.append((i, len(hit[0]), hit[1]))
        i += len(hit[0])
        start = i
    if start < len(text):
        spans.append((start, len(text) - start, -1))
    return spans


# The lesson's pre-tokenizer (a convention of the kit, so that the C check needs no regex
# library): GPT-2's whitespace rules without its letter/digit classes. A word with at most
# one space before it; a whitespace run keeps its last space for the next word.
LESSON_SPLIT = re.compile(rb" ?[^\s]+|\s+(?!\S)|\s+")


def pretokenize(text: bytes) -> list:
    return LESSON_SPLIT.findall(text)


def encode(v: Vocab, text: bytes, split=pretokenize, merge=merge_by_rank, added=True) -> list:
    """text -> ids: added tokens first, then each span's pieces by BPE."""
    spans = split_added(v, text) if added else [(0, len(text), -1)]
    ids = []
    for start, n, tid in spans:
        if tid >= 0:
            ids.append(tid)
            continue
        for piece in split(text[start:start + n]):
            ids += merge(v, byte_ids(v, piece))
    return ids


def token_text(v: Vocab, tid: int) -> str:
    added = dict((t, c) for c, t in v.added)
    return added[tid] if tid in added else v.tokens[tid]


def decode(v: Vocab, ids: list) -> bytes:
    """ids -> bytes: each token's chars through the inverse byte map; added tokens give
    their content as UTF-8."""
    inv = {c: b for b, c in enumerate(bytes_to_unicode())}
    added = dict((t, c) for c, t in v.added)
    out = bytearray()
    for tid in ids:
        if tid in added:
            out += added[tid].encode()
        else:
            out += bytes(inv[ord(ch)] for ch in v.tokens[tid])
    return bytes(out)


def decode_no_byte_map(v: Vocab, ids: list) -> bytes:
    """Mistake: the tokens' strings as they are ('Ġthe' -> the UTF-8 of 'Ġ', not a space)."""
    return b"".join(token_text(v, t).encode() for t in ids)


# ------------------------------------------------------------------------------------
# Training (the lesson's small vocabulary)
# ------------------------------------------------------------------------------------


def train(texts: list, n_merges: int, added: list) -> Vocab:
    """Classic BPE training: start from the 256 byte tokens (ids in byte-map order, as
    GPT-2 and Qwen number them), then n_merges times merge the most frequent adjacent pair
    over the pre-tokenized words (ties: the smaller pair of ids)."""
    cp = bytes_to_unicode()
    order = sorted(range(256), key=lambda b: (cp[b] >= 256, cp[b]))
    tokens = [chr(cp[b]) for b in order]
    v = Vocab(tokens, [], [])
    counts = {}
    for t in texts:
        for piece in pretokenize(t):
            w = tuple(byte_ids(v, piece))
            counts[w] = counts.get(w, 0) + 1
    merges = []
    for _ in range(n_merges):
        pairs = {}
        for w, c in counts.items():
            for p in zip(w, w[1:]):
                pairs[p] = pairs.get(p, 0) + c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        new = len(tokens)
        tokens.append(tokens[best[0]] + tokens[best[1]])
        merges.append((best[0], best[1], new))
        counts = {tuple(_merge_pair(w, best, new)): c for w, c in counts.items()}
    return Vocab(tokens, merges, [(a, len(tokens) + i) for i, a in enumerate(added)])


def _merge_pair(w, pair, new):
    out, i = [], 0
    while i < len(w):
        if i + 1 < len(w) and (w[i], w[i + 1]) == pair:
            out.append(new)
            i += 2
        else:
            out.append(w[i])
            i += 1
    return out


# ------------------------------------------------------------------------------------
# Checked against Hugging Face: Qwen3's vocabulary (data/tokenizers/qwen3-2k)
# ------------------------------------------------------------------------------------


def _class(pred) -> str:
    """A regex character class of every code point with pred(category)."""
    ranges, start = [], None
    for c in range(sys.maxunicode + 2):
        inside = c <= sys.maxunicode and pred(unicodedata.category(chr(c)))
        if inside and start is None:
            start = c
        elif not inside and start is not None:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(c - 1))}")
            start = None
    return "".join(ranges)


def qwen2_split():
    """The Qwen2 pre-tokenizer regex (its tokenizer.json) in Python's re: \\p{L} and \\p{N}
    spelled out from unicodedata's categories. For `check` only."""
    L, N = _class(lambda k: k[0] == "L"), _class(lambda k: k[0] == "N")
    pat = (rf"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n{L}{N}]?[{L}]+|[{N}]| ?[^\s{L}{N}]+[\r\n]*"
           rf"|\s*[\r\n]+|\s+(?!\S)|\s+")
    rx = re.compile(pat)
    return lambda b: [p.encode() for p in rx.findall(unicodedata.normalize("NFC", b.decode()))]


def load_hf(path: str) -> Vocab:
    """A byte-level BPE tokenizer.json -> Vocab."""
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    vocab = d["model"]["vocab"]
    tokens = [None] * (max(vocab.values()) + 1)
    for s, i in vocab.items():
        tokens[i] = s
    merges = []
    for m in d["model"]["merges"]:
        a, b = m.split(" ") if isinstance(m, str) else m
        merges.append((vocab[a], vocab[b], vocab[a + b]))
    return Vocab(tokens, merges, [(a["content"], a["id"]) for a in d["added_tokens"]])


def check(directory: str) -> int:
    """Encodes strings.json with this file and compares with ids.json (Hugging Face's)."""
    v = load_hf(f"{directory}/tokenizer.json")
    strings = json.load(open(f"{directory}/strings.json", encoding="utf-8"))
    want = json.load(open(f"{directory}/ids.json", encoding="utf-8"))
    split = qwen2_split()
    same = sum(encode(v, s.encode(), split) == w for s, w in zip(strings, want))
    nfc = [(s, w) for s, w in zip(strings, want) if unicodedata.is_normalized("NFC", s)]
    back = sum(decode(v, w) == s.encode() for s, w in nfc)
    print(f"{directory}: {same} of {len(strings)} strings give Hugging Face's ids; "
          f"decode gives back {back} of the {len(nfc)} already in NFC")
    return 0 if same == len(strings) and back == len(nfc) else 1


if __name__ == "__main__":
    sys.exit(check(sys.argv[1] if len(sys.argv) > 1 else "data/tokenizers/qwen3-2k"))
