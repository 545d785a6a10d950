"""GGUF files (llama.cpp's format) installed as plain Hugging Face folders.

A GGUF is checked first (magic bytes, version, every tensor inside the file), then transformers
reads it, dequantizing every weight to fp32, and the model is saved the ordinary way:
model.safetensors, config.json, generation_config.json and the tokenizer files (chat template
included). The store then holds a folder that loads in about a second, where reading the GGUF
again would dequantize it again at every load; the quantization is recorded in the manifest.
"""

import contextlib
import io
import os
from collections import Counter
from pathlib import Path

from lorakit.errors import StoreError
from lorakit.store.sources import folder_files

REDOWNLOAD = "copy or download the file again"


def _file_type(reader) -> str | None:
    """The quantization the file declares (general.file_type), as llama.cpp names it: Q4_1, Q4_K_M, F16."""
    from gguf import LlamaFileType

    field = reader.fields.get("general.file_type")
    if field is None:
        return None
    try:
        return LlamaFileType(int(field.contents())).name.removeprefix("MOSTLY_").removeprefix("ALL_")
    except ValueError:  # a type newer than the installed gguf package knows
        return str(field.contents())


def _check_start(path: Path) -> None:
    """Magic bytes and version, read by hand: the reader's own messages do not say which file is wrong."""
    from gguf.gguf_reader import READER_SUPPORTED_VERSIONS

    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] != b"GGUF":
        raise StoreError(f"{path.name}: not a GGUF file (it does not start with the GGUF magic bytes)",
                         "give a .gguf file written by llama.cpp, or a folder with config.json and *.safetensors")
    if len(head) < 8:
        raise StoreError(f"{path.name}: truncated GGUF file ({len(head)} bytes)", REDOWNLOAD)
    version = int.from_bytes(head[4:8], "little")
    if version not in READER_SUPPORTED_VERSIONS:
        raise StoreError(f"{path.name}: GGUF version {version} is not supported (versions "
                         f"{', '.join(map(str, READER_SUPPORTED_VERSIONS))} are)",
                         "convert the model again with a current llama.cpp (convert_hf_to_gguf.py)")


def check_gguf(path: Path) -> dict:
    """Refuse a file that is not a complete GGUF; return what it holds (architecture, tensors, quantization)."""
    from gguf import GGUFReader

    _check_start(path)
    size = path.stat().st_size
    try:
        # The reader maps every tensor's bytes: a header or tensor table cut short, or a tensor whose data
        # runs past the end of the file, fails here (as a short read or a reshape that does not fit).
        reader = GGUFReader(path)
    except (ValueError, IndexError, KeyError, OverflowError, UnicodeDecodeError):
        # numpy's words for it (a reshape, a dtype view) would say nothing to the user: say what it means
        raise StoreError(f"{path.name}: truncated or damaged GGUF file ({size:,} bytes: its metadata or tensor data "
                         "runs past the end of the file)", REDOWNLOAD) from None
    arch = reader.fields.get("general.architecture")
    if arch is None:
        raise StoreError(f"{path.name}: this GGUF names no general.architecture, so it is no model transformers reads",
                         "give the GGUF of a language model")
    types = Counter(t.tensor_type.name for t in reader.tensors)
    return {"architecture": str(arch.contents()), "tensors": len(reader.tensors),
            "file_type": _file_type(reader), "tensor_types": dict(types.most_common())}


@contextlib.contextmanager
def _quiet():
    """transformers' load bars and notes are noise here; its GGUF reader draws a plain tqdm bar on stderr,
    which no transformers setting turns off, so stderr is set aside while the file is read."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _load(path: Path, folder: Path):
    """(model, tokenizer) read from the GGUF alone, every weight dequantized to fp32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    # transformers reads the config from the GGUF, but other files of its folder (a generation_config.json,
    # say) would be read too: it is shown an empty folder with a link to the file.
    folder.mkdir(parents=True)
    os.symlink(path.resolve(), folder / "model.gguf")
    try:
        with _quiet():
            # dequantize=True: a plain dense model, with no quantizer attached and no quantization_config
            # (a quantizer would refuse save_pretrained, and the Trainer would refuse to train it)
            model = AutoModelForCausalLM.from_pretrained(folder, gguf_file="model.gguf", dtype=torch.float32,
                                                         quantization_config=GgufConfig(dequantize=True))
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file="model.gguf")
    except (ValueError, KeyError, NotImplementedError) as e:
        why = str(e).splitlines()[0][:160] if str(e) else e.__class__.__name__
        raise StoreError(f"{path.name}: transformers cannot read this GGUF as a causal language model ({why})",
                         "install the model's Hugging Face folder instead (config.json and *.safetensors)") from None
    return model, tokenizer


def _plain_config(model, tokenizer) -> None:
    """What a GGUF load leaves in the config that a saved folder must not carry."""
    # general.name lands here as an odd path-like key; the folder is the model now
    if hasattr(model.config, "_model_name_or_path"):
        del model.config._model_name_or_path
    # the GGUF states no tokenizer limit (transformers then says 1e30); the context length is the real one
    context = getattr(model.config, "max_position_embeddings", None)
    if isinstance(context, int) and tokenizer.model_max_length > 1_000_000:
        tokenizer.model_max_length = context


def convert(path: Path, workdir: Path) -> dict[str, Path]:
    """Write the GGUF at ``path`` as a Hugging Face folder under ``workdir``; {relative path: file}.

    Tied embeddings stay tied: the file has no separate output weight, the config says
    tie_word_embeddings and save_pretrained writes the shared matrix once.
    """
    model, tokenizer = _load(path, workdir / "read")
    _plain_config(model, tokenizer)
    out = workdir / "hf"
    with _quiet():
        model.save_pretrained(out)  # architectures and dtype ("float32") are written into config.json here
        tokenizer.save_pretrained(out)
    return folder_files(out)

