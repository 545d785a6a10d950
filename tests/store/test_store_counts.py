"""Counts in what verify, gc and install print agree with their nouns: 1 entry, 2 entries."""

import os
import stat

from lorakit.store import home, model_dir


def _words(text: str) -> str:
    return " ".join(text.split())


def test_verify_counts_in_words(tiny_model_dir, cli, tiny_installed):
    rc, out, _ = cli("verify")
    assert rc == 0 and _words(out).startswith("ok: 1 entry verified (tiny)")
    assert cli("install", tiny_model_dir, "--name", "tiny2")[0] == 0
    rc, out, _ = cli("verify")
    assert rc == 0 and _words(out).startswith("ok: 2 entries verified")
    f = model_dir("tiny") / "vocab.txt"
    os.chmod(f, stat.S_IWUSR | stat.S_IRUSR)
    f.write_text("tampered")
    rc, _, err = cli("verify", "tiny")
    assert rc == 1 and "1 problem in 1 entry — next:" in _words(err) and "(s)" not in err
    rc, _, err = cli("verify")  # tiny2 shares the tampered blob
    assert rc == 1 and "2 problems in 2 entries — next:" in _words(err)


def test_gc_counts_in_words(cli, tiny_installed):
    (home() / "tmp" / "install-models-x-1-abcd").mkdir(parents=True)
    (home() / "blobs" / "sha256" / ("0" * 64)).write_bytes(b"orphan")
    rc, out, _ = cli("gc")
    assert rc == 0 and _words(out).startswith("removed 1 unreferenced blob, 0 old versions and 1 leftover:")
    rc, out, _ = cli("gc")
    assert rc == 0 and _words(out).startswith("removed 0 unreferenced blobs, 0 old versions and 0 leftovers:")
