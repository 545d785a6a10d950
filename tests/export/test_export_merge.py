"""Merge: plain weights equal to base + adapter, tensor by tensor, without touching the base."""

import json

import pytest
import torch
from export_helpers import file_hashes, peft_logits, plain_logits
from safetensors import safe_open

from lorakit.errors import LorakitError
from lorakit.export.merge import merge
from lorakit.export.unmerge import unmerge


@pytest.mark.parametrize("method", ["lora", "rslora", "dora"])
def test_merged_folder_loads_in_plain_transformers_with_the_same_logits(trained, tmp_path, method):
    from transformers import AutoModelForSequenceClassification

    run = trained(method)
    out = tmp_path / "merged"
    result = merge(run, out)
    assert result["head"] == ["classifier.bias", "classifier.weight"]
    model, info = AutoModelForSequenceClassification.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert type(model).__name__ == "BertForSequenceClassification"
    labels = json.loads((run / "adapter" / "labels.json").read_text())
    assert model.config.id2label == dict(enumerate(labels))
    assert json.loads((out / "labels.json").read_text()) == labels
    expected = peft_logits(run)
    got = plain_logits(out)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()


@pytest.mark.parametrize("method", ["lora", "rslora"])
def test_each_target_weight_is_base_plus_scaled_BA(trained, tiny_model_dir, tmp_path, method):
    run = trained(method)
    merge(run, tmp_path / "m")
    cfg = json.loads((run / "adapter" / "adapter_config.json").read_text())
    r, alpha = cfg["r"], cfg["lora_alpha"]
    scale = alpha / r ** 0.5 if method == "rslora" else alpha / r
    with safe_open(run / "adapter" / "adapter_model.safetensors", "pt") as ad, \
            safe_open(tiny_model_dir / "model.safetensors", "pt") as base, \
            safe_open(tmp_path / "m" / "model.safetensors", "pt") as out:
        modules = sorted(k[len("base_model.model."):-len(".lora_A.weight")] for k in ad.keys()
                         if k.endswith("lora_A.weight"))
        assert len(modules) == 13  # q, k, v, attention/ffn dense x 2 layers + pooler
        largest = 0.0
        for m in modules:
            A = ad.get_tensor(f"base_model.model.{m}.lora_A.weight")
            B = ad.get_tensor(f"base_model.model.{m}.lora_B.weight")
            W = base.get_tensor(m.removeprefix("bert.") + ".weight")
            delta = scale * B @ A
            largest = max(largest, delta.abs().max().item())
            assert torch.allclose(out.get_tensor(m + ".weight"), W + delta, atol=1e-6), m
        assert largest > 1e-3  # the adapter really changes the weights: the check above can fail
        untouched = "bert.embeddings.word_embeddings.weight"
        assert torch.equal(out.get_tensor(untouched), base.get_tensor(untouched.removeprefix("bert.")))


def test_base_files_are_unchanged_after_merge(trained, tiny_model_dir, tmp_path):
    before = file_hashes(tiny_model_dir)
    merge(trained("lora"), tmp_path / "m")
    assert file_hashes(tiny_model_dir) == before


def test_merge_into_a_store_model_checks_its_hashes_and_installs_the_result(trained, tiny_model_dir, tmp_path):
    from lorakit.store import install_model, list_entries, model_dir

    install_model(str(tiny_model_dir), name="tiny")
    stored = model_dir("tiny")
    before = file_hashes(stored)
    result = merge(trained("lora"), tmp_path / "m", base="tiny", install="tiny-merged")
    assert result["base_check"] == "sha256"
    assert file_hashes(stored) == before
    assert {e["name"] for e in list_entries()} >= {"tiny", "tiny-merged"}
    assert torch.allclose(plain_logits(model_dir("tiny-merged")), peft_logits(trained("lora")), atol=1e-5)


def test_merging_twice_is_refused_or_identical_never_doubled(trained, tmp_path):
    run = trained("lora")
    merge(run, tmp_path / "m")
    first = file_hashes(tmp_path / "m")
    with pytest.raises(LorakitError, match="already exists"):
        merge(run, tmp_path / "m")
    merge(run, tmp_path / "m", force=True)  # same inputs, same bytes
    assert file_hashes(tmp_path / "m") == first
    with pytest.raises(LorakitError, match="already has this adapter merged"):
        merge(run, tmp_path / "m2", base=str(tmp_path / "m"))
    assert not (tmp_path / "m2").exists()


def test_unmerge_restores_the_base(trained, tiny_model_dir, tmp_path):
    merge(trained("lora"), tmp_path / "m")
    unmerge(tmp_path / "m", tmp_path / "base")
    with safe_open(tiny_model_dir / "model.safetensors", "pt") as a, \
            safe_open(tmp_path / "base" / "model.safetensors", "pt") as b:
        assert set(a.keys()) == set(b.keys())
        for k in a.keys():
            assert torch.allclose(a.get_tensor(k), b.get_tensor(k), rtol=0, atol=1e-6), k
    assert json.loads((tmp_path / "base" / "config.json").read_text()) == \
        json.loads((tiny_model_dir / "config.json").read_text())
    assert (tmp_path / "base" / "tokenizer.json").is_file()


def test_unmerge_refuses_dora_and_a_different_adapter(trained, tmp_path):
    merge(trained("dora"), tmp_path / "d")
    with pytest.raises(LorakitError, match="DoRA merge cannot be undone"):
        unmerge(tmp_path / "d", tmp_path / "x")
    merge(trained("lora"), tmp_path / "m")
    with pytest.raises(LorakitError, match="is not the adapter merged"):
        unmerge(tmp_path / "m", tmp_path / "x", adapter=trained("rslora"))
    assert not (tmp_path / "x").exists()


def test_adapter_of_another_base_is_refused_with_one_line(trained, tmp_path):
    from helpers import make_tiny_model
    from transformers import BertConfig, BertModel

    other = tmp_path / "wide"
    make_tiny_model(other)
    BertModel(BertConfig(vocab_size=30, hidden_size=48, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(other)
    with pytest.raises(LorakitError) as e:
        merge(trained("lora"), tmp_path / "m", base=str(other))
    assert "another base" in (e.value.hint or "") and "\n" not in e.value.message
    assert not (tmp_path / "m").exists()


def test_out_over_the_base_or_into_the_store_is_refused(trained, tiny_model_dir, tmp_path):
    from lorakit.store import home, install_model, model_dir

    install_model(str(tiny_model_dir), name="tiny")
    before = file_hashes(model_dir("tiny"))
    for out in (model_dir("tiny"), home() / "models" / "merged", tiny_model_dir):
        with pytest.raises(LorakitError, match="would write over the base model or into the store"):
            merge(trained("lora"), out, base="tiny" if out != tiny_model_dir else None, force=True)
    assert file_hashes(model_dir("tiny")) == before


def test_bf16_base_is_merged_in_float32_and_rounded_like_torch(trained, tiny_model_dir, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    bf16 = tmp_path / "bf16"
    shutil.copytree(tiny_model_dir, bf16)
    save_file({k: v.to(torch.bfloat16) for k, v in load_file(tiny_model_dir / "model.safetensors").items()},
              bf16 / "model.safetensors", metadata={"format": "pt"})
    run = trained("lora")
    merge(run, tmp_path / "m", base=str(bf16))
    cfg = json.loads((run / "adapter" / "adapter_config.json").read_text())
    ad = load_file(run / "adapter" / "adapter_model.safetensors")
    base, out = load_file(bf16 / "model.safetensors"), load_file(tmp_path / "m" / "model.safetensors")
    m = "bert.encoder.layer.1.attention.self.value"
    delta = (ad[f"base_model.model.{m}.lora_B.weight"] @ ad[f"base_model.model.{m}.lora_A.weight"]) \
        * (cfg["lora_alpha"] / cfg["r"])
    expected = (base[m.removeprefix("bert.") + ".weight"].float() + delta).to(torch.bfloat16)
    assert out[m + ".weight"].dtype == torch.bfloat16
    assert torch.equal(out[m + ".weight"], expected)
    assert not torch.equal(expected, base[m.removeprefix("bert.") + ".weight"])
    with pytest.raises(LorakitError, match="16-bit"):
        unmerge(tmp_path / "m", tmp_path / "u")


def test_adapter_variants_that_are_not_a_plain_update_are_refused(trained, tmp_path):
    import shutil

    copy = tmp_path / "adapter"
    shutil.copytree(trained("lora") / "adapter", copy)
    config = json.loads((copy / "adapter_config.json").read_text())
    (copy / "adapter_config.json").write_text(json.dumps(dict(config, alora_invocation_tokens=[5, 6])))
    with pytest.raises(LorakitError, match="alora_invocation_tokens set cannot be merged"):
        merge(copy, tmp_path / "m")
    assert not (tmp_path / "m").exists()
