"""Read what is installed: list entries, find an entry's folder, describe one."""

from pathlib import Path

from lorakit.errors import LorakitError, NotInstalledError, StoreError
from lorakit.store.commit import read_manifest
from lorakit.store.layout import KIND_WORD, KINDS, entry_dir, home, looks_like_path
from lorakit.store.sources import ALIASES


def installed_names(kind: str) -> list[str]:
    root = home() / kind
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if d.is_symlink() and read_manifest(d) is not None)


def installed_from(folder: Path) -> list[str]:
    """Installed models whose source is the local folder ``folder``."""
    want = f"dir:{folder.resolve()}"
    return [n for n in installed_names("models") if (read_manifest(entry_dir("models", n)) or {}).get("source") == want]


def list_entries() -> list[dict]:
    out = []
    for kind in KINDS:
        for name in installed_names(kind):
            m = read_manifest(entry_dir(kind, name))
            m["size"] = sum(f["size"] for f in m["files"].values())
            out.append(m)
    return out


def find(name: str) -> tuple[str, Path]:
    """(kind, folder) of an installed model or adapter called ``name``."""
    for kind in KINDS:
        d = entry_dir(kind, name)
        if d.is_symlink() and read_manifest(d) is not None:
            return kind, d
    raise NotInstalledError(f"nothing called {name!r} is installed in {home()}", "see: lorakit list")


def model_dir(name: str) -> Path:
    """Folder of an installed base model. A path to an HF-format folder is accepted as is."""
    path = Path(name).expanduser()
    if looks_like_path(name) or name.startswith("."):
        if (path / "config.json").is_file():
            return path.resolve()
        why = "not a model folder (no config.json)" if path.is_dir() else "no such model folder"
        raise StoreError(f"{name}: {why}",
                         "give a folder with config.json and *.safetensors weights, or an installed model's name "
                         "(see: lorakit list)")
    d = entry_dir("models", name)
    if read_manifest(d) is None:
        hint = f"run: lorakit install {name}" if name in ALIASES else "run: lorakit install SOURCE --name " + name
        raise NotInstalledError(f"model {name!r} is not installed in {home()}", hint)
    return d


def adapter_dir(name: str, check: bool = True) -> Path:
    """Folder of an installed adapter (PEFT format), re-checked against its base unless ``check=False``."""
    d = entry_dir("adapters", name)
    m = read_manifest(d)
    if m is None:
        raise NotInstalledError(f"adapter {name!r} is not installed in {home()}",
                                f"run: lorakit install --adapter SOURCE --base BASE --name {name}")
    if check:
        from lorakit.store.adapters import check_folder

        check_folder(d, m["base"])
    return d


def manifest(kind: str, name: str) -> dict:
    m = read_manifest(entry_dir(kind, name))
    if m is None:
        raise NotInstalledError(f"{KIND_WORD[kind]} {name!r} is not installed in {home()}", "see: lorakit list")
    return m


def show(name: str) -> dict:
    """Manifest plus what fits: adapters for a model, the bases that fit for an adapter."""
    from lorakit.store import adapters, compat
    from lorakit.store.install import read_json
    from lorakit.store.safetensors_check import read_header, shapes

    kind, d = find(name)
    m = dict(read_manifest(d))
    m["path"] = str(d)
    if kind == "models":
        cfg = read_json(d / "config.json", f"{name}: config.json", f"check it: lorakit verify {name}")
        base = compat.base_shapes(d)
        fits = []
        for a in installed_names("adapters"):
            ad = entry_dir("adapters", a)
            try:
                sh = shapes(read_header(ad / "adapter_model.safetensors"))
                if not compat.mismatches(sh, read_json(ad / "adapter_config.json", "adapter_config.json"), base, cfg):
                    fits.append(a)
            except (LorakitError, OSError):  # a corrupt entry is verify's business, not show's
                continue
        m["adapters_that_fit"] = fits
    else:
        sh = shapes(read_header(d / "adapter_model.safetensors"))
        cfg = read_json(d / "adapter_config.json", f"{name}: adapter_config.json", f"check it: lorakit verify {name}")
        m["fits_bases"] = adapters.fits_elsewhere(sh, cfg, skip="")
    return m
