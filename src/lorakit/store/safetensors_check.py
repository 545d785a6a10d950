"""Validate a .safetensors file from its header alone, before anything else reads it.

The format: 8-byte little-endian header length N, N bytes of JSON
``{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}``, then the data.
A crafted file must give a one-line error here, never a crash or a huge allocation later.
"""

import json
import math
import struct
from pathlib import Path

from lorakit.errors import StoreError

MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}


def read_header(path: Path) -> dict:
    """Return the validated tensor table {name: {dtype, shape, data_offsets}} of a safetensors file."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise StoreError(f"{path.name}: not a safetensors file (shorter than 8 bytes)")
        (n,) = struct.unpack("<Q", raw)
        if n > MAX_HEADER or 8 + n > size:
            raise StoreError(f"{path.name}: corrupt safetensors header (claims {n} bytes, file has {size})")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise StoreError(f"{path.name}: corrupt safetensors header (not valid JSON)") from None
    if not isinstance(header, dict):
        raise StoreError(f"{path.name}: corrupt safetensors header (not a JSON object)")
    header.pop("__metadata__", None)
    data_len = size - 8 - n
    spans = []
    for name, info in header.items():
        where = f"{path.name}: tensor {name!r}"
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise StoreError(f"{where} has a malformed entry")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in DTYPE_BYTES:
            raise StoreError(f"{where} has unknown dtype {dtype!r}")
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise StoreError(f"{where} has a malformed shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise StoreError(f"{where} has malformed data_offsets")
        begin, end = offsets
        if not 0 <= begin <= end <= data_len:
            raise StoreError(f"{where} points outside the file (offsets {begin}..{end}, data is {data_len} bytes)")
        if end - begin != math.prod(shape) * DTYPE_BYTES[dtype]:
            raise StoreError(f"{where}: shape {shape} of {dtype} does not match its {end - begin} bytes")
        spans.append((begin, end, name))
    spans.sort()
    for (b1, e1, n1), (b2, _, n2) in zip(spans, spans[1:]):
        if b2 < e1:
            raise StoreError(f"{path.name}: tensors {n1!r} and {n2!r} overlap")
    return header


def parameter_count(header: dict) -> int:
    return sum(math.prod(info["shape"]) for info in header.values())
