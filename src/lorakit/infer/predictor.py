"""Load a trained run, an adapter folder, an installed adapter, or a merged / int8-exported model
folder, and classify texts.

An adapter is merged into the base weights once at load time: inference then costs exactly what
the base model costs, with no LoRA side branches. On CPUs with native bf16 the forward passes run
in bf16, with close calls decided in fp32 (lorakit.infer.precision).
"""

import copy
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import torch
from peft import PeftModel

from lorakit import tasks
from lorakit.data.batching import WIDTH_MULTIPLE, encode
from lorakit.errors import LorakitError
from lorakit.infer import precision as precisions
from lorakit.infer.quantize import MODES, load_int8, quantize_int8
from lorakit.model import adapters
from lorakit.model.device import resolve_precision
from lorakit.model.forward import batched_logits
from lorakit.model.load import quiet_transformers
from lorakit.model.merged import read_merged
from lorakit.store import model_dir
from lorakit.store.adapters import check_folder
from lorakit.tasks.classification.outputs import to_results

__all__ = ["Predictor", "check_texts", "load", "to_results"]


def check_texts(texts: Iterable[str], start: int = 0) -> None:
    """Empty texts are refused, as training refuses them: a label for nothing means nothing."""
    for i, text in enumerate(texts, start):
        if not isinstance(text, str):
            raise LorakitError(f"text {i + 1} is a {type(text).__name__}, not a string")
        if not text.strip():
            raise LorakitError(f"text {i + 1} is empty", "give texts with at least one word")


class Predictor:
    def __init__(self, run: str | Path, batch_size: int = 64, *, merge: bool = True, quantize: str | None = None,
                 precision: str = "auto"):
        if quantize is not None and quantize not in MODES:
            raise LorakitError(f"unknown quantization {quantize!r}", f"use one of: {', '.join(MODES)}")
        precision = resolve_precision(precision)
        if batch_size < 1:
            raise LorakitError(f"batch size must be at least 1, got {batch_size}", "use --batch-size 64")
        self.batch_size = batch_size
        merged = read_merged(run)
        if merged is not None:  # a folder written by lorakit merge / export
            tasks.require(merged.task, "predict", "model")
            self.adapter, self.meta = None, {"task": merged.task, "labels": merged.labels}
            self.labels, self.max_length = merged.labels, merged.max_length
            self.quantize = "int8" if merged.int8 else quantize
            model, self.tokenizer = self._load_merged(merged)
        else:
            info = adapters.resolve(run)
            tasks.require(info.task, "predict")
            self.adapter, self.meta = info.path, info.meta
            self.labels, self.max_length = info.labels, info.max_length
            self.quantize = quantize
            check_folder(self.adapter, info.base)  # a clear message instead of a shape-mismatch traceback
            base, self.tokenizer = tasks.get(info.task).load_model(model_dir(info.base), info.meta)
            model = PeftModel.from_pretrained(base, self.adapter)
            if merge or quantize:
                model = model.merge_and_unload()  # W' = W + s·BA; the classifier head replaces the base one
                merge = True
        if quantize == "int8" and not (merged and merged.int8):
            model = quantize_int8(model, inplace=True)
        self.model = model.eval()
        # bf16 runs a merged copy; the fp32 model stays for the probe and the close calls.
        self.precision = "fp32" if self.quantize or not merge else precision
        self.fast = copy.deepcopy(self.model).to(torch.bfloat16) if self.precision == "bf16" else None
        self.close_calls = precisions.CloseCalls()
        self.rows = self.rows_fp32 = 0  # rows classified, and of those computed in fp32

    @staticmethod
    def _load_merged(merged):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        quiet_transformers()
        tokenizer = AutoTokenizer.from_pretrained(merged.path)
        if merged.int8:
            return load_int8(merged.path), tokenizer
        return AutoModelForSequenceClassification.from_pretrained(merged.path, dtype=torch.float32), tokenizer

    def logits(self, texts: list[str]) -> torch.Tensor:
        """Logits [len(texts), labels] in input order (float32)."""
        seqs = encode(self.tokenizer, list(texts), self.max_length)
        pad = self.tokenizer.pad_token_id
        if self.fast is None:
            multiple = 1 if self.quantize else WIDTH_MULTIPLE  # int8 activation scales see padding
            logits, exact = batched_logits(self.model, seqs, pad, self.batch_size, multiple=multiple), len(seqs)
        else:
            logits, exact = self.close_calls.resolve(
                batched_logits(self.fast, seqs, pad, self.batch_size),
                lambda rows: batched_logits(self.model, [seqs[i] for i in rows], pad, self.batch_size))
        self.rows += len(seqs)
        self.rows_fp32 += exact
        return logits

    def predict(self, texts: str | list[str]) -> list[dict]:
        """One {label, probs} per text, in input order; a lone string is one text."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        check_texts(texts)
        if not texts:
            return []
        return to_results(self.logits(texts), self.labels)

    def predict_stream(self, texts: Iterable[str], chunk: int = 4096) -> Iterator[tuple[str, dict]]:
        """(text, result) in input order for any number of texts, holding at most ``chunk`` texts at a time.

        Each chunk is length-sorted into batches, so a larger chunk pads less and costs a few
        megabytes of text at most.
        """
        it = iter([texts] if isinstance(texts, str) else texts)
        done = 0
        while batch := list(islice(it, chunk)):
            check_texts(batch, start=done)
            done += len(batch)
            yield from zip(batch, self.predict(batch))


def load(run: str | Path, batch_size: int = 64, *, merge: bool = True, quantize: str | None = None,
         precision: str = "auto") -> Predictor:
    """``lorakit.load("runs/demo").predict(["some text"])``; RUN may also be an installed adapter's name,
    or a folder written by lorakit merge or export."""
    return Predictor(run, batch_size, merge=merge, quantize=quantize, precision=precision)
