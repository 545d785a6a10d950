"""Export formats: each one checked against the fp32 merged model on the run's test split."""

import json

import pytest
import torch
from export_helpers import TEXTS, plain_logits

from lorakit.cli import main
from lorakit.errors import LorakitError
from lorakit.export.package import export


def _tokens(folder):
    from transformers import AutoTokenizer

    return dict(AutoTokenizer.from_pretrained(folder)(TEXTS, padding=True, return_tensors="pt"))


def test_safetensors_export_equals_peft_on_the_test_split(trained, tmp_path):
    r = export(trained("lora"), "safetensors", tmp_path / "st")
    assert r["within_tolerance"] and r["max_abs_logit_diff"] <= 1e-5
    assert r["accuracy_change"] == 0 and r["prediction_agreement"] == 1
    assert r["examples"] == len((trained("lora") / "data" / "test.jsonl").read_text().splitlines())
    assert json.loads((tmp_path / "st" / "check.json").read_text())["speed_ratio"] == r["speed_ratio"]


def test_int8_export_is_quantized_and_within_tolerance(trained, tmp_path):
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    from lorakit.infer.quantize import INT8_WEIGHTS, load_int8

    r = export(trained("lora"), "int8", tmp_path / "q")
    assert r["within_tolerance"] and r["max_abs_prob_diff"] <= 0.05 and r["prediction_agreement"] >= 0.95
    assert abs(r["accuracy_change"]) <= 0.05
    assert not (tmp_path / "q" / "model.safetensors").exists()
    model = load_int8(tmp_path / "q")
    assert sum(isinstance(m, QLinear) for m in model.modules()) == 2 * 6 + 2  # 6 per layer, pooler, classifier
    merged = tmp_path / "m"
    from lorakit.export.merge import merge

    merge(trained("lora"), merged)
    assert (tmp_path / "q" / INT8_WEIGHTS).stat().st_size < 0.75 * (merged / "model.safetensors").stat().st_size
    with torch.no_grad():
        got = model(**_tokens(tmp_path / "q")).logits
    expected = plain_logits(merged)
    assert (got - expected).abs().max() > 0  # really rounded...
    assert (got.softmax(-1) - expected.softmax(-1)).abs().max() <= 0.05  # ...within the stated tolerance


def test_onnx_export_matches_the_merged_model(trained, tmp_path):
    from lorakit.export.onnx import ONNX_FILE, OnnxClassifier

    r = export(trained("lora"), "onnx", tmp_path / "o", threads=1)
    assert r["within_tolerance"] and r["max_abs_logit_diff"] <= 1e-4
    assert r["onnx"]["accuracy"] == r["merged"]["accuracy"]
    # dynamic axes: a batch and length never seen at export time
    session = OnnxClassifier(tmp_path / "o" / ONNX_FILE, threads=1)
    texts = _tokens(tmp_path / "o")
    from lorakit.export.merge import merge

    merge(trained("lora"), tmp_path / "m")
    assert torch.allclose(session(**texts), plain_logits(tmp_path / "m"), atol=1e-4)


def test_export_cli_and_its_errors(trained, tmp_path, capsys):
    assert main(["export", str(trained("lora")), "--format", "int8", "--out", str(tmp_path / "q")]) == 0
    said = capsys.readouterr().out
    assert "against the merged fp32 model" in said and "x its speed" in said and "merged_fp32" not in said
    assert f"int8 export -> {tmp_path / 'q'}  (" in said  # the path whole, on its line
    adapter_only = trained("lora") / "adapter"
    assert main(["export", str(adapter_only), "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert "test.jsonl" in err and "Traceback" not in err
    with pytest.raises(LorakitError, match="unknown export format"):
        export(trained("lora"), "gguf", tmp_path / "y")
