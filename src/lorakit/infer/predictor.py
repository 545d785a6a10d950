"""Load a trained run (or an adapter folder) and classify texts."""

import json
from pathlib import Path

import torch
import yaml
from peft import PeftModel

from lorakit.data.batching import encode
from lorakit.errors import RunError
from lorakit.infer.logits import batched_logits
from lorakit.store import model_dir
from lorakit.store.adapters import check_folder
from lorakit.train.model import load_base


def adapter_dir(run: str | Path) -> Path:
    """Accepts a run folder (runs/NAME) or its adapter/ folder."""
    run = Path(run)
    for d in (run / "adapter", run):
        if (d / "adapter_config.json").is_file() and (d / "lorakit.json").is_file():
            return d
    if run.is_dir():
        raise RunError(f"{run}: no trained adapter here", f"run: lorakit train RECIPE name={run.name}")
    raise RunError(f"run {str(run)!r} not found", "give a run folder such as runs/demo")


class Predictor:
    def __init__(self, run: str | Path, batch_size: int = 64):
        self.adapter = adapter_dir(run)
        self.meta = json.loads((self.adapter / "lorakit.json").read_text())
        self.labels: list[str] = self.meta["labels"]
        self.max_length: int = self.meta["max_length"]
        self.batch_size = batch_size
        check_folder(self.adapter, self.meta["base"])  # a clear message instead of a shape-mismatch traceback
        base, self.tokenizer = load_base(model_dir(self.meta["base"]), self.labels)
        self.model = PeftModel.from_pretrained(base, self.adapter).eval()

    def logits(self, texts: list[str]) -> torch.Tensor:
        seqs = encode(self.tokenizer, list(texts), self.max_length)
        return batched_logits(self.model, seqs, self.tokenizer.pad_token_id, self.batch_size)

    def predict(self, texts: list[str]) -> list[dict]:
        """One {label, probs} per text, in input order."""
        if not texts:
            return []
        probs = torch.softmax(self.logits(texts), dim=-1)
        return [
            {"label": self.labels[int(p.argmax())], "probs": {n: round(float(v), 6) for n, v in zip(self.labels, p)}}
            for p in probs
        ]


def load(run: str | Path, batch_size: int = 64) -> Predictor:
    """``lorakit.load("runs/demo").predict(["some text"])``"""
    return Predictor(run, batch_size)


def run_config(run: str | Path) -> dict:
    path = Path(run) / "config.yaml"
    if not path.is_file():
        raise RunError(f"{run}: no config.yaml", "give a run folder written by lorakit train")
    return yaml.safe_load(path.read_text())
