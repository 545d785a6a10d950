"""Content-addressed file storage: hash while copying, fsync, then rename into place."""

import functools
import hashlib
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lorakit.errors import StoreError
from lorakit.store.layout import blob_dir

_CHUNK = 8 << 20
_PARALLEL_MIN = 4 << 20  # below this, one pass in Python is quicker than a thread hand-off


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def fsync_dir(path: Path) -> None:
    """fsync a folder (its entries) or a file: both open read-only."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def has_blob(digest: str) -> bool:
    return (blob_dir() / digest).is_file()


def _copy_small(src: Path, dst: Path) -> tuple[str, int]:
    """One pass: every chunk read is hashed and written (the hash is of the bytes written)."""
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
    return h.hexdigest(), size


def _kernel_copy(src: Path, dst: Path) -> int:
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        size = os.fstat(fin.fileno()).st_size
        done = 0
        try:
            while done < size and (n := os.copy_file_range(fin.fileno(), fout.fileno(), size - done)):
                done += n
        except OSError:  # not supported across these filesystems: plain copy of the rest
            fin.seek(done)
            fout.seek(done)
            shutil.copyfileobj(fin, fout, _CHUNK)
            done = fout.tell()
        fout.flush()
        os.fsync(fout.fileno())  # while the hash thread is still reading: the disk write overlaps it
    return done


def _copy_hashed(src: Path, dst: Path) -> tuple[str, int]:
    """Copy in the kernel (and fsync) while another thread hashes; both release the GIL, so they overlap.

    The hash is of the source, so the source must not change meanwhile: its stat signature is
    compared before and after, and a changed source fails the install.
    """
    if src.stat().st_size < _PARALLEL_MIN:
        return _copy_small(src, dst)
    before = _signature(src)
    hashed = _pool().submit(sha256_file, src)
    size = _kernel_copy(src, dst)
    digest = hashed.result()
    if _signature(src) != before or size != before[0]:
        raise StoreError(f"{src.name} changed while it was being installed", "install again once it is complete")
    return digest, size


def _signature(path: Path) -> tuple:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="lorakit-hash")


def stage_blob(src: Path, tmp: Path) -> tuple[Path, str, int]:
    """Copy ``src`` into tmp/ and hash it. Returns (staged file, sha256, size); not yet durable."""
    staged = tmp / f"blob-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        digest, size = _copy_hashed(src, staged)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return staged, digest, size


def sync_files(paths: list[Path]) -> None:
    """fsync a batch of freshly written files (or folders), all at once.

    Done once for all of an install's files after every copy has been issued, from several
    threads: concurrent fsyncs share one journal commit and one device flush instead of paying
    for one each (about 4 ms per file on a virtual disk).
    """
    if len(paths) <= 1:
        for p in paths:
            fsync_dir(p)
        return
    with ThreadPoolExecutor(max_workers=min(16, len(paths)), thread_name_prefix="lorakit-fsync") as pool:
        list(pool.map(fsync_dir, paths))


def publish_blob(staged: Path, digest: str) -> None:
    """Rename a staged (and fsynced) file into blobs/ under its digest, unless that content is there."""
    target = blob_dir() / digest
    if target.is_file():
        staged.unlink()
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(staged, 0o444)
    os.replace(staged, target)


def add_blob(src: Path, tmp: Path) -> tuple[str, int]:
    """Copy ``src`` into the blob store (once per content), durably. Returns (sha256, size)."""
    staged, digest, size = stage_blob(src, tmp)
    try:
        sync_files([staged])
        publish_blob(staged, digest)
    finally:
        staged.unlink(missing_ok=True)
    return digest, size


def link_blob(digest: str, dest: Path) -> None:
    """Place a blob at ``dest``: a hard link where the filesystem allows, else a copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(blob_dir() / digest, dest)
    except OSError:
        shutil.copyfile(blob_dir() / digest, dest)
        os.chmod(dest, 0o444)
