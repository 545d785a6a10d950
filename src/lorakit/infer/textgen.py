"""Load a generation run (or an adapter, a merged folder, or a plain causal-LM base) and write text.

Prompts are written the way the run was trained: with the base's chat template, or as plain text
(recorded in lorakit.json as ``chat``). The adapter is merged into the base weights at load time
unless the base's own answers are wanted too (``merge=False``: ``base_only()`` switches it off).
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lorakit import tasks
from lorakit.errors import LorakitError, NotInstalledError, RunError
from lorakit.model import adapters
from lorakit.model.generate import Generator, Output, Sampling
from lorakit.model.load import quiet_transformers
from lorakit.model.merged import MERGE_RECORD, read_merged
from lorakit.store import model_dir
from lorakit.store.adapters import check_folder
from lorakit.tasks.causal_lm import template

Prompt = str | list[dict]  # a prompt, or a conversation (role/content messages) to answer


class TextGenerator:
    def __init__(self, source: str | Path, batch_size: int = 8, *, merge: bool = True, max_length: int | None = None):
        if batch_size < 1:
            raise LorakitError(f"batch size must be at least 1, got {batch_size}", "use --batch-size 8")
        quiet_transformers()
        self.adapter, self.meta, model_path = _open(source)
        self.model, self.tokenizer = tasks.get("causal-lm").load_model(model_path, self.meta)
        if self.adapter is not None:
            from peft import PeftModel

            check_folder(self.adapter, self.meta["base"])
            self.model = PeftModel.from_pretrained(self.model, self.adapter)
            if merge:
                self.model = self.model.merge_and_unload()
        self.model.eval()
        self.chat = self.meta.get("chat")
        if self.chat is None:
            self.chat = template.uses_chat(self.tokenizer, "auto")
        self.max_length = max_length or self.meta.get("max_length") or 1024
        self.generator = Generator(self.model, self.tokenizer, batch_size=batch_size)

    def prompt_ids(self, prompt: Prompt | dict, sampling: Sampling) -> list[int]:
        """Token ids of a prompt, a conversation, or a data row, cut to leave room for the answer."""
        row = prompt if isinstance(prompt, dict) else (
            {"messages": prompt} if isinstance(prompt, list) else {"prompt": prompt})
        room = template.prompt_room(self.max_length, sampling.max_new_tokens)
        return template.prompt_ids(self.tokenizer, row, self.chat, room)

    def generate(self, prompts: Prompt | list[Prompt], sampling: Sampling | None = None, progress=None,
                 **options) -> list[Output]:
        """One output per prompt, in input order; ``options`` are Sampling's fields (max_new_tokens, ...);
        ``progress(n)`` is called as each batch of n prompts is done."""
        sampling = sampling or Sampling(**options)
        sampling.check()
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        return self.generator.generate([self.prompt_ids(p, sampling) for p in prompts], sampling, progress=progress)

    def stream(self, prompt: Prompt, sampling: Sampling | None = None, **options) -> Iterator[str]:
        sampling = sampling or Sampling(**options)
        sampling.check()
        return self.generator.stream(self.prompt_ids(prompt, sampling), sampling)

    @contextmanager
    def base_only(self):
        """The base model's own answers (the adapter switched off), for zero-shot comparisons."""
        if not hasattr(self.model, "disable_adapter"):
            raise LorakitError("the adapter is merged into this model", "load it with merge=False")
        with self.model.disable_adapter():
            yield self


def _open(source: str | Path) -> tuple[Path | None, dict, Path]:
    """(adapter folder or None, what lorakit recorded, the folder of the model to load)."""
    merged = read_merged(source)
    if merged is not None:
        tasks.require(merged.task, "generate", "model")
        record = json.loads((merged.path / MERGE_RECORD).read_text())["adapter"]
        return None, {"task": merged.task, "chat": record.get("chat"), "max_length": merged.max_length}, merged.path
    try:
        info = adapters.resolve(source)
    except (RunError, NotInstalledError) as e:
        base = _base_model(source)
        if base is None:
            raise e from None
        return None, {"task": "causal-lm"}, base
    tasks.require(info.task, "generate")
    return info.path, info.meta, model_dir(info.base)


def _base_model(source: str | Path) -> Path | None:
    """An installed base model's folder, or a model folder: generate with a base as it is (a causal LM only)."""
    path = Path(source).expanduser()
    if not ((path / "config.json").is_file() and not (path / adapters.CONFIG).is_file()):
        try:
            path = model_dir(str(source))
        except LorakitError:
            return None
    config = json.loads((path / "config.json").read_text())
    archs = config.get("architectures") or [str(config.get("model_type"))]
    if not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        raise RunError(f"{source} is not a text-generation model ({archs[0]})",
                       "give a causal language model such as smollm2 (lorakit install smollm2), or a generation run")
    return path


def load(source: str | Path, batch_size: int = 8, **kwargs) -> TextGenerator:
    """``lorakit.load("runs/headlines").generate(["some article"])``."""
    return TextGenerator(source, batch_size, **kwargs)


def writes_text(source: str | Path) -> bool:
    """Is ``source`` a generation run, adapter or merged model (rather than a classifier)?"""
    merged = read_merged(source)
    if merged is not None:
        return merged.task == "causal-lm"
    try:
        return tasks.get(adapters.resolve(source).task).name == "causal-lm"
    except (RunError, NotInstalledError):
        try:
            return _base_model(source) is not None
        except RunError:  # a model, but no causal LM: the predictor says what it takes
            return False
