"""HF-format model folders: find their weights, copy their tokenizer files, write a new one atomically."""

import fnmatch
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from lorakit.errors import LorakitError
from lorakit.export.tensors import TensorFile
from lorakit.store.blobs import sha256_file
from lorakit.model.merged import MERGE_RECORD
from lorakit.store.layout import MANIFEST

INDEX = "model.safetensors.index.json"
UNMERGE_RECORD = "lorakit-unmerge.json"
# A folder holding one of these was written by lorakit, and --force may replace it.
_OURS = (MERGE_RECORD, UNMERGE_RECORD, "lorakit.json")
# Tokenizer and preprocessor files. Other files (sentence-transformers' modules.json, pooling
# folders, READMEs) describe the base, not the classifier, and would mislead other loaders.
_SIDE_FILES = ("tokenizer*", "special_tokens_map.json", "added_tokens.json", "vocab*", "merges.txt", "*.model",
               "spiece*", "sentencepiece*", "*.tiktoken", "preprocessor_config.json", "chat_template*")


def weight_files(model_dir: Path) -> list[Path]:
    """The .safetensors files of a model folder (the shards its index names, when it has one)."""
    index = model_dir / INDEX
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [model_dir / f for f in files]
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise LorakitError(f"{model_dir}: no .safetensors weights", "merge needs a base model stored as safetensors")
    return files


def open_weights(model_dir: Path) -> dict[str, TensorFile]:
    """Tensor name -> the file holding it, across all shards."""
    where: dict[str, TensorFile] = {}
    for path in weight_files(model_dir):
        tf = TensorFile(path)
        for key in tf.keys():
            if key in where:
                raise LorakitError(f"{model_dir}: tensor {key!r} is in two weight files")
            where[key] = tf
    return where


def copy_side_files(src: Path, dst: Path) -> list[str]:
    """Copy the tokenizer files at the top of a model folder."""
    copied = []
    for f in sorted(src.iterdir()):
        if f.is_file() and any(fnmatch.fnmatch(f.name, p) for p in _SIDE_FILES):
            shutil.copyfile(f, dst / f.name)
            copied.append(f.name)
    return copied


def fingerprint(model_dir: Path) -> dict:
    """What proves later that a base was not modified: size and mtime of each weight file."""
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in weight_files(model_dir)}


def verify_unchanged(model_dir: Path, before: dict) -> str:
    """Check a base after reading it: against the store manifest's sha256 when it has one, else size+mtime."""
    manifest = model_dir / MANIFEST
    if manifest.is_file():
        files = json.loads(manifest.read_text())["files"]
        for p in weight_files(model_dir):
            rel = p.relative_to(model_dir).as_posix()
            if rel in files and sha256_file(p) != files[rel]["sha256"]:
                raise LorakitError(f"{p}: its content no longer matches the store manifest",
                                   "reinstall the model: lorakit install SOURCE --force")
        return "sha256"
    if fingerprint(model_dir) != before:
        raise LorakitError(f"{model_dir}: weight files changed while being read")
    return "size+mtime"


@contextmanager
def staged_folder(out: Path, force: bool):
    """Yield a temporary sibling of ``out``; it replaces ``out`` only if the block finishes."""
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not force:
            raise LorakitError(f"{out} already exists", "pass --force to replace it, or choose another --out")
        if not any((out / name).is_file() for name in _OURS):
            raise LorakitError(f"{out} was not written by lorakit; refusing to replace it", "choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(staging, out)
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        else:
            os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
