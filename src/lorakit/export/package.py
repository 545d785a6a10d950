"""`lorakit export`: merge a run's adapter, convert it (safetensors, int8, ONNX), check it on the test split.

The reference of every check is the fp32 merged model, except for the safetensors format where
the merged model itself is checked against base + adapter through PEFT.
"""

import json
import os
from pathlib import Path

import torch

from lorakit.data import read_split
from lorakit.data.batching import encode
from lorakit.errors import LorakitError, RunError
from lorakit import tasks
from lorakit.export.adapter import read_lora
from lorakit.export.check import compare
from lorakit.export.folder import staged_folder
from lorakit.export.merge import base_dir_of, merge

FORMATS = ("safetensors", "int8", "onnx")


def _peft_model(adapter):
    from peft import PeftModel

    base, _ = tasks.get(adapter.meta["task"]).load_model(base_dir_of(adapter), adapter.meta)
    return PeftModel.from_pretrained(base, adapter.path).eval()


def export(run: str | Path, fmt: str, out: str | Path | None = None, *, force: bool = False, batch_size: int = 64,
           threads: int | None = None) -> dict:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lorakit.model.load import quiet_transformers

    quiet_transformers()  # no load reports or bars between the export's own lines
    if fmt not in FORMATS:
        raise LorakitError(f"unknown export format {fmt!r}", f"use one of: {', '.join(FORMATS)}")
    run = Path(run)
    adapter = read_lora(run, "export")
    test_path = run / "data" / "test.jsonl"
    if not test_path.is_file():
        raise RunError(f"{run}: no data/test.jsonl to check the export on",
                       "give a run folder written by lorakit train (or use lorakit merge for a bare adapter)")
    table = read_split(test_path)
    unknown = sorted(set(table.labels) - set(adapter.labels))
    if unknown:
        raise RunError(f"{test_path}: labels {unknown} are not the adapter's labels {adapter.labels}")
    if threads:
        torch.set_num_threads(threads)
    out = Path(out) if out else run / "export" / fmt

    with staged_folder(out, force) as tmp:
        merge(run, tmp, force=True)
        merged = AutoModelForSequenceClassification.from_pretrained(tmp, dtype=torch.float32).eval()
        tokenizer = AutoTokenizer.from_pretrained(tmp)
        seqs = encode(tokenizer, table.texts, adapter.meta.get("max_length") or 512)
        if not seqs:
            raise RunError(f"{test_path} is empty")
        y = [adapter.labels.index(label) for label in table.labels]
        if fmt == "safetensors":
            reference, candidate, names = _peft_model(adapter), merged, ("peft", "merged")
        elif fmt == "int8":
            from lorakit.infer.quantize import INT8_WEIGHTS, load_int8, quantize_int8, save_int8

            save_int8(quantize_int8(merged), tmp / INT8_WEIGHTS)
            reference, candidate, names = merged, load_int8(tmp), ("merged", "int8")
        else:
            from lorakit.data.batching import collate
            from lorakit.export.onnx import ONNX_FILE, OnnxClassifier, to_onnx

            to_onnx(merged, collate(seqs[:2], tokenizer.pad_token_id), tmp / ONNX_FILE)
            reference = merged
            candidate, names = OnnxClassifier(tmp / ONNX_FILE, torch.get_num_threads()), ("merged", "onnx")
        if fmt != "safetensors":
            os.remove(tmp / "model.safetensors")  # the folder ships the converted weights only
        result = compare(reference, candidate, seqs, y, tokenizer.pad_token_id, fmt, batch_size=batch_size, names=names)
        result["run"] = str(run)
        result["out"] = str(out)
        result["files"] = sorted(p.name for p in tmp.iterdir()) + ["check.json"]
        (tmp / "check.json").write_text(json.dumps(result, indent=2))
    return result
