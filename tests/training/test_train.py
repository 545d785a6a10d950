import json

import pytest
import torch
import yaml
from peft import PeftModel
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from lorakit.errors import ConfigError, NotInstalledError, RunError
from lorakit.infer.predictor import load
from lorakit.training.loop import TrainingDiverged, train

from helpers import tiny_overrides


def test_run_folder_holds_everything(tiny_run):
    for rel in ("config.yaml", "metrics.json", "data/val.jsonl", "data/test.jsonl", "plots/learning_curve.png",
                "adapter/adapter_config.json", "adapter/adapter_model.safetensors", "adapter/labels.json",
                "adapter/lorakit.json", "adapter/README.md"):
        assert (tiny_run / rel).is_file(), rel
    assert list((tiny_run / "tb").glob("events.out.tfevents.*"))
    assert not (tiny_run / "adapter.tmp").exists()
    m = json.loads((tiny_run / "metrics.json").read_text())
    assert [h["epoch"] for h in m["history"]] == list(range(1, 7))
    best = max(m["history"], key=lambda h: h["val_accuracy"])
    assert m["best_epoch"] == best["epoch"] and m["best_val"]["accuracy"] == best["val_accuracy"]
    assert m["best_val"]["accuracy"] > 0.5  # three balanced classes: chance is 1/3
    assert m["labels"] == ["negative", "neutral", "positive"]
    assert m["parameters"]["trainable"] < m["parameters"]["total"]
    cfg = yaml.safe_load((tiny_run / "config.yaml").read_text())
    assert cfg["train"]["lr"] == 0.02 and cfg["lora"]["r"] == 4  # the fully resolved recipe
    assert json.loads((tiny_run / "adapter/labels.json").read_text()) == m["labels"]


def test_adapter_saves_the_classifier_head(tiny_run):
    from safetensors import safe_open

    with safe_open(tiny_run / "adapter/adapter_model.safetensors", "pt") as f:
        keys = list(f.keys())
    assert any("classifier" in k for k in keys) and any("lora_A" in k for k in keys)


def test_plain_peft_loads_the_adapter_with_identical_logits(tiny_run, tiny_model_dir):
    texts = [json.loads(line)["text"] for line in (tiny_run / "data/test.jsonl").read_text().splitlines()][:40]
    ours = load(tiny_run).logits(texts)

    labels = json.loads((tiny_run / "adapter/labels.json").read_text())
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=len(labels))
    model = PeftModel.from_pretrained(base, tiny_run / "adapter").eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        theirs = model(**tok(texts, padding=True, truncation=True, max_length=16, return_tensors="pt")).logits
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    # and the adapter is not a no-op: the head and LoRA weights were trained
    plain = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=len(labels))
    with torch.no_grad():
        untrained = plain(**tok(texts, padding=True, return_tensors="pt")).logits
    assert not torch.allclose(untrained, theirs, atol=1e-3)


def test_predict_returns_labels_and_probabilities_in_input_order(tiny_run):
    p = load(tiny_run)
    texts = ["good great love", "bad awful hate", "the movie was", "good great love"]
    out = p.predict(texts)
    assert len(out) == 4 and out[0] == out[3]
    for row in out:
        assert set(row["probs"]) == {"negative", "neutral", "positive"}
        assert abs(sum(row["probs"].values()) - 1) < 1e-4
        assert row["label"] == max(row["probs"], key=row["probs"].get)
    assert p.predict([]) == []


def test_same_seed_same_adapter(tmp_path, tiny_csv, tiny_model_dir):
    runs = [train(overrides=tiny_overrides(tmp_path / f"r{i}", tiny_csv, tiny_model_dir, **{"train.epochs": 1}),
                  show_progress=False) for i in range(2)]
    from safetensors.torch import load_file

    a, b = (load_file(f"{m['run']}/adapter/adapter_model.safetensors") for m in runs)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_existing_run_needs_overwrite(tmp_path, tiny_csv, tiny_model_dir, tiny_run):
    o = tiny_overrides(tmp_path / "runs", tiny_csv, tiny_model_dir, **{"train.epochs": 1})
    with pytest.raises(RunError, match="already exists.*--overwrite"):
        train(overrides=o, show_progress=False)
    train(overrides=o, overwrite=True, show_progress=False)
    assert len(json.loads((tiny_run / "metrics.json").read_text())["history"]) == 1


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, tiny_csv, tiny_model_dir):
    precious = tmp_path / "runs" / "tiny"
    precious.mkdir(parents=True)
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(RunError, match="not a lorakit run folder"):
        train(overrides=tiny_overrides(tmp_path / "runs", tiny_csv, tiny_model_dir), overwrite=True, show_progress=False)
    assert (precious / "thesis.tex").read_text() == "do not delete"


def test_missing_base_names_the_install_command(tmp_path, tiny_csv, tiny_model_dir):
    o = tiny_overrides(tmp_path, tiny_csv, tiny_model_dir, base="minilm")
    with pytest.raises(NotInstalledError, match="not installed") as e:
        train(overrides=o, show_progress=False)
    assert e.value.hint == "run: lorakit install minilm"
    assert not (tmp_path / "tiny").exists()  # nothing written before the check


def test_unknown_target_module_is_a_config_error(tmp_path, tiny_csv, tiny_model_dir):
    o = tiny_overrides(tmp_path, tiny_csv, tiny_model_dir, **{"lora.target_modules": ["nonexistent_proj"]})
    with pytest.raises(ConfigError, match="lora.target_modules"):
        train(overrides=o, show_progress=False)


def test_max_length_beyond_the_models_positions_is_a_config_error(tmp_path, tiny_csv, tiny_model_dir):
    # the tiny model has 64 positions; past 64 tokens widths are multiples of 8, so 65 pads to 72
    o = tiny_overrides(tmp_path, tiny_csv, tiny_model_dir, **{"data.max_length": 65})
    with pytest.raises(ConfigError, match=r"data.max_length=65 pads batches to 72 tokens, more than .* can read \(64\)") as e:
        train(overrides=o, show_progress=False)
    assert e.value.hint == "set data.max_length to 64 or less"
    m = train(overrides=tiny_overrides(tmp_path, tiny_csv, tiny_model_dir, **{"data.max_length": 60, "train.epochs": 1}),
              overwrite=True, show_progress=False)
    assert m["best_epoch"] == 1


@pytest.mark.parametrize("method", ["rslora", "dora"])
def test_lora_variants_train_and_reload(tmp_path, tiny_csv, tiny_model_dir, method):
    m = train(overrides=tiny_overrides(tmp_path, tiny_csv, tiny_model_dir, **{"lora.method": method, "train.epochs": 1}),
              show_progress=False)
    cfg = json.loads((tmp_path / "tiny/adapter/adapter_config.json").read_text())
    assert cfg["use_rslora"] is (method == "rslora") and cfg["use_dora"] is (method == "dora")
    assert load(m["run"]).predict(["good"])[0]["label"] in m["labels"]


def test_diverging_loss_stops_with_a_clear_error(tmp_path, tiny_csv, tiny_model_dir):
    o = tiny_overrides(tmp_path, tiny_csv, tiny_model_dir, **{"train.lr": 1e30, "train.max_grad_norm": None,
                                                              "train.warmup_ratio": 0})
    with pytest.raises(TrainingDiverged, match=r"loss became (nan|inf) at step \d+"):
        train(overrides=o, show_progress=False)
