"""Content-addressed file storage: hash while copying, fsync, then rename into place."""

import hashlib
import os
import shutil
from pathlib import Path

from lorakit.store.layout import blob_dir

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def add_blob(src: Path, tmp: Path) -> tuple[str, int]:
    """Copy ``src`` into the blob store (once per content). Returns (sha256, size)."""
    staging = tmp / f"blob-{os.getpid()}-{src.name}"
    h = hashlib.sha256()
    size = 0
    with open(src, "rb") as fin, open(staging, "wb") as fout:
        while chunk := fin.read(_CHUNK):
            h.update(chunk)
            fout.write(chunk)
            size += len(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    digest = h.hexdigest()
    target = blob_dir() / digest
    if target.exists():
        staging.unlink()
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, target)
        os.chmod(target, 0o444)
        fsync_dir(target.parent)
    return digest, size


def link_blob(digest: str, dest: Path) -> None:
    """Place a blob at ``dest``: a hard link where the filesystem allows, else a copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(blob_dir() / digest, dest)
    except OSError:
        shutil.copyfile(blob_dir() / digest, dest)
