"""The export verbs end to end through the command line: files written, one-line errors, exit codes."""

import json

import torch
from export_helpers import peft_logits, plain_logits

from lorakit.cli import main


def test_merge_then_unmerge_on_the_command_line(trained, tiny_model_dir, tmp_path, capsys):
    run = trained("lora")
    assert main(["merge", str(run), "--out", str(tmp_path / "m"), "--install", "tiny-merged"]) == 0
    said = capsys.readouterr().out
    assert "installed as model tiny-merged" in said and "base unchanged" in said
    assert {"config.json", "model.safetensors", "tokenizer.json", "labels.json", "lorakit-merge.json"} <= \
        {p.name for p in (tmp_path / "m").iterdir()}
    assert torch.allclose(plain_logits(tmp_path / "m"), peft_logits(run), atol=1e-5)

    assert main(["unmerge", str(tmp_path / "m"), "--out", str(tmp_path / "base"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["modules"] == 13
    assert (tmp_path / "base" / "model.safetensors").is_file()


def test_user_errors_print_one_line_and_exit_1(trained, tmp_path, capsys):
    assert main(["merge", str(tmp_path / "nope"), "--out", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["merge", "not-installed-adapter", "--out", str(tmp_path / "m")]) == 1
    assert "not-installed-adapter" in capsys.readouterr().err
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("mine")
    assert main(["merge", str(trained("lora")), "--out", str(tmp_path / "m")]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["merge", str(trained("lora")), "--out", str(tmp_path / "m"), "--force"]) == 1
    assert "not written by lorakit; refusing to replace it" in capsys.readouterr().err
    assert (tmp_path / "m" / "keep.txt").read_text() == "mine"
    assert main(["unmerge", str(tmp_path), "--out", str(tmp_path / "b")]) == 1
    assert "lorakit merge" in capsys.readouterr().err


def test_combine_on_the_command_line(trained, tmp_path, capsys):
    a, b = trained("lora", seed=0), trained("lora", seed=1)
    assert main(["combine", str(a), str(b), "--weights", "0.7,0.3", "--method", "cat", "--out",
                 str(tmp_path / "ab")]) == 0
    assert "rank-8" in capsys.readouterr().out
    assert {"adapter_config.json", "adapter_model.safetensors", "labels.json", "lorakit.json"} <= \
        {p.name for p in (tmp_path / "ab").iterdir()}
    # the combined adapter predicts and merges like any other
    assert main(["predict", str(tmp_path / "ab"), "good movie"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in json.loads((a / "adapter" / "labels.json").read_text())
    assert main(["merge", str(tmp_path / "ab"), "--out", str(tmp_path / "m")]) == 0
    assert main(["combine", str(a), str(b), "--weights", "0.7;0.3", "--out", str(tmp_path / "x")]) == 1
    assert "comma-separated" in capsys.readouterr().err
