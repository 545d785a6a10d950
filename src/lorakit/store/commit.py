"""Put a set of files into the store as one entry, atomically.

Files are hashed into blobs (copied once per content, fsynced), hard-linked into a staging
folder with the manifest, the folder is renamed into entries/, and finally the entry's symlink
is swapped with one rename. Killed at any moment, the store shows the old entry or the new one.
"""

import json
import os
import shutil
import time
from pathlib import Path

from lorakit.errors import StoreError
from lorakit.store import hashcache
from lorakit.store.blobs import fsync_dir, has_blob, link_blob, publish_blob, sha256_file, stage_blob, sync_files
from lorakit.store.integrity import damaged_files
from lorakit.store.layout import KIND_WORD, KINDS, MANIFEST, blob_dir, entry_dir, home, tmp_dir, versions_dir
from lorakit.store.locks import name_lock, store_lock


def read_manifest(path: Path) -> dict | None:
    try:
        return json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _check_free(files: dict[str, Path], digests: dict[str, str | None]) -> None:
    need = sum(p.stat().st_size for rel, p in files.items() if not (digests[rel] and has_blob(digests[rel])))
    where = next(p for p in (home(), *home().parents) if p.exists())  # the store may not exist yet
    free = shutil.disk_usage(where).free
    if need + (64 << 20) > free:
        raise StoreError(f"not enough disk space: need {need / 1e6:.0f} MB, {free / 1e6:.0f} MB free under {home()}",
                         "free some space, or run: lorakit gc")


def _fsync_tree(root: Path) -> None:
    """The manifest and every folder of the staged entry (the hard links are already durable blobs)."""
    sync_files([root / MANIFEST] + [Path(d) for d, _, _ in os.walk(root)])


def _swap_in(kind: str, name: str, staging: Path) -> Path | None:
    """Rename staging into entries/ and point the entry's symlink at it. Returns the replaced version."""
    link = entry_dir(kind, name)
    old = link.resolve() if link.is_symlink() else None
    version = versions_dir(kind) / f"{name}.{time.time_ns():x}{os.urandom(2).hex()}"
    version.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, version)
    fsync_dir(version.parent)
    tmp_link = tmp_dir() / f"link-{os.getpid()}-{os.urandom(4).hex()}"
    os.symlink(os.path.relpath(version, home() / kind), tmp_link)
    link.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp_link, link)
    fsync_dir(link.parent)
    return old


def commit(kind: str, name: str, files: dict[str, Path], meta: dict, force: bool = False) -> dict:
    """Install ``files`` ({relative path: source file}) as entry ``kind/name`` with manifest ``meta``."""
    word = KIND_WORD[kind]
    files = {r: p for r, p in files.items() if r != MANIFEST}  # a copied store entry: the manifest is ours to write
    other = next(k for k in KINDS if k != kind)

    def name_clash() -> None:
        if entry_dir(other, name).is_symlink():
            raise StoreError(f"{name!r} is already the name of an installed {KIND_WORD[other]}",
                             "pick another name with --name")

    # Checked before any lock file is created, so that a refused install leaves no trace.
    name_clash()
    cache = hashcache.load()
    digests = {rel: hashcache.lookup(cache, p) for rel, p in files.items()}
    _check_free(files, digests)
    with store_lock(), name_lock(kind, name):
        name_clash()
        link = entry_dir(kind, name)
        current = read_manifest(link) if link.is_symlink() else None
        repaired: list[str] = []
        if current is not None:
            for rel, p in files.items():  # hash without copying: an identical install is reused
                if digests[rel] is None:
                    digests[rel] = sha256_file(p)
                    hashcache.remember(cache, p, digests[rel])
            same = {rel: f["sha256"] for rel, f in current["files"].items()} == digests
            if same and not force:
                # The same content again: reuse the entry if it is intact, else this install is its repair.
                damaged = damaged_files(link, current, cache, trust_cache=True)
                lost = {rel for rel, d in digests.items() if not has_blob(d)}
                if not damaged and not lost:
                    hashcache.save(cache)
                    return {**current, "reused": True}
                repaired = sorted(damaged.keys() | lost)
            elif not force:
                raise StoreError(f"{word} {name!r} is already installed (from {current.get('source')})",
                                 "use --force to replace it, or --name to pick another name")
        if force or repaired:  # drop blobs whose content no longer matches: they are copied again from the source
            for d in {d for d in digests.values() if d and has_blob(d)}:
                if sha256_file(blob_dir() / d) != d:
                    (blob_dir() / d).unlink()

        staging = tmp_dir() / f"install-{kind}-{name}-{os.getpid()}-{os.urandom(4).hex()}"
        staging.mkdir()
        staged: dict[str, Path] = {}
        try:
            manifest_files = {}
            for rel, src in files.items():  # copy and hash what the store lacks, once per content
                digest = digests[rel]
                if digest and has_blob(digest):
                    manifest_files[rel] = {"sha256": digest, "size": src.stat().st_size}
                elif digest in staged:
                    manifest_files[rel] = {"sha256": digest, "size": src.stat().st_size}
                else:
                    path, digest, size = stage_blob(src, staging.parent)
                    staged.setdefault(digest, path)
                    if staged[digest] != path:
                        path.unlink()
                    hashcache.remember(cache, src, digest)
                    manifest_files[rel] = {"sha256": digest, "size": size}
            sync_files(list(staged.values()))  # durable before anything names them
            for digest, path in staged.items():
                publish_blob(path, digest)
            for rel, f in manifest_files.items():
                link_blob(f["sha256"], staging / rel)
            manifest = {"kind": word, "name": name, **meta,
                        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "files": manifest_files}
            with open(staging / MANIFEST, "x") as f:  # "x": never write through a hard-linked blob
                json.dump(manifest, f, indent=2)
            _fsync_tree(staging)
            old = _swap_in(kind, name, staging)
            for rel, f in manifest_files.items():  # hashed while copied: a reinstall need not read them again
                if f["sha256"] in staged:
                    hashcache.remember(cache, link / rel, f["sha256"])
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            for path in staged.values():
                path.unlink(missing_ok=True)
        if old is not None and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        hashcache.save(cache)
    return {**manifest, "repaired": repaired} if repaired else manifest
