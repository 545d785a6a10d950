"""Installing base models: sources, safe names and symlinks, pickles, content sharing, disk space."""

import json
import os
import pickle
import shutil

import pytest
import torch
from store_helpers import assert_one_line_error, store_state

from lorakit.store import home, model_dir


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_install_folder_then_identical_reinstall_is_reused(tiny_model_dir, cli):
    rc, out, err = cli("install", tiny_model_dir, "--name", "tiny", "--json")
    assert rc == 0, err
    m = json.loads(out)
    assert m["architecture"] == "BertModel" and m["parameters"] > 10_000 and "model.safetensors" in m["files"]
    d = model_dir("tiny")
    for rel, f in m["files"].items():  # every file hard-linked to its blob
        assert os.stat(d / rel).st_ino == os.stat(home() / "blobs" / "sha256" / f["sha256"]).st_ino
    before = store_state()
    rc, out, _ = cli("install", tiny_model_dir, "--name", "tiny", "--json")
    assert rc == 0 and json.loads(out)["reused"] is True
    assert store_state() == before


def test_same_content_under_two_names_shares_blobs(tiny_model_dir, tmp_path, cli, tiny_installed):
    copy = _copy(tiny_model_dir, tmp_path / "copy")
    blobs_before = sorted((home() / "blobs" / "sha256").iterdir())
    assert cli("install", copy, "--name", "tiny2")[0] == 0
    assert sorted((home() / "blobs" / "sha256").iterdir()) == blobs_before
    inode = [os.stat(model_dir(n) / "model.safetensors").st_ino for n in ("tiny", "tiny2")]
    assert inode[0] == inode[1]


def test_changed_content_needs_force_and_force_swaps_atomically(tiny_model_dir, tmp_path, cli, tiny_installed):
    copy = _copy(tiny_model_dir, tmp_path / "copy")
    (copy / "README.md").write_text("changed")
    before = store_state()
    rc, _, err = cli("install", copy, "--name", "tiny")
    assert_one_line_error(rc, err, "already installed", "--force")
    assert store_state() == before
    assert cli("install", copy, "--name", "tiny", "--force")[0] == 0
    assert (model_dir("tiny") / "README.md").read_text() == "changed"
    assert len(list((home() / "entries" / "models").iterdir())) == 1  # the old version is gone
    assert cli("verify")[0] == 0


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ".hidden", "x" * 101, "a b", "-rf"])
def test_unsafe_names_are_refused(name, tiny_model_dir, cli):
    rc, _, err = cli("install", tiny_model_dir, "--name=" + name)
    assert_one_line_error(rc, err, "invalid name")
    assert not (home() / "models").exists() or not any((home() / "models").iterdir())
    assert not (home().parent / "evil").exists()


def test_symlink_escaping_the_source_is_refused(tiny_model_dir, tmp_path, cli):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not copy me")
    src = _copy(tiny_model_dir, tmp_path / "src")
    (src / "notes.txt").symlink_to(secret)
    rc, _, err = cli("install", src, "--name", "x")
    assert_one_line_error(rc, err, "notes.txt", "outside the source")
    os.unlink(src / "notes.txt")
    (src / "sub").symlink_to(tmp_path, target_is_directory=True)
    rc, _, err = cli("install", src, "--name", "x")
    assert_one_line_error(rc, err, "sub", "outside the source")
    assert store_state() == {}


def test_symlink_inside_the_source_is_followed(tiny_model_dir, tmp_path, cli):
    src = _copy(tiny_model_dir, tmp_path / "src")
    (src / "vocab-link.txt").symlink_to(src / "vocab.txt")
    assert cli("install", src, "--name", "x")[0] == 0
    assert (model_dir("x") / "vocab-link.txt").read_text() == (src / "vocab.txt").read_text()


def test_single_safetensors_file_with_its_config(tiny_model_dir, tmp_path, cli):
    d = tmp_path / "single"
    d.mkdir()
    shutil.copy(tiny_model_dir / "model.safetensors", d / "weights.safetensors")
    rc, _, err = cli("install", d / "weights.safetensors")
    assert_one_line_error(rc, err, "no config.json")
    for n in ("config.json", "vocab.txt", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / n, d / n)
    rc, out, err = cli("install", d / "weights.safetensors", "--json")
    assert rc == 0, err
    assert set(json.loads(out)["files"]) == {"weights.safetensors", "config.json", "vocab.txt", "tokenizer_config.json"}
    assert json.loads(out)["name"] == "weights"


def test_pip_source_and_missing_package(cli):
    rc, _, err = cli("install", "pip:no-such-package-xyz/model")
    assert_one_line_error(rc, err, "not installed", "pip install")
    rc, _, err = cli("install", "pip:pytest/../../..")
    assert_one_line_error(rc, err, "inside the package")


class Payload:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _pickle_model(tmp_path, tiny_model_dir, payload, torch_format: bool):
    d = tmp_path / ("torch" if torch_format else "raw")
    d.mkdir()
    shutil.copy(tiny_model_dir / "config.json", d / "config.json")
    obj = {"embeddings.word_embeddings.weight": torch.zeros(2, 2), "evil": payload}
    if torch_format:
        torch.save(obj, d / "pytorch_model.bin")
    else:
        with open(d / "pytorch_model.bin", "wb") as f:
            pickle.dump(obj, f)
    return d


@pytest.mark.parametrize("torch_format", [True, False])
def test_malicious_pickle_never_runs(torch_format, tmp_path, tiny_model_dir, cli, tiny_installed):
    marker = tmp_path / "PWNED"
    src = _pickle_model(tmp_path, tiny_model_dir, Payload(marker), torch_format)
    before = store_state()
    rc, _, err = cli("install", src, "--name", "evil")
    assert_one_line_error(rc, err, "refusing pickled checkpoint", "pytorch_model.bin", "--allow-pickle")
    rc, _, err = cli("install", src, "--name", "evil", "--allow-pickle")
    assert_one_line_error(rc, err, "more than tensors")
    assert not marker.exists()
    assert store_state() == before
    assert cli("verify")[0] == 0


def test_allow_pickle_converts_a_tensors_only_checkpoint(tmp_path, tiny_model_dir, cli):
    from safetensors.torch import load_file

    src = tmp_path / "pt"
    src.mkdir()
    for n in ("config.json", "vocab.txt", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / n, src / n)
    weights = load_file(tiny_model_dir / "model.safetensors")
    torch.save(weights, src / "pytorch_model.bin")
    assert cli("install", src, "--name", "conv", "--allow-pickle")[0] == 0
    d = model_dir("conv")
    assert not (d / "pytorch_model.bin").exists()
    converted = load_file(d / "model.safetensors")
    assert converted.keys() == weights.keys()
    assert all(torch.equal(converted[k], weights[k]) for k in weights)
    from transformers import AutoModel

    AutoModel.from_pretrained(d)  # loads as a normal model


def test_pickles_next_to_safetensors_are_left_out(tmp_path, tiny_model_dir, cli):
    src = _copy(tiny_model_dir, tmp_path / "both")
    (src / "pytorch_model.bin").write_bytes(b"not even a pickle")
    rc, out, _ = cli("install", src, "--name", "both", "--json")
    assert rc == 0 and "pytorch_model.bin" not in json.loads(out)["files"]


def test_not_enough_disk_space_is_checked_first(tiny_model_dir, cli, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10 << 20, 10 << 20, 1000))
    rc, _, err = cli("install", tiny_model_dir, "--name", "tiny")
    assert_one_line_error(rc, err, "not enough disk space")
    assert store_state() == {}


def test_unknown_source_and_bad_config(tmp_path, cli):
    rc, _, err = cli("install", tmp_path / "nope")
    assert_one_line_error(rc, err, "no such folder")
    d = tmp_path / "badcfg"
    d.mkdir()
    (d / "config.json").write_text("{not json")
    rc, _, err = cli("install", d)
    assert_one_line_error(rc, err, "config.json", "not valid JSON")


def test_model_code_is_not_installed(tmp_path, tiny_model_dir, cli):
    src = _copy(tiny_model_dir, tmp_path / "code")
    (src / "modeling_evil.py").write_text("import os; os.system('touch /tmp/x')")
    rc, out, _ = cli("install", src, "--name", "code", "--json")
    assert rc == 0 and "modeling_evil.py" not in json.loads(out)["files"]


def test_a_copied_store_entry_reinstalls_without_touching_its_blobs(tmp_path, cli, tiny_installed):
    """The copy carries our manifest file: it is replaced, never written through a hard-linked blob."""
    copy = _copy(model_dir("tiny"), tmp_path / "copied-entry")
    rc, out, err = cli("install", copy, "--name", "again", "--json")
    assert rc == 0, err
    assert "lorakit-manifest.json" not in json.loads(out)["files"]
    assert cli("verify")[0] == 0
