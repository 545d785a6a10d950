"""verify, rm, gc, list and show: corruption is found, removal is atomic, gc keeps what is used."""

import json
import os
import stat

from store_helpers import assert_one_line_error

from lorakit.store import home, model_dir


def _blob_of(name, rel):
    return model_dir(name) / rel


def test_verify_reports_a_corrupted_file_and_exits_1(cli, tiny_installed):
    assert cli("verify")[0] == 0
    f = _blob_of("tiny", "vocab.txt")
    os.chmod(f, stat.S_IWUSR | stat.S_IRUSR)
    with open(f, "r+b") as fh:  # flip one byte in place (blobs are hard-linked: the blob is hit too)
        b = fh.read(1)
        fh.seek(0)
        fh.write(bytes([b[0] ^ 1]))
    rc, out, err = cli("verify", "--json")
    r = json.loads(out)
    assert rc == 1 and not r["ok"] and any("vocab.txt is corrupt" in p for p in r["problems"])
    rc, _, err = cli("verify", "tiny")
    assert rc == 1 and "vocab.txt is corrupt" in err
    assert "install each damaged entry again from its source" in err and "lorakit list" in err


def test_force_reinstall_repairs_a_corrupted_blob(tiny_model_dir, cli, tiny_installed):
    f = _blob_of("tiny", "vocab.txt")
    os.chmod(f, stat.S_IWUSR | stat.S_IRUSR)
    f.write_text("tampered")
    assert cli("verify")[0] == 1
    rc, out, _ = cli("install", tiny_model_dir, "--name", "tiny", "--force", "--json")
    assert rc == 0 and "reused" not in json.loads(out)
    assert cli("verify")[0] == 0


def test_verify_reports_missing_and_unexpected_files(cli, tiny_installed):
    d = model_dir("tiny")
    os.unlink(d / "config.json")
    (d / "extra.bin").write_bytes(b"x")
    rc, out, _ = cli("verify", "--json")
    problems = json.loads(out)["problems"]
    assert rc == 1 and any("config.json is missing" in p for p in problems)
    assert any("unexpected file extra.bin" in p for p in problems)


def test_rm_protects_a_base_in_use_then_gc_frees_its_blobs(tmp_path, tiny_model_dir, cli, tiny_installed):
    from store_helpers import make_peft_adapter

    src = make_peft_adapter(tiny_model_dir, tmp_path / "a")
    rc, out, _ = cli("install", "--adapter", src, "--base", "tiny", "--name", "ad", "--json")
    assert rc == 0
    own = {f["sha256"] for f in json.loads(out)["files"].values()}
    own -= {f["sha256"] for f in json.loads(cli("show", "tiny", "--json")[1])["files"].values()}
    rc, _, err = cli("rm", "tiny")
    assert_one_line_error(rc, err, "base of installed adapters: ad", "lorakit rm ad")
    assert cli("rm", "ad")[0] == 0
    blobs = home() / "blobs" / "sha256"
    n_blobs = len(list(blobs.iterdir()))
    rc, out, _ = cli("gc", "--json")
    assert rc == 0 and json.loads(out)["blobs_removed"] == len(own) >= 2
    assert len(list(blobs.iterdir())) == n_blobs - len(own)
    assert cli("verify")[0] == 0
    assert cli("rm", "tiny")[0] == 0
    rc, out, _ = cli("gc", "--json")
    assert json.loads(out)["bytes_freed"] > 10_000 and not list(blobs.iterdir())
    rc, _, err = cli("rm", "tiny")
    assert_one_line_error(rc, err, "nothing called 'tiny' is installed")


def test_gc_keeps_blobs_in_use_and_drops_leftovers(cli, tiny_installed):
    (home() / "tmp" / "install-models-x-1-abcd").mkdir(parents=True)
    (home() / "blobs" / "sha256" / ("0" * 64)).write_bytes(b"orphan")
    rc, out, _ = cli("gc", "--json")
    r = json.loads(out)
    assert r["blobs_removed"] == 1 and r["temp_removed"] == 1
    assert cli("verify")[0] == 0
    assert (model_dir("tiny") / "model.safetensors").is_file()


def test_list_and_show(cli, tmp_path, tiny_model_dir, tiny_installed):
    rc, out, _ = cli("list", "--json")
    (e,) = json.loads(out)
    assert e["name"] == "tiny" and e["kind"] == "model" and e["size"] > 10_000 and e["parameters"] > 10_000
    rc, out, _ = cli("show", "tiny", "--json")
    m = json.loads(out)
    assert m["model_type"] == "bert" and len(m["files"]["model.safetensors"]["sha256"]) == 64
    rc, out, _ = cli("show", "tiny")
    assert rc == 0 and "model.safetensors" in out and "adapters that fit" in out
    rc, _, err = cli("show", "ghost")
    assert_one_line_error(rc, err, "nothing called 'ghost'")
