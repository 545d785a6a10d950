"""A merge's peak memory stays near one copy of the base (the issue's bound: 1.3x the base file)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

HIDDEN, LAYERS, VOCAB, R = 1024, 4, 30000, 8


def big_bert(folder: Path) -> Path:
    """A bare BERT checkpoint of ~330 MB of random float32 weights (no torch model is built)."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    t = {"embeddings.word_embeddings.weight": (VOCAB, HIDDEN), "embeddings.position_embeddings.weight": (512, HIDDEN),
         "embeddings.token_type_embeddings.weight": (2, HIDDEN), "embeddings.LayerNorm.weight": (HIDDEN,),
         "embeddings.LayerNorm.bias": (HIDDEN,), "pooler.dense.weight": (HIDDEN, HIDDEN),
         "pooler.dense.bias": (HIDDEN,)}
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            t[p + name + ".weight"], t[p + name + ".bias"] = (HIDDEN, HIDDEN), (HIDDEN,)
        t[p + "intermediate.dense.weight"], t[p + "intermediate.dense.bias"] = (4 * HIDDEN, HIDDEN), (4 * HIDDEN,)
        t[p + "output.dense.weight"], t[p + "output.dense.bias"] = (HIDDEN, 4 * HIDDEN), (HIDDEN,)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + ln + ".weight"], t[p + ln + ".bias"] = (HIDDEN,), (HIDDEN,)
    save_file({k: rng.standard_normal(s, dtype=np.float32) * 0.02 for k, s in t.items()},
              folder / "model.safetensors", metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["BertModel"], "model_type": "bert", "hidden_size": HIDDEN, "num_hidden_layers": LAYERS,
        "num_attention_heads": 16, "intermediate_size": 4 * HIDDEN, "vocab_size": VOCAB,
        "max_position_embeddings": 512, "type_vocab_size": 2}))
    return folder / "model.safetensors"


def big_adapter(folder: Path, base: Path) -> None:
    """A PEFT-format LoRA adapter (query/value, r=8) with a 3-label head, written directly."""
    rng = np.random.default_rng(1)
    folder.mkdir()
    t = {}
    for i in range(LAYERS):
        for name in ("query", "value"):
            p = f"base_model.model.bert.encoder.layer.{i}.attention.self.{name}."
            t[p + "lora_A.weight"] = rng.standard_normal((R, HIDDEN), dtype=np.float32)
            t[p + "lora_B.weight"] = rng.standard_normal((HIDDEN, R), dtype=np.float32)
    t["base_model.model.classifier.weight"] = rng.standard_normal((3, HIDDEN), dtype=np.float32)
    t["base_model.model.classifier.bias"] = np.zeros(3, dtype=np.float32)
    save_file(t, folder / "adapter_model.safetensors", metadata={"format": "pt"})
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "SEQ_CLS", "r": R, "lora_alpha": 16, "use_rslora": False,
        "target_modules": ["query", "value"], "modules_to_save": ["classifier"]}))
    (folder / "lorakit.json").write_text(json.dumps({"labels": ["a", "b", "c"], "base": str(base),
                                                     "base_path": str(base), "max_length": 32, "method": "lora"}))


def test_merge_peak_rss_stays_near_one_base(tmp_path):
    weights = big_bert(tmp_path / "base")
    big_adapter(tmp_path / "adapter", tmp_path / "base")
    size = weights.stat().st_size
    assert size > 300e6
    # The whole command in a fresh process: its peak RSS includes the interpreter and the CLI.
    # VmHWM, not ru_maxrss: the latter carries the forking parent's high-water mark over exec.
    code = ("import re, sys; from lorakit.cli import main; rc = main(sys.argv[1:]); "
            "print('torch' in sys.modules); "
            "print(int(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read())[1]) * 1024); sys.exit(rc)")
    p = subprocess.run([sys.executable, "-c", code, "merge", str(tmp_path / "adapter"), "--out", str(tmp_path / "m"),
                        "--json"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    *_, torch_loaded, peak = p.stdout.split()
    assert torch_loaded == "False"  # torch alone is ~200 MB resident: a merge must not need it
    peak = int(peak)
    print(f"merge of a {size / 1e6:.0f} MB base: peak RSS {peak / 1e6:.0f} MB = {peak / size:.2f}x the base")
    assert peak <= 1.3 * size

    # And the streamed file is a valid safetensors file with the merged values.
    from safetensors import safe_open

    adapter_file = tmp_path / "adapter" / "adapter_model.safetensors"
    with safe_open(tmp_path / "m" / "model.safetensors", "numpy") as out, \
            safe_open(weights, "numpy") as base, safe_open(adapter_file, "numpy") as ad:
        p = "base_model.model.bert.encoder.layer.3.attention.self.value."
        W = base.get_tensor("encoder.layer.3.attention.self.value.weight")
        expected = W + (16 / R) * ad.get_tensor(p + "lora_B.weight") @ ad.get_tensor(p + "lora_A.weight")
        np.testing.assert_allclose(out.get_tensor("bert.encoder.layer.3.attention.self.value.weight"), expected,
                                   atol=1e-4)
        assert out.get_tensor("classifier.weight").shape == (3, HIDDEN)
        assert len(out.keys()) == len(base.keys()) + 2
