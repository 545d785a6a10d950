"""Keep the store honest: verify (rehash everything), remove an entry, collect garbage."""

import contextlib
import os
import shutil
from pathlib import Path

from lorakit.errors import StoreError
from lorakit.store import hashcache
from lorakit.store.commit import read_manifest
from lorakit.store.entries import find, installed_names
from lorakit.store.integrity import damaged_files
from lorakit.store.layout import KINDS, blob_dir, entry_dir, home, tmp_dir, versions_dir
from lorakit.store.locks import name_lock, store_lock


def verify(name: str | None = None) -> dict:
    """Rehash the files of one entry (or all). Returns {checked: [...], problems: [...]}."""
    targets = [(find(name)[0], name)] if name else [(k, n) for k in KINDS for n in installed_names(k)]
    problems = []
    for kind in KINDS if not name else ():
        root = home() / kind
        for d in sorted(root.iterdir()) if root.is_dir() else ():
            if not d.is_symlink() or read_manifest(d) is None:
                problems.append(f"{d.name}: broken entry in {kind}/")
    cache = hashcache.load()
    for kind, n in targets:
        d = entry_dir(kind, n)
        m = read_manifest(d)
        if m is None:
            problems.append(f"{n}: manifest missing or unreadable")
            continue
        problems += [f"{n}: {p}" for p in damaged_files(d, m, cache, trust_cache=False).values()]
    if problems:  # what was found damaged is no longer vouched for by the hash cache
        with contextlib.suppress(OSError):  # (a read-only store is verified all the same)
            hashcache.save(cache)
    return {"checked": [n for _, n in targets], "problems": problems}


def remove(name: str, force: bool = False) -> dict:
    kind, d = find(name)
    with store_lock(), name_lock(kind, name):
        m = read_manifest(d)
        if kind == "models" and not force:
            users = [a for a in installed_names("adapters") if (read_manifest(entry_dir("adapters", a)) or {})
                     .get("base") == name]
            if users:
                raise StoreError(f"model {name!r} is the base of installed adapters: {', '.join(users)}",
                                 f"remove them first (lorakit rm {users[0]}), or pass --force")
        version = d.resolve()
        os.unlink(d)  # one atomic step: the entry is gone
        shutil.rmtree(version, ignore_errors=True)
    return {"removed": name, "kind": m["kind"], "freed_by_gc": "run: lorakit gc"}


def gc() -> dict:
    """Drop blobs no entry references, entry versions no symlink points at, and leftovers in tmp/.

    Runs under the exclusive store lock: every install holds it shared for its whole length, so
    nothing in tmp/ belongs to a running install and no blob being installed can be collected.
    """
    freed, blobs, versions, temps = 0, 0, 0, 0
    with store_lock(exclusive=True):
        live_versions = set()
        referenced = set()
        for kind in KINDS:
            for n in installed_names(kind):
                d = entry_dir(kind, n)
                live_versions.add(d.resolve())
                referenced.update(f["sha256"] for f in read_manifest(d)["files"].values())
            root = versions_dir(kind)
            for v in sorted(root.iterdir()) if root.is_dir() else ():
                if v.resolve() not in live_versions:
                    shutil.rmtree(v, ignore_errors=True)
                    versions += 1
        for b in sorted(blob_dir().iterdir()) if blob_dir().is_dir() else ():
            if b.name not in referenced:
                freed += b.stat().st_size
                b.unlink()
                blobs += 1
        for t in sorted(tmp_dir().iterdir()):  # left by killed installs
            freed += _size(t)
            if t.is_dir() and not t.is_symlink():
                shutil.rmtree(t)
            else:
                t.unlink()
            temps += 1
        downloads = home() / "downloads"
        for f in sorted(downloads.rglob("*")) if downloads.is_dir() else ():
            if f.is_file() and not f.name.endswith(".part"):  # complete and installed; partial ones may resume
                freed += f.stat().st_size
                f.unlink()
                temps += 1
    return {"blobs_removed": blobs, "versions_removed": versions, "temp_removed": temps, "bytes_freed": freed}


def _size(p: Path) -> int:
    if p.is_symlink() or p.is_file():
        return p.lstat().st_size
    return sum(f.lstat().st_size for f in p.rglob("*") if f.is_file())
