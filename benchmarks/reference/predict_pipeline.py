"""The plain reference: what a competent user writes with transformers + PEFT alone.

A ``pipeline("text-classification")`` over the PEFT model (adapter not merged), default
settings, the same batch size and truncation as lorakit.
"""

from pathlib import Path

from peft import PeftModel
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline


def build(base_dir: str | Path, adapter_dir: str | Path, labels: list[str], batch_size: int):
    base = AutoModelForSequenceClassification.from_pretrained(
        base_dir, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    model = PeftModel.from_pretrained(base, adapter_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    return pipeline("text-classification", model=model, tokenizer=tokenizer, batch_size=batch_size, device="cpu")


def predict(clf, texts: list[str], max_length: int) -> list[str]:
    return [r["label"] for r in clf(texts, truncation=True, max_length=max_length)]
