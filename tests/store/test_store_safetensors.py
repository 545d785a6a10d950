"""Hostile safetensors files: each one refused with one line and exit 1, the store untouched."""

import json
import struct

import pytest

from store_helpers import assert_one_line_error, raw_safetensors, store_state


def _model_dir(tmp_path, weights_writer):
    d = tmp_path / "hostile"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 4}))
    weights_writer(d / "model.safetensors")
    return d


DUP = b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}'
F32_2x2 = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
CASES = {
    "truncated-length": (lambda p: p.write_bytes(b"\x10\x00\x00"), "shorter than 8 bytes"),
    "header-claims-gigabytes": (lambda p: p.write_bytes(struct.pack("<Q", 50 << 30) + b"{}"), "header claims"),
    "header-past-end": (lambda p: raw_safetensors(p, {"w": F32_2x2}, b"\0" * 16, header_len=10_000), "truncated"),
    "not-json": (lambda p: p.write_bytes(struct.pack("<Q", 5) + b"{nope"), "not valid JSON"),
    "json-list": (lambda p: raw_safetensors(p, [1, 2]), "not a JSON object"),
    "deep-json": (lambda p: p.write_bytes(struct.pack("<Q", 200_000) + b"[" * 100_000 + b"]" * 100_000),
                  "not valid JSON"),
    "unknown-dtype": (lambda p: raw_safetensors(p, {"w": {**F32_2x2, "dtype": "F31"}}, b"\0" * 16), "unknown dtype"),
    "dtype-not-string": (lambda p: raw_safetensors(p, {"w": {**F32_2x2, "dtype": ["F32"]}}, b"\0" * 16),
                         "unknown dtype"),
    "negative-shape": (lambda p: raw_safetensors(p, {"w": {**F32_2x2, "shape": [-2, -2]}}, b"\0" * 16),
                       "malformed shape"),
    "shape-vs-bytes": (lambda p: raw_safetensors(p, {"w": {**F32_2x2, "shape": [4, 4]}}, b"\0" * 16), "needs 64"),
    "offsets-outside": (lambda p: raw_safetensors(p, {"w": {**F32_2x2, "data_offsets": [0, 16]}}, b"\0" * 8),
                        "points outside"),
    "reversed-offsets": (lambda p: raw_safetensors(p, {"w": {**F32_2x2, "data_offsets": [16, 0]}}, b"\0" * 16),
                         "points outside"),
    "overlap": (lambda p: raw_safetensors(p, {"a": F32_2x2, "b": {**F32_2x2, "data_offsets": [8, 24]}}, b"\0" * 24),
                "overlaps"),
    "gap": (lambda p: raw_safetensors(p, {"a": {**F32_2x2, "data_offsets": [8, 24]}}, b"\0" * 24), "gap"),
    "trailing-bytes": (lambda p: raw_safetensors(p, {"a": F32_2x2}, b"\0" * 40), "after the last tensor"),
    "extra-field": (lambda p: raw_safetensors(p, {"a": {**F32_2x2, "x": 1}}, b"\0" * 16), "malformed entry"),
    "bad-metadata": (lambda p: raw_safetensors(p, {"__metadata__": {"a": 1}, "w": F32_2x2}, b"\0" * 16),
                     "__metadata__"),
    "duplicate-names": (lambda p: p.write_bytes(struct.pack("<Q", len(DUP)) + DUP + b"\0" * 16), "duplicate key"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_weights_are_refused_and_leave_the_store_unchanged(case, tmp_path, cli, tiny_installed):
    writer, needle = CASES[case]
    before = store_state()
    rc, out, err = cli("install", _model_dir(tmp_path, writer), "--name", "evil")
    assert_one_line_error(rc, err, "model.safetensors", needle)
    assert store_state() == before
    assert cli("verify")[0] == 0


def test_a_real_file_passes_and_its_table_is_returned(tiny_model_dir):
    from lorakit.store.safetensors_check import parameter_count, read_header

    header = read_header(tiny_model_dir / "model.safetensors")
    assert "embeddings.word_embeddings.weight" in header
    assert parameter_count(header) > 10_000


def test_header_check_reads_only_the_header(tmp_path, monkeypatch):
    """A header claiming 50 GB is refused before any allocation of that size."""
    import builtins

    from lorakit.errors import StoreError
    from lorakit.store.safetensors_check import read_header

    p = tmp_path / "big.safetensors"
    p.write_bytes(struct.pack("<Q", 50 << 30) + b"{}")
    real_open = builtins.open
    reads = []

    class Spy:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

        def read(self, n=-1):
            reads.append(n)
            return self.f.read(n)

    monkeypatch.setattr(builtins, "open", lambda *a, **k: Spy(real_open(*a, **k)))
    with pytest.raises(StoreError):
        read_header(p)
    assert -1 not in reads and sum(reads) <= 64  # the length and a peek at the header's first bytes, no more


def test_mutated_files_give_a_store_error_or_a_valid_table(tmp_path, tiny_model_dir):
    """Random byte flips, truncations and header rewrites: never any other exception."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from lorakit.errors import StoreError
    from lorakit.store.safetensors_check import read_header

    good = (tiny_model_dir / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", good[:8])
    target = tmp_path / "fuzz.safetensors"

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(cut=st.integers(0, 8 + n + 64), flips=st.lists(st.tuples(st.integers(0, 8 + n - 1), st.integers(0, 255)),
                                                          max_size=4), truncate=st.booleans())
    def check(cut, flips, truncate):
        data = bytearray(good[: cut] if truncate else good)
        for pos, byte in flips:
            if pos < len(data):
                data[pos] = byte
        target.write_bytes(bytes(data))
        try:
            read_header(target)
        except StoreError:
            pass

    check()
