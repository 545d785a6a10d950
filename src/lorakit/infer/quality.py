"""What int8 quantization costs in accuracy: fp32 (merged) vs int8 on the run's saved test split."""

import json
from pathlib import Path

from lorakit.data import read_split
from lorakit.errors import RunError
from lorakit.infer.predictor import load
from lorakit.model.adapters import WEIGHTS, locate
from lorakit.tasks.classification.metrics import accuracy

REPORT = "eval_test_int8.json"


def int8_report(run: str | Path, batch_size: int = 64) -> dict:
    """Accuracy of both on RUN/data/test.jsonl; cached in RUN/eval_test_int8.json until the adapter changes."""
    run = Path(run)
    split = run / "data" / "test.jsonl"
    if not split.is_file():
        raise RunError(f"{run}: no saved test split to measure int8 accuracy on",
                       "give a run folder written by lorakit train")
    weights = locate(run) / WEIGHTS
    stamp = weights.stat().st_mtime_ns if weights.is_file() else 0
    cached = run / REPORT
    if cached.is_file():
        report = json.loads(cached.read_text())
        if report.get("adapter_mtime_ns") == stamp and "agreement" in report:
            return report
    table = read_split(split)
    predicted = {}
    for mode in ("fp32", "int8"):
        predictor = load(run, batch_size, quantize=None if mode == "fp32" else mode, precision="fp32")
        predicted[mode] = predictor.logits(table.texts).argmax(-1).tolist()
    truth = [predictor.labels.index(label) for label in table.labels]
    scores = {mode: accuracy(truth, ids) for mode, ids in predicted.items()}
    report = {"n": len(table.texts), "fp32_accuracy": scores["fp32"], "int8_accuracy": scores["int8"],
              "change": round(scores["int8"] - scores["fp32"], 6),
              "agreement": accuracy(predicted["fp32"], predicted["int8"]), "adapter_mtime_ns": stamp}
    cached.write_text(json.dumps(report, indent=2))
    return report
