"""Helpers of the export tests: reference logits and file hashes."""

from pathlib import Path

TEXTS = ["good movie", "bad film today", "the a it", "great fun and happy", "awful boring sad film", "this is"]


def peft_logits(run: Path, texts=TEXTS):
    """Logits of base + adapter through PEFT: the reference every export is compared with."""
    import json

    import torch
    from peft import PeftModel

    from lorakit.tasks.classification.model import load_classifier

    meta = json.loads((run / "adapter" / "lorakit.json").read_text())
    base, tok = load_classifier(meta["base_path"], meta["labels"])
    model = PeftModel.from_pretrained(base, run / "adapter").eval()
    with torch.no_grad():
        return model(**tok(texts, padding=True, return_tensors="pt")).logits


def plain_logits(model_dir: Path, texts=TEXTS):
    """Logits of a plain transformers load of a folder (its own tokenizer)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    with torch.no_grad():
        return model(**tok(texts, padding=True, return_tensors="pt")).logits


def file_hashes(folder: Path) -> dict:
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}
