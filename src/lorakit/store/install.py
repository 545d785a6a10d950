"""Install a base model into the store: validate, hash into blobs, build the entry aside, rename.

An install is built in tmp/ and renamed into models/<name> only when every file is hashed and
fsynced, so an interrupted install leaves the store as it was.
"""

import fcntl
import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from lorakit.errors import StoreError
from lorakit.store import sources
from lorakit.store.blobs import add_blob, fsync_dir, link_blob
from lorakit.store.layout import MANIFEST, entry_dir, home, tmp_dir
from lorakit.store.safetensors_check import parameter_count, read_header

PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"}


def _source_files(root: Path) -> list[Path]:
    """Regular files under root (hidden files skipped); symlinks must stay inside root."""
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
            raise StoreError(f"{rel}: symlink points outside the source folder", "copy the real file into the folder")
        if path.is_file():
            files.append(path)
    return files


@contextmanager
def _lock(name: str):
    lock_path = home() / "locks" / f"{name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def install_model(source: str, name: str | None = None, force: bool = False, revision: str | None = None) -> dict:
    src = sources.resolve(source, revision)
    name = name or src.default_name
    dest = entry_dir("models", name)
    files = _source_files(src.path)
    rel = {f: f.relative_to(src.path).as_posix() for f in files}

    if not any(r == "config.json" for r in rel.values()):
        raise StoreError(f"{source}: no config.json", "a base model folder needs config.json and *.safetensors weights")
    weights = [f for f in files if f.suffix == ".safetensors"]
    pickles = [rel[f] for f in files if f.suffix in PICKLE_SUFFIXES]
    if not weights:
        found = f" (found pickle files: {', '.join(pickles)})" if pickles else ""
        raise StoreError(f"{source}: no .safetensors weights{found}", "lorakit installs safetensors weights only")
    headers = {rel[f]: read_header(f) for f in weights}
    files = [f for f in files if f.suffix not in PICKLE_SUFFIXES]  # safetensors present: pickles not needed

    need = sum(f.stat().st_size for f in files)
    free = shutil.disk_usage(tmp_dir()).free
    if need > free:
        raise StoreError(f"not enough disk space: need {need / 1e6:.0f} MB, {free / 1e6:.0f} MB free under {home()}")

    with _lock(name):
        if dest.exists() and not force:
            current = json.loads((dest / MANIFEST).read_text())
            raise StoreError(f"model {name!r} is already installed (from {current['source']})",
                             "use --force to replace it, or --name to pick another name")
        staging = Path(tmp_dir()) / f"install-{name}-{os.getpid()}-{time.monotonic_ns()}"
        staging.mkdir()
        try:
            manifest_files = {}
            for f in files:
                digest, size = add_blob(f, staging.parent)
                link_blob(digest, staging / rel[f])
                manifest_files[rel[f]] = {"sha256": digest, "size": size}
            config = json.loads((src.path / "config.json").read_text())
            manifest = {
                "kind": "model",
                "name": name,
                "source": src.description,
                "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "architecture": (config.get("architectures") or [config.get("model_type", "unknown")])[0],
                "model_type": config.get("model_type"),
                "parameters": sum(parameter_count(h) for h in headers.values()),
                "files": manifest_files,
            }
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
            fsync_dir(staging)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.exists():  # --force: move the old entry aside first, then swap
                old = staging.with_name(staging.name + "-old")
                os.replace(dest, old)
                os.replace(staging, dest)
                shutil.rmtree(old)
            else:
                os.replace(staging, dest)
            fsync_dir(dest.parent)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return manifest
