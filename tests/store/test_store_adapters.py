"""Installing adapters: PEFT folders of each LoRA method, run folders, single files, kohya files,
and the compatibility check against the base (on install and on load)."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from store_helpers import assert_one_line_error, make_peft_adapter, store_state

from lorakit.store import adapter_dir, model_dir


def _load_peft(base_dir, adapter, num_labels=3):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    base = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=num_labels)
    return PeftModel.from_pretrained(base, adapter).eval()


@pytest.mark.parametrize("kind", ["lora", "rslora", "dora", "adalora"])
def test_plain_peft_adapter_installs_and_loads(kind, tmp_path, tiny_model_dir, cli, tiny_installed):
    src = make_peft_adapter(tiny_model_dir, tmp_path / f"{kind}-adapter", kind=kind)
    rc, out, err = cli("install", "--adapter", src, "--base", "tiny", "--name", kind, "--json")
    assert rc == 0, err
    m = json.loads(out)
    assert m["method"] == kind and m["base"] == "tiny" and m["dtype"] == "F32"
    assert m["peft_type"] == ("ADALORA" if kind == "adalora" else "LORA")
    ids = torch.tensor([[2, 5, 6, 3]])
    want = _load_peft(tiny_model_dir, src)(input_ids=ids).logits
    got = _load_peft(model_dir("tiny"), adapter_dir(kind))(input_ids=ids).logits
    assert torch.allclose(want, got)
    rc, out, _ = cli("show", "tiny", "--json")
    assert kind in json.loads(out)["adapters_that_fit"]


def test_adapter_for_another_base_is_refused_and_names_the_base_it_fits(tmp_path, other_base_dir, tiny_model_dir,
                                                                         cli, tiny_installed):
    assert cli("install", other_base_dir, "--name", "other")[0] == 0
    src = make_peft_adapter(other_base_dir, tmp_path / "for-other")
    before = store_state()
    rc, _, err = cli("install", "--adapter", src, "--base", "tiny", "--name", "x")
    assert_one_line_error(rc, err, "does not fit base 'tiny'", "lora_A is [4, 48]", "more)", "--base other")
    assert store_state() == before
    assert cli("install", "--adapter", src, "--base", "other", "--name", "x")[0] == 0


def test_adapter_targeting_absent_modules_is_refused(tmp_path, tiny_model_dir, cli, tiny_installed):
    src = make_peft_adapter(tiny_model_dir, tmp_path / "a")
    cfg = json.loads((src / "adapter_config.json").read_text())
    cfg["target_modules"] = ["query", "q_proj"]
    (src / "adapter_config.json").write_text(json.dumps(cfg))
    w = load_file(src / "adapter_model.safetensors")
    w["base_model.model.bert.encoder.layer.0.attention.self.q_proj.lora_A.weight"] = torch.zeros(4, 32)
    w["base_model.model.bert.encoder.layer.0.attention.self.q_proj.lora_B.weight"] = torch.zeros(32, 4)
    save_file(w, src / "adapter_model.safetensors")
    rc, _, err = cli("install", "--adapter", src, "--base", "tiny")
    assert_one_line_error(rc, err, "module encoder.layer.0.attention.self.q_proj is not in the base",
                          "no installed base fits")


def test_head_of_the_wrong_width_is_refused(tmp_path, tiny_model_dir, cli, tiny_installed):
    src = make_peft_adapter(tiny_model_dir, tmp_path / "a")
    w = load_file(src / "adapter_model.safetensors")
    w["base_model.model.classifier.weight"] = torch.zeros(3, 40)
    save_file(w, src / "adapter_model.safetensors")
    rc, _, err = cli("install", "--adapter", src, "--base", "tiny")
    assert_one_line_error(rc, err, "head classifier.weight takes inputs of size 40", "hidden size is 32")


def test_base_missing_and_not_an_adapter(tmp_path, tiny_model_dir, cli, tiny_installed):
    src = make_peft_adapter(tiny_model_dir, tmp_path / "a")
    rc, _, err = cli("install", "--adapter", src, "--base", "nope")
    assert_one_line_error(rc, err, "model 'nope' is not installed")
    rc, _, err = cli("install", "--adapter", tiny_model_dir, "--base", "tiny")
    assert_one_line_error(rc, err, "no adapter_config.json")
    rc, _, err = cli("install", "--adapter", tiny_model_dir / "model.safetensors", "--base", "tiny")
    assert_one_line_error(rc, err, "not a LoRA adapter")


def test_run_folder_installs_with_its_labels(tiny_run, cli, tiny_model_dir, tiny_installed):
    rc, _, err = cli("install", "--adapter", tiny_run, "--base", "tiny")
    assert_one_line_error(rc, err, "'tiny' is already the name of an installed model")  # the run is called tiny too
    rc, out, err = cli("install", "--adapter", tiny_run, "--base", "tiny", "--name", "tiny-run", "--json")
    assert rc == 0, err
    m = json.loads(out)
    assert m["labels"] == ["negative", "neutral", "positive"]
    assert {"adapter_config.json", "adapter_model.safetensors", "lorakit.json"} <= set(m["files"])


def test_single_peft_file_without_config_gets_one_inferred(tmp_path, tiny_model_dir, cli, tiny_installed):
    src = make_peft_adapter(tiny_model_dir, tmp_path / "a", modules_to_save=None)
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(src / "adapter_model.safetensors", lone / "my-adapter.safetensors")
    rc, out, err = cli("install", "--adapter", lone / "my-adapter.safetensors", "--base", "tiny", "--json")
    assert rc == 0, err
    m = json.loads(out)
    assert m["name"] == "my-adapter" and m["r"] == 4 and sorted(m["target_modules"]) == ["query", "value"]
    _load_peft(model_dir("tiny"), adapter_dir("my-adapter"))


def _kohya_file(path, base_dir, r=4, alpha=2.0):
    """A kohya-style LoRA for the tiny BERT: query of layer 0 and value of layer 1."""
    torch.manual_seed(3)
    t = {}
    for mod in ("encoder_layer_0_attention_self_query", "encoder_layer_1_attention_self_value"):
        t[f"lora_te_{mod}.lora_down.weight"] = torch.randn(r, 32)
        t[f"lora_te_{mod}.lora_up.weight"] = torch.randn(32, r)
        t[f"lora_te_{mod}.alpha"] = torch.tensor(alpha)
    save_file(t, path)
    return path, t


def test_kohya_file_converts_to_peft_with_the_same_update(tmp_path, tiny_model_dir, cli, tiny_installed):
    path, t = _kohya_file(tmp_path / "style.safetensors", tiny_model_dir)
    rc, out, err = cli("install", "--adapter", path, "--base", "tiny", "--json")
    assert rc == 0, err
    assert json.loads(out)["format"] == "kohya"
    model = _load_peft(model_dir("tiny"), adapter_dir("style"), num_labels=2)
    base_q = load_file(model_dir("tiny") / "model.safetensors")["encoder.layer.0.attention.self.query.weight"]
    merged = model.merge_and_unload()
    key = "lora_te_encoder_layer_0_attention_self_query"
    want = base_q + (2.0 / 4) * t[f"{key}.lora_up.weight"] @ t[f"{key}.lora_down.weight"]
    assert torch.allclose(merged.bert.encoder.layer[0].attention.self.query.weight, want, atol=1e-5)


def test_kohya_modules_absent_from_the_base_are_refused(tmp_path, tiny_model_dir, cli, tiny_installed):
    t = {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 32),
         "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(32, 4)}
    save_file(t, tmp_path / "sd.safetensors")
    before = store_state()
    rc, _, err = cli("install", "--adapter", tmp_path / "sd.safetensors", "--base", "tiny")
    assert_one_line_error(rc, err, "no counterpart in the base", "down_blocks_0")
    assert store_state() == before


def test_pickled_adapter_needs_allow_pickle(tmp_path, tiny_model_dir, cli, tiny_installed):
    src = make_peft_adapter(tiny_model_dir, tmp_path / "a")
    w = load_file(src / "adapter_model.safetensors")
    (src / "adapter_model.safetensors").unlink()
    torch.save(w, src / "adapter_model.bin")
    rc, _, err = cli("install", "--adapter", src, "--base", "tiny")
    assert_one_line_error(rc, err, "refusing pickled checkpoint", "adapter_model.bin")
    rc, out, err = cli("install", "--adapter", src, "--base", "tiny", "--allow-pickle", "--json")
    assert rc == 0, err
    assert set(json.loads(out)["files"]) >= {"adapter_model.safetensors", "adapter_config.json"}
    assert "adapter_model.bin" not in json.loads(out)["files"]


def test_adapter_is_rechecked_on_load(tmp_path, tiny_model_dir, other_base_dir, cli, tiny_installed):
    """If its base is replaced by an incompatible model, loading the adapter says so instead of a shape traceback."""
    from lorakit.errors import StoreError

    src = make_peft_adapter(tiny_model_dir, tmp_path / "a")
    assert cli("install", "--adapter", src, "--base", "tiny", "--name", "ad")[0] == 0
    assert cli("install", other_base_dir, "--name", "tiny", "--force")[0] == 0
    with pytest.raises(StoreError, match="does not fit base 'tiny'"):
        adapter_dir("ad")


def test_names_are_unique_across_models_and_adapters(tmp_path, tiny_model_dir, cli, tiny_installed):
    src = make_peft_adapter(tiny_model_dir, tmp_path / "a")
    rc, _, err = cli("install", "--adapter", src, "--base", "tiny", "--name", "tiny")
    assert_one_line_error(rc, err, "already the name of an installed model")


def test_predict_checks_the_run_adapter_against_its_base(tiny_run, other_base_dir, cli):
    meta_path = tiny_run / "adapter" / "lorakit.json"
    meta = json.loads(meta_path.read_text())
    meta["base"] = str(other_base_dir)  # the base moved on to an incompatible model
    meta_path.write_text(json.dumps(meta))
    rc, _, err = cli("predict", tiny_run, "good movie")
    assert_one_line_error(rc, err, "does not fit base", "lora_A is [4, 32], the base needs [r, 48]")


def test_kohya_alpha_that_is_not_one_number_is_refused(tmp_path, tiny_model_dir, cli, tiny_installed):
    path, t = _kohya_file(tmp_path / "bad-alpha.safetensors", tiny_model_dir)
    t["lora_te_encoder_layer_0_attention_self_query.alpha"] = torch.ones(3)
    save_file(t, path)
    rc, _, err = cli("install", "--adapter", path, "--base", "tiny")
    assert_one_line_error(rc, err, "alpha must be one finite number")


def test_base_must_be_an_installed_name(tmp_path, tiny_model_dir, cli, tiny_installed):
    src = make_peft_adapter(tiny_model_dir, tmp_path / "a")
    rc, _, err = cli("install", "--adapter", src, "--base", f"{tiny_model_dir}/../tiny-bert")
    assert_one_line_error(rc, err, "invalid name")


def test_adapter_folder_with_an_escaping_symlink_is_refused(tmp_path, tiny_model_dir, cli, tiny_installed):
    src = make_peft_adapter(tiny_model_dir, tmp_path / "a")
    (tmp_path / "private.md").write_text("secret")
    (src / "README.md").unlink()
    (src / "README.md").symlink_to(tmp_path / "private.md")
    before = store_state()
    rc, _, err = cli("install", "--adapter", src, "--base", "tiny")
    assert_one_line_error(rc, err, "README.md", "outside the source")
    assert store_state() == before


@pytest.mark.parametrize("change, needle", [
    ({"r": 8}, "the weights have rank 4, adapter_config says r=8"),
    ({"r": "x"}, "r must be a positive integer"),
    ({"lora_alpha": "big"}, "lora_alpha must be a number"),
    ({"task_type": "BOGUS"}, "not a PEFT task type"),
    ({"peft_type": "IA3", "r": None}, "IA3 is not supported"),
    ({"target_modules": 5}, "target_modules must be"),
])
def test_config_that_peft_would_choke_on_later_is_refused(change, needle, tmp_path, tiny_model_dir, cli,
                                                          tiny_installed):
    src = make_peft_adapter(tiny_model_dir, tmp_path / "a")
    cfg = json.loads((src / "adapter_config.json").read_text())
    (src / "adapter_config.json").write_text(json.dumps({**cfg, **change}))
    rc, _, err = cli("install", "--adapter", src, "--base", "tiny")
    assert_one_line_error(rc, err, needle)


def test_single_file_alpha_from_metadata(tmp_path, tiny_model_dir, cli, tiny_installed):
    src = make_peft_adapter(tiny_model_dir, tmp_path / "a", modules_to_save=None)
    w = load_file(src / "adapter_model.safetensors")
    save_file(w, tmp_path / "good.safetensors", metadata={"lora_alpha": "16"})
    rc, out, err = cli("install", "--adapter", tmp_path / "good.safetensors", "--base", "tiny", "--json")
    assert rc == 0 and json.loads(out)["lora_alpha"] == 16.0, err
    save_file(w, tmp_path / "bad.safetensors", metadata={"lora_alpha": "lots"})
    rc, _, err = cli("install", "--adapter", tmp_path / "bad.safetensors", "--base", "tiny")
    assert_one_line_error(rc, err, "lora_alpha 'lots' is not a number")


def test_python_install_of_a_run_folder_takes_its_recorded_base(tiny_run, tiny_model_dir):
    """lorakit.install(run) installs the run's adapter over the base its lorakit.json records, as the CLI does."""
    import lorakit

    lorakit.install(str(tiny_model_dir), name="tiny")
    m = lorakit.install(str(tiny_run), name="tiny-run")
    assert m["kind"] == "adapter" and m["base"] == "tiny"
