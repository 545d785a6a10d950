"""URL and hub sources against a loopback fake server (never the network): resume, sha256 pins,
revision pins, HF_ENDPOINT / HF_HUB_OFFLINE / HF_HOME."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fake_server import FakeServer
from safetensors.torch import save_file
from store_helpers import assert_one_line_error, store_state

import lorakit
from lorakit.store import manifest, model_dir

SRC = str(Path(lorakit.__file__).resolve().parents[1])


@pytest.fixture
def server():
    s = FakeServer()
    yield s
    s.close()


def test_url_download_resumes_after_a_dropped_connection(server, tiny_model_dir, cli):
    weights = (tiny_model_dir / "model.safetensors").read_bytes()
    server.files["/m/model.safetensors"] = weights
    server.files["/m/config.json"] = (tiny_model_dir / "config.json").read_bytes()
    server.files["/m/vocab.txt"] = (tiny_model_dir / "vocab.txt").read_bytes()
    server.cut = len(weights) // 2
    url = server.url + "/m/model.safetensors"
    rc, _, err = cli("install", url, "--name", "web")
    assert_one_line_error(rc, err, "interrupted", "run the same command again to resume")
    assert [p for p in store_state() if not p.startswith("downloads")] == []  # only the partial download
    rc, out, err = cli("install", url, "--name", "web", "--json")
    assert rc == 0, err
    assert ("GET", "/m/model.safetensors", f"bytes={len(weights) // 2}-") in server.log
    m = json.loads(out)
    assert set(m["files"]) == {"model.safetensors", "config.json", "vocab.txt"} and m["source"] == url
    assert (model_dir("web") / "model.safetensors").read_bytes() == weights


def test_url_sha256_pin(server, tmp_path, tiny_model_dir, cli, tiny_installed):
    t = {"lora_te_encoder_layer_0_attention_self_query.lora_down.weight": torch.randn(2, 32),
         "lora_te_encoder_layer_0_attention_self_query.lora_up.weight": torch.randn(32, 2)}
    save_file(t, tmp_path / "k.safetensors")
    data = (tmp_path / "k.safetensors").read_bytes()
    server.files["/lora/k.safetensors"] = data
    url = server.url + "/lora/k.safetensors"
    before = store_state()
    rc, _, err = cli("install", "--adapter", url, "--base", "tiny", "--sha256", "ab" * 32)
    assert_one_line_error(rc, err, "sha256 mismatch", "discarded")
    assert store_state() == before
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    rc, out, err = cli("install", "--adapter", url, "--base", "tiny", "--sha256", digest, "--json")
    assert rc == 0, err
    assert json.loads(out)["sha256"] == digest and json.loads(out)["format"] == "kohya"
    rc, _, err = cli("install", "--adapter", server.url + "/lora/missing.safetensors", "--base", "tiny")
    assert_one_line_error(rc, err, "HTTP 404")


def _lorakit(env_extra, *args):
    env = {**os.environ, "PYTHONPATH": SRC, **env_extra}
    return subprocess.run([sys.executable, "-m", "lorakit", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=120)


def test_hub_install_through_hf_endpoint_pins_the_revision(server, tmp_path, tiny_model_dir):
    repo = {n: (tiny_model_dir / n).read_bytes() for n in ("config.json", "model.safetensors", "vocab.txt",
                                                            "tokenizer_config.json")}
    repo["pytorch_model.bin"] = b"a pickle that must never be fetched"
    server.repos["org/tiny"] = repo
    online = {"HF_ENDPOINT": server.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf")}
    r = _lorakit(online, "install", "org/tiny", "--revision", "v1", "--json")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["revision"] == server.commit and m["requested_revision"] == "v1"
    assert m["source"] == f"hub:org/tiny@{server.commit}"
    assert "pytorch_model.bin" not in m["files"]
    assert not any(p.endswith("pytorch_model.bin") for _, p, _ in server.log)
    assert manifest("models", "tiny")["files"]["model.safetensors"]["size"] == len(repo["model.safetensors"])

    n = len(server.log)  # offline: served from the HF_HOME cache, no request at all
    r = _lorakit({**online, "HF_HUB_OFFLINE": "1"}, "install", "org/tiny", "--revision", server.commit,
                 "--name", "tiny-offline")
    assert r.returncode == 0, r.stderr
    assert len(server.log) == n

    r = _lorakit({**online, "HF_HUB_OFFLINE": "1"}, "install", "org/other")
    assert_one_line_error(r.returncode, r.stderr, "cannot download 'org/other'", "HF_HUB_OFFLINE")
    r = _lorakit(online, "install", "org/missing")
    assert_one_line_error(r.returncode, r.stderr, "'org/missing' not found")
