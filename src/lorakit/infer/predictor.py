"""Load a trained run, an adapter folder or an installed adapter, and classify texts.

The adapter is merged into the base weights once at load time: inference then costs exactly
what the base model costs, with no LoRA side branches. On CPUs with native bf16 the forward
passes run in bf16, with close calls decided in fp32 (lorakit.infer.precision).
"""

import copy
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import torch
from peft import PeftModel

from lorakit.data.batching import WIDTH_MULTIPLE, encode
from lorakit.errors import LorakitError
from lorakit.infer import precision as precisions
from lorakit.infer.adapters import adapter_dir, resolve
from lorakit.infer.logits import batched_logits
from lorakit.infer.quantize import MODES, quantize_int8
from lorakit.store import model_dir
from lorakit.store.adapters import check_folder
from lorakit.training.model import load_base

__all__ = ["Predictor", "adapter_dir", "load", "to_results"]


def to_results(logits: torch.Tensor, labels: list[str]) -> list[dict]:
    """One {label, probs} per row of logits."""
    probs = torch.softmax(logits.float(), dim=-1)
    return [
        {"label": labels[int(p.argmax())], "probs": {n: round(float(v), 6) for n, v in zip(labels, p)}}
        for p in probs
    ]


class Predictor:
    def __init__(self, run: str | Path, batch_size: int = 64, *, merge: bool = True, quantize: str | None = None,
                 precision: str = "auto"):
        if quantize is not None and quantize not in MODES:
            raise LorakitError(f"unknown quantization {quantize!r}", f"use one of: {', '.join(MODES)}")
        precision = precisions.resolve(precision)
        if batch_size < 1:
            raise LorakitError(f"batch size must be at least 1, got {batch_size}", "use --batch-size 64")
        info = resolve(str(run))
        self.adapter = info.path
        self.meta = info.meta
        self.labels: list[str] = info.labels
        self.max_length: int = info.max_length
        self.batch_size = batch_size
        self.quantize = quantize
        check_folder(self.adapter, info.base)  # a clear message instead of a shape-mismatch traceback
        base, self.tokenizer = load_base(model_dir(info.base), self.labels)
        model = PeftModel.from_pretrained(base, self.adapter)
        if merge or quantize:
            model = model.merge_and_unload()  # W' = W + s·BA; the classifier head replaces the base one
        if quantize == "int8":
            model = quantize_int8(model)
        self.model = model.eval()
        # bf16 runs a merged copy; the fp32 model stays for the probe and the close calls.
        self.precision = "fp32" if quantize or not merge else precision
        self.fast = copy.deepcopy(self.model).to(torch.bfloat16) if self.precision == "bf16" else None
        self.close_calls = precisions.CloseCalls()
        self.rows = self.rows_fp32 = 0  # rows classified, and of those computed in fp32

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

    def predict(self, texts: list[str]) -> list[dict]:
        """One {label, probs} per text, in input order."""
        if not texts:
            return []
        return to_results(self.logits(texts), self.labels)

    def predict_stream(self, texts: Iterable[str], chunk: int = 4096) -> Iterator[tuple[str, dict]]:
        """(text, result) in input order for any number of texts, holding at most ``chunk`` texts at a time.

        Each chunk is length-sorted into batches, so a larger chunk pads less; 4,096 keeps memory
        to a few megabytes of text while leaving almost no padding.
        """
        it = iter(texts)
        while batch := list(islice(it, chunk)):
            yield from zip(batch, self.predict(batch))


def load(run: str | Path, batch_size: int = 64, *, merge: bool = True, quantize: str | None = None,
         precision: str = "auto") -> Predictor:
    """``lorakit.load("runs/demo").predict(["some text"])``; RUN may also be an installed adapter's name."""
    return Predictor(run, batch_size, merge=merge, quantize=quantize, precision=precision)
