"""Installing the same content again repairs an entry that verify finds damaged; an intact one is reused unread."""

import json
import os
import stat

import pytest

from lorakit.store import home, model_dir


def _tamper(path, data=None):
    """Change an installed file in place (it is hard-linked to its blob: the blob changes too)."""
    os.chmod(path, stat.S_IWUSR | stat.S_IRUSR)
    if data is None:
        with open(path, "r+b") as f:  # flip the last byte
            f.seek(-1, os.SEEK_END)
            b = f.read(1)
            f.seek(-1, os.SEEK_END)
            f.write(bytes([b[0] ^ 1]))
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("rel", ["vocab.txt", "model.safetensors"])
def test_reinstalling_identical_content_repairs_a_corrupted_file(rel, tiny_model_dir, cli, tiny_installed):
    _tamper(model_dir("tiny") / rel)
    rc, out, err = cli("verify")
    assert rc == 1 and f"tiny: {rel} is corrupt" in err
    rc, out, err = cli("install", tiny_model_dir, "--name", "tiny", "--json")
    assert rc == 0, err
    m = json.loads(out)
    assert m["repaired"] == [rel] and "reused" not in m
    assert (model_dir("tiny") / rel).read_bytes() == (tiny_model_dir / rel).read_bytes()
    assert cli("verify")[0] == 0
    assert len(list((home() / "entries" / "models").iterdir())) == 1  # the damaged version is gone


def test_the_repair_is_said_in_words(tiny_model_dir, cli, tiny_installed):
    _tamper(model_dir("tiny") / "vocab.txt", b"tampered")
    rc, out, err = cli("install", tiny_model_dir, "--name", "tiny")
    text = " ".join(out.split())
    assert rc == 0 and text.startswith("repaired model tiny") and "restored from the source: vocab.txt" in text, err
    rc, out, _ = cli("install", tiny_model_dir, "--name", "tiny")
    assert rc == 0 and " ".join(out.split()).startswith("already installed (identical content)")


def test_missing_and_unexpected_files_are_repaired(tiny_model_dir, cli, tiny_installed):
    d = model_dir("tiny")
    os.unlink(d / "config.json")
    (d / "extra.bin").write_bytes(b"x")
    assert cli("verify")[0] == 1
    rc, out, err = cli("install", tiny_model_dir, "--name", "tiny", "--json")
    assert rc == 0 and json.loads(out)["repaired"] == ["config.json", "extra.bin"], err
    assert (d / "config.json").is_file() and not (d / "extra.bin").exists()
    assert cli("verify")[0] == 0


def test_a_lost_blob_is_restored_without_force(tiny_model_dir, cli, tiny_installed):
    rc, out, _ = cli("show", "tiny", "--json")
    blob = home() / "blobs" / "sha256" / json.loads(out)["files"]["vocab.txt"]["sha256"]
    blob.unlink()  # the entry's hard link still holds the content
    rc, out, err = cli("install", tiny_model_dir, "--name", "tiny", "--json")
    assert rc == 0 and json.loads(out)["repaired"] == ["vocab.txt"], err
    assert blob.is_file()
    assert os.stat(blob).st_ino == os.stat(model_dir("tiny") / "vocab.txt").st_ino
    assert cli("verify")[0] == 0


def test_a_hash_cache_that_vouches_for_a_corrupt_file_is_overruled_by_verify(tiny_model_dir, cli, tiny_installed):
    """Damage the signature cannot show (a disk flipping bits): verify finds it, and the cache stops vouching."""
    from lorakit.store import hashcache

    f = model_dir("tiny") / "vocab.txt"
    _tamper(f)
    cache = hashcache.load()
    good = json.loads(cli("show", "tiny", "--json")[1])["files"]["vocab.txt"]["sha256"]
    hashcache.remember(cache, f, good)  # the cache claims the damaged file is the good content
    hashcache.save(cache)
    rc, out, _ = cli("install", tiny_model_dir, "--name", "tiny", "--json")
    assert rc == 0 and json.loads(out).get("reused")  # the cache is trusted on a plain reinstall...
    assert cli("verify")[0] == 1  # ...but verify rehashes, and drops what it found damaged from the cache
    rc, out, err = cli("install", tiny_model_dir, "--name", "tiny", "--json")
    assert rc == 0 and json.loads(out)["repaired"] == ["vocab.txt"], err
    assert cli("verify")[0] == 0


def test_an_intact_identical_reinstall_reads_no_file(tiny_model_dir, cli, tiny_installed, monkeypatch):
    import lorakit.store.blobs
    import lorakit.store.commit
    import lorakit.store.integrity

    def refuse(path):
        raise AssertionError(f"read {path}")

    for module in (lorakit.store.blobs, lorakit.store.commit, lorakit.store.integrity):
        monkeypatch.setattr(module, "sha256_file", refuse)
    rc, out, err = cli("install", tiny_model_dir, "--name", "tiny", "--json")
    assert rc == 0 and json.loads(out)["reused"], err
