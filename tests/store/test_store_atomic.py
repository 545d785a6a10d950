"""An install killed with SIGKILL at any moment leaves the store as before or as after; concurrent
installs of the same thing all succeed, the first installs and the others reuse it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from store_helpers import raw_safetensors

import lorakit
from lorakit.store import gc, home, list_entries, verify

SRC = str(Path(lorakit.__file__).resolve().parents[1])
N_FLOATS = 6 << 20  # 24 MiB: long enough to be killed in the middle of copying


def _source(path: Path, version: int) -> Path:
    path.mkdir(exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8, "version": version}))
    data = bytearray(os.urandom(1024)) * (N_FLOATS * 4 // 1024)
    raw_safetensors(path / "model.safetensors", {"w": {"dtype": "F32", "shape": [N_FLOATS],
                                                      "data_offsets": [0, N_FLOATS * 4]}}, bytes(data))
    return path


def _lorakit(*args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.Popen([sys.executable, "-m", "lorakit", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _installed_version():
    e = [m for m in list_entries() if m["name"] == "big"]
    if not e:
        return None
    return json.loads((home() / "models" / "big" / "config.json").read_text())["version"]


def test_sigkill_at_many_points_never_leaves_a_broken_entry(tmp_path):
    src = tmp_path / "src"
    _source(src, 0)
    assert _lorakit("install", src, "--name", "big").wait() == 0
    _source(src, 1)
    t0 = time.monotonic()
    assert _lorakit("install", src, "--name", "big", "--force").wait() == 0
    full = time.monotonic() - t0  # one complete replacing install, start-up included
    outcomes = []
    i = 1
    while len(outcomes) < 14 or not any(outcomes):  # go on until some kill lands after the swap
        i += 1
        assert i < 60, outcomes
        delay = full * (i - 1) / 12  # from early start-up to past the end (the machine may be slower now)
        _source(src, i)  # new content each time: the replace has real work to do
        p = _lorakit("install", src, "--name", "big", "--force")
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        report = verify()
        assert report["problems"] == [], (delay, report)
        v = _installed_version()
        assert v in (i - 1, i), (delay, v)  # the old entry or the new one, never none or half
        outcomes.append(v == i)
        if v != i:  # killed before the swap: finish version i so the next round replaces it
            assert _lorakit("install", src, "--name", "big", "--force").wait() == 0
        assert _installed_version() == i
    assert not all(outcomes) and any(outcomes), outcomes  # kills landed both before and after the swap
    gc()
    assert not list((home() / "tmp").iterdir())
    assert len(list((home() / "entries" / "models").iterdir())) == 1
    assert verify()["problems"] == []


def test_concurrent_installs_of_the_same_thing(tmp_path):
    src = _source(tmp_path / "src", 7)
    procs = [_lorakit("install", src, "--name", "big") for _ in range(3)]
    results = [(p.wait(), p.stdout.read(), p.stderr.read()) for p in procs]
    assert all(rc == 0 for rc, _, _ in results), results
    outs = sorted(" ".join(out.split()) for _, out, _ in results)
    assert sum(o.startswith("installed model big") for o in outs) == 1, outs
    assert sum(o.startswith("already installed (identical content)") for o in outs) == 2, outs
    assert len(list((home() / "entries" / "models").iterdir())) == 1
    assert len(list((home() / "blobs" / "sha256").iterdir())) == 2
    assert verify()["problems"] == []
