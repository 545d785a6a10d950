"""Sources that are not what lorakit install takes: each refusal says what the thing is not, and what is taken."""

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file
from store_helpers import assert_one_line_error, make_peft_adapter, store_state


def assert_refused(result, *needles, not_in=()):
    rc, _, err = result
    assert_one_line_error(rc, err, *needles, " — next: ")
    for n in not_in:
        assert n not in err, err


@pytest.mark.parametrize("content, needle", [
    (b"hello, these are not weights\n", "(its header is not valid)"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 99\n", "it is a Git LFS pointer"),
    (b"<!DOCTYPE html><html><body>Sign in</body></html>", "it is a web page"),
    (b"hi\n", "shorter than 8 bytes"),
])
def test_a_file_named_safetensors_that_is_not_one(content, needle, tmp_path, tiny_model_dir, cli, tiny_installed):
    d = tmp_path / "src"
    d.mkdir()
    shutil.copy(tiny_model_dir / "config.json", d / "config.json")
    (d / "x.safetensors").write_bytes(content)
    before = store_state()
    assert_refused(cli("install", d / "x.safetensors"), "x.safetensors is not a safetensors file", needle)
    (d / "config.json").unlink()  # without a config.json beside it, the file is still what is wrong
    assert_refused(cli("install", d / "x.safetensors"), "x.safetensors is not a safetensors file",
                   not_in=["config.json"])
    assert_refused(cli("install", "--adapter", d / "x.safetensors", "--base", "tiny"),
                   "x.safetensors is not a safetensors file", needle)
    assert store_state() == before


def test_a_file_of_another_kind_gets_no_safetensors_advice(tmp_path, tiny_model_dir, cli, tiny_installed, monkeypatch):
    (tmp_path / "junk.txt").write_text("junk")
    monkeypatch.chdir(tmp_path)
    assert_refused(cli("install", "./junk.txt"), "./junk.txt is not model weights (a .txt file)", "a model folder",
                   not_in=["config.json next to", "no config.json"])
    assert_refused(cli("install", "--adapter", "./junk.txt", "--base", "tiny"),
                   "junk.txt is not an adapter file (a .txt file)", "PEFT adapter folder")


def test_a_folder_with_a_broken_config_gets_a_next_step(tmp_path, tiny_model_dir, cli, tiny_installed):
    d = shutil.copytree(tiny_model_dir, tmp_path / "broken")
    (d / "config.json").write_text("{not json")
    assert_refused(cli("install", d), "config.json: not valid JSON", "original config.json")
    (d / "config.json").write_text("[1, 2]")
    assert_refused(cli("install", d), "config.json: expected a JSON object", "original config.json")
    a = make_peft_adapter(tiny_model_dir, tmp_path / "a")
    (a / "adapter_config.json").write_text("{not json")
    assert_refused(cli("install", "--adapter", a, "--base", "tiny"), "adapter_config.json: not valid JSON",
                   "save_pretrained")


def test_an_adapter_given_as_a_model_is_called_an_adapter(tmp_path, tiny_model_dir, cli, tiny_installed):
    a = make_peft_adapter(tiny_model_dir, tmp_path / "a", modules_to_save=None)
    assert_refused(cli("install", a), "holds a LoRA adapter, not a base model", f"lorakit install --adapter {a}",
                   not_in=["config.json"])
    shutil.copy(a / "adapter_model.safetensors", tmp_path / "lone.safetensors")
    assert_refused(cli("install", tmp_path / "lone.safetensors"), "is a LoRA adapter, not a base model",
                   f"lorakit install --adapter {tmp_path / 'lone.safetensors'}")
    t = {"lora_te_encoder_layer_0_attention_self_query.lora_down.weight": torch.zeros(4, 32),
         "lora_te_encoder_layer_0_attention_self_query.lora_up.weight": torch.zeros(32, 4)}
    save_file(t, tmp_path / "kohya.safetensors")
    assert_refused(cli("install", tmp_path / "kohya.safetensors"), "is a LoRA adapter", "--adapter")


def test_a_model_given_as_an_adapter_is_called_a_model(tmp_path, tiny_model_dir, cli, tiny_installed):
    assert_refused(cli("install", "--adapter", tiny_model_dir, "--base", "tiny"),
                   "holds a base model, not an adapter", f"lorakit install {tiny_model_dir}")
    assert_refused(cli("install", "--adapter", tiny_model_dir / "model.safetensors", "--base", "tiny"),
                   "not a LoRA adapter", f"lorakit install {tiny_model_dir / 'model.safetensors'}")


def test_a_torch_checkpoint_under_a_safetensors_name(tmp_path, tiny_model_dir, cli):
    d = tmp_path / "src"
    d.mkdir()
    shutil.copy(tiny_model_dir / "config.json", d / "config.json")
    torch.save({"w": torch.zeros(2)}, d / "model.safetensors")
    assert_refused(cli("install", d), "model.safetensors is not a safetensors file", "pickled", "--allow-pickle")
    assert json.loads((d / "config.json").read_text())  # the source is left alone
