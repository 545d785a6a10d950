"""Validate a .safetensors file from its header alone, before anything else reads it.

The format: 8-byte little-endian header length N, N bytes of JSON
``{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}``, then the data.
The checks are those of the safetensors library (tensors tile the data exactly, no gaps, no
overlaps) plus bounds on everything a crafted file could use to make a reader allocate or crash.
A crafted file gets a one-line StoreError here, never a crash or a huge allocation later.
"""

import json
import math
import struct
from pathlib import Path

from lorakit.errors import StoreError

# huggingface_hub's limit (safetensors allows 100 MB): real headers are a few MB even for 100k tensors, and
# parsing the JSON costs about ten times its size in memory.
MAX_HEADER = 25_000_000
MAX_DIMS = 16
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8, "C64": 8,
}


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"duplicate key {dup[:60]!r}")
    return dict(pairs)


def _bad(path: Path, why: str) -> StoreError:
    return StoreError(f"{path.name}: invalid safetensors file: {why}",
                      "the file is corrupt, truncated or crafted; download it again from a trusted source")


def _not_safetensors(path: Path, head: bytes, why: str = "its header is not valid") -> StoreError:
    """A file that is something else under a .safetensors name: say what it looks like, when that is known."""
    start = head.lstrip().lower()
    if head.startswith(b"version https://git-lfs"):
        return StoreError(f"{path.name} is not a safetensors file: it is a Git LFS pointer, not the weights",
                          "fetch the real file (git lfs pull in its repository), or download it again")
    if start.startswith((b"<!doctype html", b"<html")):
        return StoreError(f"{path.name} is not a safetensors file: it is a web page",
                          "download the file itself (on the hub, its .../resolve/main/... address)")
    if head.startswith(b"PK\x03\x04") or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")):
        return StoreError(f"{path.name} is not a safetensors file: it is a pickled (torch.save) checkpoint",
                          "give it its real suffix (.bin or .pt) and pass --allow-pickle to convert it")
    return StoreError(f"{path.name} is not a safetensors file ({why})",
                      "give the weights file itself: a .safetensors file written by safetensors or save_pretrained")


def read_header(path: Path) -> dict:
    """Return the validated tensor table {name: {dtype, shape, data_offsets}} of a safetensors file."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise _not_safetensors(path, raw, f"shorter than 8 bytes: {size} bytes")
        (n,) = struct.unpack("<Q", raw)
        first = f.read(1)  # a header is a JSON object: a file that says otherwise is no safetensors file
        if (n > MAX_HEADER or 8 + n > size) and first != b"{":
            raise _not_safetensors(path, raw + first + f.read(55))
        if n > MAX_HEADER:
            raise _bad(path, f"header claims {n:,} bytes (limit {MAX_HEADER:,})")
        if 8 + n > size:
            raise _bad(path, f"header claims {n:,} bytes but the file has {size:,} (truncated?)")
        raw = first + f.read(n - 1) if n else b""
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _bad(path, f"header is not valid JSON ({str(e)[:80]})") from None
    if not isinstance(header, dict):
        raise _bad(path, "header is not a JSON object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise _bad(path, "__metadata__ must map strings to strings")
    data_len = size - 8 - n
    spans = []
    for name, info in header.items():
        where = f"tensor {name[:80]!r}"
        if not name or not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise _bad(path, f"{where} has a malformed entry")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
            raise _bad(path, f"{where} has unknown dtype {str(dtype)[:20]!r}")
        if not (isinstance(shape, list) and len(shape) <= MAX_DIMS
                and all(type(d) is int and d >= 0 for d in shape)):
            raise _bad(path, f"{where} has a malformed shape")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
            raise _bad(path, f"{where} has malformed data_offsets")
        begin, end = offsets
        if not 0 <= begin <= end <= data_len:
            raise _bad(path, f"{where} points outside the file (bytes {begin}..{end}, data is {data_len})")
        nbytes = math.prod(shape) * DTYPE_BYTES[dtype]
        if end - begin != nbytes:
            raise _bad(path, f"{where}: shape {shape} of {dtype} needs {nbytes:,} bytes, offsets give {end - begin:,}")
        spans.append((begin, end, name))
    spans.sort()
    at = 0
    for begin, end, name in spans:
        if begin < at:
            raise _bad(path, f"tensor {name[:80]!r} overlaps the previous tensor")
        if begin > at:
            raise _bad(path, f"gap of {begin - at} bytes before tensor {name[:80]!r}")
        at = end
    if at != data_len:
        raise _bad(path, f"{data_len - at} bytes of data after the last tensor")
    return header


def read_metadata(path: Path) -> dict:
    """The __metadata__ table of an already validated file."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n)).get("__metadata__", {})


def shapes(header: dict) -> dict[str, list[int]]:
    return {k: v["shape"] for k, v in header.items()}


def parameter_count(header: dict) -> int:
    return sum(math.prod(info["shape"]) for info in header.values())


def dtypes(header: dict) -> list[str]:
    return sorted({info["dtype"] for info in header.values()})
