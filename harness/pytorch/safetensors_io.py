"""Minimal, dependency-free safetensors reader and writer (torch + numpy only).

File layout (https://huggingface.co/docs/safetensors, the format the C loader reads too):

    [8 bytes]  N, little-endian u64: length of the JSON header in bytes
    [N bytes]  JSON: {name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
                      "__metadata__": {str: str}}
    [rest]     raw little-endian tensor data; offsets are relative to the start of this section

`save` is deterministic (the fixtures are committed and CI regenerates and compares them):
tensors are laid out in sorted key order, the header is `json.dumps(sort_keys=True)` with
compact separators, padded with spaces to a multiple of 8 so the data section stays aligned.
"""

import json
import struct

import numpy as np
import torch

# safetensors dtype name -> (torch dtype, little-endian numpy dtype used for the raw bytes).
# numpy has no bfloat16: BF16 travels as its int16 bit pattern (torch `view`, no rounding).
_DTYPES = {
    "F32": (torch.float32, np.dtype("<f4")),
    "F16": (torch.float16, np.dtype("<f2")),
    "BF16": (torch.bfloat16, np.dtype("<i2")),
    "I32": (torch.int32, np.dtype("<i4")),
    "I64": (torch.int64, np.dtype("<i8")),
}
_NAME_OF = {torch_dtype: name for name, (torch_dtype, _) in _DTYPES.items()}

# A header larger than this is refused on load (real checkpoints stay far below it).
MAX_HEADER_BYTES = 100 * 1024 * 1024


def _to_bytes(t: torch.Tensor) -> tuple[str, bytes]:
    """Returns (safetensors dtype name, raw little-endian bytes) of tensor t (any shape)."""
    if t.dtype not in _NAME_OF:
        raise ValueError(f"unsupported dtype {t.dtype}; use one of {sorted(_DTYPES)}")
    name = _NAME_OF[t.dtype]
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return name, t.numpy().astype(_DTYPES[name][1], copy=False).tobytes()


def _from_bytes(buf: bytes, dtype: str, shape: list[int]) -> torch.Tensor:
    """Inverse of _to_bytes: a fresh (writable, native-endian) tensor of the given shape."""
    torch_dtype, np_dtype = _DTYPES[dtype]
    arr = np.frombuffer(buf, dtype=np_dtype).astype(np_dtype.newbyteorder("="))
    t = torch.from_numpy(arr.reshape(shape))
    return t.view(torch.bfloat16) if torch_dtype == torch.bfloat16 else t


def save(path, tensors: dict, metadata: dict | None = None) -> None:
    """Writes tensors {name: torch.Tensor} and metadata {str: str} to a safetensors file."""
    metadata = metadata or {}
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"metadata must map str to str, got {k!r}: {v!r}")
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved")
        dtype, data = _to_bytes(tensors[name])
        header[name] = {
            "dtype": dtype,
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = dict(metadata)
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for chunk in chunks:
            f.write(chunk)


def _check_entry(path, name, entry, data_len) -> tuple[int, int]:
    """Validates one header entry; returns its (begin, end) data offsets."""
    if not isinstance(entry, dict) or entry.get("dtype") not in _DTYPES:
        raise ValueError(f"{path}: tensor {name!r}: unknown or missing dtype in {entry!r}")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ValueError(f"{path}: tensor {name!r}: bad shape {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) for o in offsets)):
        raise ValueError(f"{path}: tensor {name!r}: bad data_offsets {offsets!r}")
    begin, end = offsets
    if not 0 <= begin <= end <= data_len:
        raise ValueError(f"{path}: tensor {name!r}: data_offsets {offsets} outside the "
                         f"{data_len}-byte data section")
    expected = int(np.prod(shape, dtype=np.int64)) * _DTYPES[entry["dtype"]][1].itemsize
    if end - begin != expected:
        raise ValueError(f"{path}: tensor {name!r}: shape {shape} {entry['dtype']} needs "
                         f"{expected} bytes, data_offsets give {end - begin}")
    return begin, end


def _check_layout(path, spans: dict, data_len: int) -> None:
    """The tensors must tile the data section exactly: no overlap, no hole, no tail."""
    at = 0
    for name, (begin, end) in sorted(spans.items(), key=lambda kv: kv[1]):
        if begin != at:
            what = "overlaps the previous tensor" if begin < at else "leaves a hole before it"
            raise ValueError(f"{path}: tensor {name!r} at byte {begin} {what}")
        at = end
    if at != data_len:
        raise ValueError(f"{path}: {data_len - at} unused bytes after the last tensor")


def load(path) -> tuple[dict, dict]:
    """Reads a safetensors file; returns ({name: torch.Tensor}, metadata {str: str}).

    Raises ValueError naming the file and the problem for a malformed file.
    """
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: {len(blob)} bytes, too short for a safetensors header")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER_BYTES or 8 + n > len(blob):
        raise ValueError(f"{path}: header length {n} does not fit the {len(blob)}-byte file")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ValueError(f"{path}: __metadata__ must map strings to strings")
    data = blob[8 + n:]
    spans = {name: _check_entry(path, name, e, len(data)) for name, e in header.items()}
    _check_layout(path, spans, len(data))
    tensors = {name: _from_bytes(data[b:e], header[name]["dtype"], header[name]["shape"])
               for name, (b, e) in spans.items()}
    return tensors, metadata
