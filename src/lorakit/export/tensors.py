"""Read and write safetensors files one tensor at a time, with numpy only.

Why not ``safe_open`` + ``save_file``: ``safe_open`` memory-maps the whole file, and every page a
merge touches stays resident until the file is closed, so reading a base tensor by tensor still
ends at one full copy in memory; ``save_file`` needs every output tensor in memory at once. A
merge must stay near one base in memory, not two, so here each tensor is read with a positioned
read and the output is streamed: the header is known up front (a merged tensor keeps its base
dtype and shape), then tensors are appended one by one. Headers are validated by the store's
checker before any offset is trusted. Importing torch is avoided on purpose: the import alone
holds resident memory that a merge does not need (figure: benchmarks/README.md, Measurements
behind the code).
"""

import json
import os
import struct
from pathlib import Path

import numpy as np

from lorakit.errors import LorakitError
from lorakit.store.safetensors_check import DTYPE_BYTES, read_header

_NUMPY = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "I16": np.int16, "I8": np.int8, "U8": np.uint8, "U16": np.uint16, "U32": np.uint32, "U64": np.uint64,
          "BOOL": np.bool_}
FLOATS = ("F64", "F32", "F16", "BF16")
_COPY_CHUNK = 16 << 20


class TensorFile:
    """One .safetensors file: its validated header and positioned reads of single tensors."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.header = read_header(self.path)
        with open(self.path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
        self._data_start = 8 + n

    def keys(self) -> list[str]:
        return list(self.header)

    def info(self, name: str) -> tuple[str, list[int]]:
        h = self.header[name]
        return h["dtype"], h["shape"]

    def _span(self, name: str) -> tuple[int, int]:
        begin, end = self.header[name]["data_offsets"]
        return self._data_start + begin, end - begin

    def array(self, name: str) -> np.ndarray:
        """The tensor as a numpy array; BF16 (which numpy lacks) is widened to float32 exactly."""
        dtype, shape = self.info(name)
        offset, size = self._span(name)
        buf = bytearray(size)
        with open(self.path, "rb", buffering=0) as f:
            f.seek(offset)
            if f.readinto(buf) != size:
                raise LorakitError(f"{self.path.name}: tensor {name!r} is truncated")
        if dtype == "BF16":
            bits = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            return bits.view(np.float32).reshape(shape)
        if dtype not in _NUMPY:
            raise LorakitError(f"{self.path.name}: tensor {name!r} has dtype {dtype}, which cannot be merged")
        return np.frombuffer(buf, dtype=np.dtype(_NUMPY[dtype]).newbyteorder("<")).reshape(shape)

    def copy_raw(self, name: str, out) -> None:
        """Append the tensor's bytes to an open file, in chunks, without decoding them."""
        offset, size = self._span(name)
        with open(self.path, "rb", buffering=0) as f:
            f.seek(offset)
            while size:
                chunk = f.read(min(size, _COPY_CHUNK))
                if not chunk:
                    raise LorakitError(f"{self.path.name}: tensor {name!r} is truncated")
                out.write(chunk)
                size -= len(chunk)


def to_dtype(array: np.ndarray, dtype: str) -> np.ndarray:
    """Cast a float array to a safetensors dtype (BF16 by round-to-nearest-even on the float32 bits)."""
    if dtype == "BF16":
        bits = np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)
        rounded = bits + 0x7FFF + ((bits >> 16) & 1)
        return (rounded >> 16).astype("<u2")
    return np.ascontiguousarray(array, dtype=np.dtype(_NUMPY[dtype]).newbyteorder("<"))


class StreamWriter:
    """Write a safetensors file whose tensor table is known before any data is.

    ``plan`` maps name -> (dtype, shape). Tensors must then be written in ``order`` (widest dtype
    first, as safetensors itself lays them out, so every tensor stays aligned to its item size).
    """

    def __init__(self, path: Path, plan: dict[str, tuple[str, list[int]]], metadata: dict[str, str] | None = None):
        self.path = Path(path)
        self.order = sorted(plan, key=lambda k: (-DTYPE_BYTES[plan[k][0]], k))
        header, offset = {}, 0
        for name in self.order:
            dtype, shape = plan[name]
            size = int(np.prod(shape, dtype=np.int64)) * DTYPE_BYTES[dtype]
            header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
            offset += size
        self._sizes = {k: v["data_offsets"][1] - v["data_offsets"][0] for k, v in header.items()}
        raw = json.dumps({"__metadata__": metadata or {"format": "pt"}, **header}, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        self._f = open(self.path, "wb")
        self._f.write(struct.pack("<Q", len(raw)) + raw)
        self._next = 0

    def _expect(self, name: str) -> None:
        if self._next >= len(self.order) or self.order[self._next] != name:
            want = self.order[self._next] if self._next < len(self.order) else "nothing"
            raise RuntimeError(f"tensor {name!r} written out of order (expected {want!r})")
        self._next += 1

    def write(self, name: str, array: np.ndarray) -> None:
        self._expect(name)
        if array.nbytes != self._sizes[name]:
            raise RuntimeError(f"tensor {name!r}: {array.nbytes} bytes, planned {self._sizes[name]}")
        self._f.write(memoryview(np.ascontiguousarray(array)).cast("B"))

    def copy(self, name: str, source: TensorFile, source_name: str) -> None:
        self._expect(name)
        source.copy_raw(source_name, self._f)

    def close(self) -> None:
        if self._next != len(self.order):
            raise RuntimeError(f"{len(self.order) - self._next} planned tensors were never written")
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()

    def abort(self) -> None:
        self._f.close()
