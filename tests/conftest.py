"""Shared fixtures: an isolated store, a tiny random BERT on disk, a small synthetic dataset.

Everything is built here, offline, in a few seconds; no real weights are needed except in
tests marked ``real`` (they use the embedded minilm package).
"""

import csv
import random
from pathlib import Path

import pytest
import torch

WORDS_POS = ["good", "great", "love", "happy", "excellent", "fun"]
WORDS_NEG = ["bad", "awful", "hate", "sad", "terrible", "boring"]
WORDS_NEU = ["the", "movie", "was", "is", "a", "it", "today", "and", "this", "film"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS_POS + WORDS_NEG + WORDS_NEU


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every test gets its own store and never touches the network or the user's store."""
    monkeypatch.setenv("LORAKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    torch.set_num_threads(1)


def make_tiny_model(path: Path, seed: int = 0, dropout: float = 0.1) -> Path:
    """A random 2-layer BERT (hidden 32) with its tokenizer, saved as safetensors."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True).save_pretrained(path)
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64,
                     hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    BertForSequenceClassification(cfg).bert.save_pretrained(path)  # a base model: no classifier head
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-bert")


@pytest.fixture(scope="session")
def tiny_model_no_dropout(tmp_path_factory) -> Path:
    """The tiny model without dropout: for runs that must match exactly however batches are split."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-bert-nodrop", dropout=0.0)


def synthetic_rows(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Texts whose label is decided by their words: learnable by a tiny model in a few steps."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = ("positive", "negative", "neutral")[i % 3]
        words = rng.sample(WORDS_NEU, 3)
        if label == "positive":
            words += rng.sample(WORDS_POS, 2)
        elif label == "negative":
            words += rng.sample(WORDS_NEG, 2)
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


def write_csv(path: Path, rows, header=("text", "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def tiny_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "synthetic.csv", synthetic_rows(600))


def tiny_overrides(run_root: Path, csv_path: Path, model_dir: Path, **extra) -> dict:
    """Recipe overrides for a fast run of the tiny model on the synthetic CSV."""
    o = {
        "name": "tiny", "out_dir": str(run_root), "base": str(model_dir),
        "data.dataset": str(csv_path), "data.max_length": 16,
        "lora.r": 4, "lora.alpha": 8, "lora.dropout": 0.0,
        "train.epochs": 6, "train.batch_size": 16, "train.lr": 0.02, "train.threads": 1,
    }
    o.update(extra)
    return o


@pytest.fixture
def tiny_run(tmp_path, tiny_csv, tiny_model_dir) -> Path:
    """A trained run folder of the tiny model (a few seconds)."""
    from lorakit.train.loop import train

    m = train(overrides=tiny_overrides(tmp_path / "runs", tiny_csv, tiny_model_dir), show_progress=False)
    return Path(m["run"])
