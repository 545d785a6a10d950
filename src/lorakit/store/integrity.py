"""Is an installed entry intact? One check, used by verify and by reinstalling identical content."""

from pathlib import Path

from lorakit.errors import StoreError
from lorakit.store import hashcache
from lorakit.store.blobs import sha256_file
from lorakit.store.layout import MANIFEST
from lorakit.store.safetensors_check import read_header


def damaged_files(d: Path, m: dict, cache: dict, trust_cache: bool) -> dict[str, str]:
    """{relative path: what is wrong with it} for the entry folder ``d`` against its manifest ``m``.

    Every file is rehashed unless ``trust_cache`` and the hash cache vouches for it: its stat
    signature is the one recorded when it was last hashed (writing to a file always changes its
    inode change time). A file found damaged is dropped from the cache, never vouched for again.
    """
    out = {}
    for rel, f in m["files"].items():
        p = d / rel
        if not p.is_file():
            out[rel] = f"{rel} is missing"
            continue
        digest = hashcache.lookup(cache, p) if trust_cache else None
        if digest is None and p.stat().st_size == f["size"]:
            digest = sha256_file(p)
        if digest != f["sha256"]:
            hashcache.forget(cache, p)
            out[rel] = f"{rel} is corrupt (sha256 differs from the manifest)"
            continue
        hashcache.remember(cache, p, digest)
        if rel.endswith(".safetensors"):
            try:
                read_header(p)
            except StoreError as e:
                out[rel] = e.message
    for p in d.rglob("*"):
        rel = p.relative_to(d).as_posix()
        if p.is_file() and rel != MANIFEST and rel not in m["files"]:
            out[rel] = f"unexpected file {rel}"
    return out
