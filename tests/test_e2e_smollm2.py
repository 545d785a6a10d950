"""The embedded generation default end to end: SmolLM2-135M-Instruct from its PyPI package (GGUF,
converted at install), a few dozen real BBC articles, the chat template applied, the loss falling and
the answers stopping on their own."""

import json

import pytest

from lorakit import install, load, train
from lorakit.model.generate import Sampling


@pytest.mark.slow
def test_smollm2_learns_bbc_headlines(tmp_path):
    m = install("smollm2")
    assert m["architecture"] == "LlamaForCausalLM" and m["parameters"] == 134_515_008

    metrics = train("recipes/bbc-headlines.yaml", {
        "name": "e2e", "out_dir": str(tmp_path), "data.limit": 48, "data.val_limit": 16, "data.test_limit": 8,
        "data.max_length": 96, "train.epochs": 2, "train.batch_size": 8, "train.lr": 2e-3,
    }, show_progress=False)
    assert metrics["chat"] is True and metrics["examples"]["train"] == 48
    train_losses = [h["train_loss"] for h in metrics["history"]]
    assert train_losses[1] < train_losses[0], train_losses  # the headline loss falls

    run = tmp_path / "e2e"
    test = [json.loads(line) for line in (run / "data" / "test.jsonl").read_text().splitlines()]
    assert test[0]["prompt"].startswith("Write a short headline for this news article.")
    gen = load(run)
    text = gen.tokenizer.decode(gen.prompt_ids(test[0], Sampling()))
    assert text.startswith("<|im_start|>system") and text.endswith("<|im_start|>assistant\n")  # the chat template
    outputs = gen.generate([r["prompt"] for r in test[:4]], max_new_tokens=40)
    assert all(o.finish_reason == "stop" and 0 < len(o.text.split()) <= 20 for o in outputs), outputs
