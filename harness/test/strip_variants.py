"""Copies a fixture directory without its stored mistakes: no `<case>/<output>~<mistake>`
tensor and no `~nonfinite` mark. A check run on the copy can name a mistake only by the
relations of harness/test/relations.c; kit_test.d/relations.sh counts how many it names.

    python3 harness/test/strip_variants.py data/fixtures build/fixtures-novariants

Plain Python (json, struct): the bytes of every kept tensor are copied unchanged.
"""

import json
import os
import struct
import sys


def strip(src: str, dst: str) -> int:
    """Writes src (a .safetensors file) to dst without variants; returns how many went."""
    with open(src, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    meta = {k: v for k, v in header.pop("__metadata__", {}).items() if "~" not in k}
    kept, out, offset, dropped = {}, [], 0, 0
    for name in sorted(header):
        if "~" in name:
            dropped += 1
            continue
        begin, end = header[name]["data_offsets"]
        kept[name] = dict(header[name], data_offsets=[offset, offset + end - begin])
        out.append(data[begin:end])
        offset += end - begin
    kept["__metadata__"] = meta
    text = json.dumps(kept, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(out))
    return dropped


def main() -> int:
    src, dst = sys.argv[1], sys.argv[2]
    os.makedirs(dst, exist_ok=True)
    for name in sorted(os.listdir(src)):
        if name.endswith(".safetensors"):
            n = strip(os.path.join(src, name), os.path.join(dst, name))
            print(f"{name}: {n} variants left out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
