"""Content-addressed file storage: hash while copying, fsync, then rename into place."""

import hashlib
import os
import shutil
from pathlib import Path

from lorakit.store.layout import blob_dir

_CHUNK = 8 << 20


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def has_blob(digest: str) -> bool:
    return (blob_dir() / digest).is_file()


def _copy_hashed(src: Path, dst: Path) -> tuple[str, int]:
    """One pass over the source: every chunk read is hashed and written (the hash is of what we wrote)."""
    h = hashlib.sha256()
    size = 0
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with open(src, "rb", buffering=0) as fin, open(dst, "wb", buffering=0) as fout:
        while n := fin.readinto(buf):
            chunk = view[:n]
            h.update(chunk)
            while chunk:
                chunk = chunk[fout.write(chunk):]
            size += n
        os.fsync(fout.fileno())
    return h.hexdigest(), size


def add_blob(src: Path, tmp: Path) -> tuple[str, int]:
    """Copy ``src`` into the blob store (once per content). Returns (sha256, size)."""
    staging = tmp / f"blob-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        digest, size = _copy_hashed(src, staging)
        target = blob_dir() / digest
        if target.is_file():
            staging.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(staging, 0o444)
            os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    return digest, size


def link_blob(digest: str, dest: Path) -> None:
    """Place a blob at ``dest``: a hard link where the filesystem allows, else a copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(blob_dir() / digest, dest)
    except OSError:
        shutil.copyfile(blob_dir() / digest, dest)
        os.chmod(dest, 0o444)
