"""Install an adapter into the store, checked against the base it is meant for.

Accepted: a PEFT folder (LoRA, rsLoRA, DoRA, AdaLoRA), a lorakit run folder, a single PEFT
``.safetensors`` file (config inferred from its tensors when no adapter_config.json sits next
to it), a kohya-style LoRA file (converted to PEFT keys), and pickled adapters with
--allow-pickle (converted to safetensors without running code).
"""

import json
import tempfile
from pathlib import Path

from lorakit.errors import NotInstalledError, StoreError
from lorakit.store import compat, kohya, pickles, sources
from lorakit.store.commit import commit, read_manifest
from lorakit.store.entries import installed_from, installed_names, model_dir
from lorakit.store.install import read_json
from lorakit.store.layout import NAME_HINT, check_name, entry_dir, home, looks_like_path
from lorakit.store.safetensors_check import dtypes, parameter_count, read_header, read_metadata, shapes

WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"
# Small files that travel with an adapter folder (labels, model card, tokenizer).
EXTRAS = {".json", ".md", ".txt", ".model"}
BASE_HINT = ("--base takes the name of an installed model (see: lorakit list); "
             "install a model folder first with: lorakit install FOLDER --name NAME")


# What `lorakit install --adapter SOURCE` takes, for the hint of a source that is none of these.
ACCEPTED = "give a PEFT adapter folder, a lorakit run folder, or an adapter .safetensors file (PEFT or kohya)"
CONFIG_HINT = f"fix {CONFIG} (it must hold one JSON object), or save the adapter again with PEFT's save_pretrained"


def _peft_folder_files(source: str, src: sources.Source) -> dict[str, Path]:
    root = src.root
    if (root / "adapter" / CONFIG).is_file():  # a lorakit run folder: its adapter/ holds the adapter
        root = root / "adapter"
    if not (root / CONFIG).is_file():
        if (root / "config.json").is_file():
            raise StoreError(f"{source}: no {CONFIG} here: it holds a base model, not an adapter",
                             f"install it as a model: lorakit install {source}")
        raise StoreError(f"{source}: no {CONFIG} here", ACCEPTED)
    files = sources.folder_files(root)
    return {r: p for r, p in files.items() if "/" not in r and (r == WEIGHTS or pickles.is_pickle(r)
                                                              or Path(r).suffix in EXTRAS)}


def _infer_config(header: dict, workdir: Path) -> Path:
    """adapter_config.json for a bare PEFT weights file: rank from the tensors, alpha from metadata or = r."""
    from peft import LoraConfig

    mods = compat.lora_keys(shapes(header))
    ranks = {m: roles["lora_A"][0] for m, roles in mods.items() if "lora_A" in roles}
    if not ranks:
        raise StoreError("the adapter file has no lora_A / lora_B tensors")
    r = max(set(ranks.values()), key=list(ranks.values()).count)
    targets = sorted({m.split(".")[-1] for m in mods})
    cfg = LoraConfig(r=r, lora_alpha=r, target_modules=targets,
                     rank_pattern={m: v for m, v in ranks.items() if v != r})
    cfg.save_pretrained(str(workdir))
    return workdir / CONFIG


def _single_file(path: Path, rel: str, base_shapes: dict, base_cfg: dict, allow_pickle: bool,
                 workdir: Path) -> dict[str, Path]:
    if pickles.is_pickle(rel):
        if not allow_pickle:
            raise pickles.refuse(str(path), [rel])
        path = pickles.convert(path, rel, workdir / "converted.safetensors")
    elif not rel.lower().endswith(".safetensors"):
        suffix = Path(rel).suffix.lower()
        raise StoreError(f"{rel} is not an adapter file ({f'a {suffix} file' if suffix else 'no suffix'})", ACCEPTED)
    header = read_header(path)
    if kohya.is_kohya(header):
        out = kohya.convert(path, header, base_shapes, base_cfg, workdir / "peft")
        return {CONFIG: out / CONFIG, WEIGHTS: out / WEIGHTS}
    if not compat.lora_keys(shapes(header)):
        raise StoreError(f"{rel}: not a LoRA adapter (no lora_A/lora_B or lora_down/lora_up tensors)",
                         f"{ACCEPTED}; a base model's weights install with: lorakit install {path}")
    config = path.parent / CONFIG
    if not config.is_file() or config.is_symlink():
        config = _infer_config(header, workdir)
        meta = read_metadata(path)
        if "lora_alpha" in meta:  # some tools record alpha in the file's metadata
            try:
                alpha = float(meta["lora_alpha"])
            except ValueError:
                raise StoreError(f"{rel}: metadata lora_alpha {meta['lora_alpha'][:30]!r} is not a number",
                                 f"put an {CONFIG} with the right lora_alpha beside the file") from None
            cfg = read_json(config, CONFIG)
            cfg["lora_alpha"] = alpha
            config.write_text(json.dumps(cfg, indent=2))
    return {CONFIG: config, WEIGHTS: path}


def fits_elsewhere(adapter_shapes: dict, adapter_cfg: dict, skip: str) -> list[str]:
    out = []
    for base in installed_names("models"):
        if base == skip:
            continue
        d = model_dir(base)
        try:
            cfg = read_json(d / "config.json", "config.json")
            if not compat.mismatches(adapter_shapes, adapter_cfg, compat.base_shapes(d), cfg):
                out.append(base)
        except StoreError:
            continue
    return out


def check_fits(adapter_shapes: dict, adapter_cfg: dict, base: str, what: str) -> None:
    bad = compat.config_problems(adapter_cfg)
    if bad:
        raise StoreError(f"{what}: {compat.summary(bad)}",
                         "fix adapter_config.json, or save the adapter again with PEFT")
    d = model_dir(base)
    problems = compat.mismatches(adapter_shapes, adapter_cfg, compat.base_shapes(d),
                                 read_json(d / "config.json", f"{base}: config.json",
                                           f"check it: lorakit verify {base}"))
    if problems:
        others = fits_elsewhere(adapter_shapes, adapter_cfg, base)
        plural = "s" if len(others) > 1 else ""
        hint = (f"it fits the installed base{plural} {', '.join(others)}: use --base {others[0]}"
                if others else "no installed base fits it: install the model it was trained on, then pass --base")
        raise StoreError(f"{what} does not fit base {base!r}: {compat.summary(problems)}", hint)


def check_folder(adapter: Path, base: str) -> None:
    """Check a PEFT adapter folder (a store entry or a run's adapter/) against ``base`` before loading it."""
    weights = adapter / WEIGHTS
    if not weights.is_file():
        raise StoreError(f"{adapter}: no {WEIGHTS}", "save the adapter with PEFT's save_pretrained")
    check_fits(shapes(read_header(weights)), read_json(adapter / CONFIG, f"{adapter}: {CONFIG}"), base,
               f"adapter {str(adapter)!r}")


def method(cfg: dict) -> str:
    if str(cfg.get("peft_type", "")).upper() == "ADALORA":
        return "adalora"
    if cfg.get("use_dora"):
        return "dora"
    return "rslora" if cfg.get("use_rslora") else "lora"


def recorded_base(source: str, src: sources.Source) -> str:
    """The installed base model a lorakit run (or an adapter saved by lorakit) records in its lorakit.json.

    lorakit.json holds the base as given to train: a store name, or a model folder, in which case the
    installed model whose source is that folder is the base.
    """
    ask = "pass --base NAME (see: lorakit list)"
    folder = src.root
    if folder is not None and (folder / "adapter" / CONFIG).is_file():  # a run folder: its adapter/ records it
        folder = folder / "adapter"
    if folder is None or not (folder / "lorakit.json").is_file():
        raise StoreError("an adapter needs its base model", ask)
    meta = read_json(folder / "lorakit.json", f"{source}: lorakit.json", ask)
    base = meta.get("base")
    if not isinstance(base, str) or not base:
        raise StoreError(f"{source}: lorakit.json records no base model", ask)
    if not (looks_like_path(base) or base.startswith(".")):
        check_name(base, ask)
        if read_manifest(entry_dir("models", base)) is None:
            how = f"lorakit install {base}" if base in sources.ALIASES else f"lorakit install SOURCE --name {base}"
            raise NotInstalledError(f"the adapter's base model {base!r} (from its lorakit.json) is not installed "
                                    f"in {home()}", f"install it first: {how}; or pass --base NAME")
        return base
    folders = {Path(p).expanduser().resolve() for p in (base, meta.get("base_path")) if isinstance(p, str) and p}
    for folder in sorted(folders):
        names = installed_from(folder)
        if names:
            return names[0]
    raise NotInstalledError(f"the adapter's base, the model folder {base} (from its lorakit.json), is not installed "
                            f"in {home()}", f"install it first: lorakit install {base}; or pass --base NAME")


def install_adapter(source: str, base: str | None = None, name: str | None = None, force: bool = False,
                    sha256: str | None = None, allow_pickle: bool = False, revision: str | None = None) -> dict:
    """Install ``source`` as an adapter of the installed model ``base`` (default: the base a run records)."""
    if base:
        model_dir(check_name(base, BASE_HINT))  # an installed model, not any folder: checked before any download
    src = sources.resolve(source, revision, sha256=sha256, companions=False)
    base = base or recorded_base(source, src)
    base_dir = model_dir(base)
    base_cfg = read_json(base_dir / "config.json", f"{base}: config.json", f"check the store: lorakit verify {base}")
    default = src.root.name if src.root is not None else src.default_name
    name = check_name(name or (src.root.parent.name if default == "adapter" and src.root else default), NAME_HINT)
    # Conversions go to the system's temp folder: nothing is written to the store before commit().
    with tempfile.TemporaryDirectory(prefix="lorakit-convert-") as tmp:
        workdir = Path(tmp)
        if src.root is not None:
            files = _peft_folder_files(source, src)
            weights = [r for r in files if r == WEIGHTS or pickles.is_pickle(r)]
            if WEIGHTS not in files:
                if not weights:
                    raise StoreError(f"{source}: no {WEIGHTS}", "save the adapter with PEFT's save_pretrained")
                if not allow_pickle:
                    raise pickles.refuse(source, weights)
                files[WEIGHTS] = pickles.convert(files[weights[0]], weights[0], workdir / WEIGHTS)
            files = {r: p for r, p in files.items() if not pickles.is_pickle(r)}
        else:
            (rel, path), = src.files.items()
            files = _single_file(path, rel, compat.base_shapes(base_dir), base_cfg, allow_pickle, workdir)
        header = read_header(files[WEIGHTS])
        cfg = read_json(files[CONFIG], f"{source}: {CONFIG}", CONFIG_HINT)
        check_fits(shapes(header), cfg, base, f"adapter {name!r}")
        meta = {
            "source": src.description,
            **src.pins,
            "base": base,
            "base_files": {r: f["sha256"] for r, f in _manifest_files(base_dir).items()
                           if r.endswith(".safetensors")},
            "format": "kohya" if "kohya" in read_metadata(files[WEIGHTS]).get("converted_from", "") else "peft",
            "peft_type": str(cfg.get("peft_type", "LORA")),
            "method": method(cfg),
            "r": cfg.get("r"),
            "lora_alpha": cfg.get("lora_alpha"),
            "target_modules": cfg.get("target_modules"),
            "task_type": cfg.get("task_type"),
            "parameters": parameter_count(header),
            "dtype": ",".join(dtypes(header)),
            "architecture": f"{method(cfg)} adapter",
        }
        if "labels.json" in files:
            meta["labels"] = read_json_list(files["labels.json"])
        return commit("adapters", name, files, meta, force)


def read_json_list(path: Path) -> list | None:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, list) else None
    except (OSError, ValueError):
        return None


def _manifest_files(d: Path) -> dict:
    return (read_manifest(d) or {}).get("files", {})
