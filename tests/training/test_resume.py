"""Checkpoints and resume: a run killed at any point continues to the same result."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from lorakit.errors import RunError
from lorakit.training.loop import train

from helpers import tiny_overrides

EXTRA = {"train.epochs": 3, "train.checkpoint_every": 4, "lora.dropout": 0.1, "train.batch_size": 8}


def _adapter(run):
    return load_file(f"{run}/adapter/adapter_model.safetensors")


def _same_run(a, b):
    wa, wb = _adapter(a), _adapter(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=1e-6, rtol=0)
    ma, mb = (json.loads((r / "metrics.json").read_text()) for r in (a, b))
    strip = lambda m: [(h["epoch"], h["step"], round(h["train_loss"], 5), h["val_accuracy"]) for h in m["history"]]  # noqa: E731
    assert strip(ma) == strip(mb) and ma["best_epoch"] == mb["best_epoch"]


@pytest.fixture
def reference(tmp_path, tiny_csv, tiny_model_dir):
    train(overrides=tiny_overrides(tmp_path / "ref", tiny_csv, tiny_model_dir, **EXTRA), show_progress=False)
    return tmp_path / "ref" / "tiny"


def _start(tmp_path, tiny_csv, tiny_model_dir):
    args = [f"{k}={v}" for k, v in tiny_overrides(tmp_path / "runs", tiny_csv, tiny_model_dir, **EXTRA).items()]
    recipe = tmp_path / "r.yaml"
    recipe.write_text("{}\n")
    return subprocess.Popen([sys.executable, "-m", "lorakit", "train", str(recipe), *args, "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path, proc, timeout=120):
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.01)


@pytest.mark.slow
def test_sigkill_then_resume_matches_the_uninterrupted_run(tmp_path, tiny_csv, tiny_model_dir, reference):
    proc = _start(tmp_path, tiny_csv, tiny_model_dir)
    run = tmp_path / "runs" / "tiny"
    _wait_for(run / "checkpoint" / "state.pt", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = torch.load(run / "checkpoint" / "state.pt", weights_only=True)
    assert state["progress"]["step"] < 3 * 60  # killed before the end (60 steps per epoch)
    train(resume=run, show_progress=False)
    _same_run(run, reference)


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path, tiny_csv, tiny_model_dir, reference):
    proc = _start(tmp_path, tiny_csv, tiny_model_dir)
    run = tmp_path / "runs" / "tiny"
    _wait_for(run / "checkpoint" / "state.pt", proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 130, err
    assert "checkpoint saved" in err and f"lorakit train --resume {run}" in err and "Traceback" not in err
    train(resume=run, show_progress=False)
    _same_run(run, reference)


def test_crash_between_checkpoints_resumes_exactly(tmp_path, tiny_csv, tiny_model_dir, reference, monkeypatch):
    """An exception at an arbitrary step (after checkpoint 3, mid-epoch 2) loses only the steps since."""
    from lorakit.training import loop

    real = loop.bucket_batches
    calls = {"n": 0}

    def crash_in_epoch_2(lengths, batch_size, seed, epoch):
        if epoch == 2:
            calls["n"] += 1
            batches = real(lengths, batch_size, seed, epoch)
            return batches[:10] + [None]  # step 11 of epoch 2 blows up
        return real(lengths, batch_size, seed, epoch)

    monkeypatch.setattr(loop, "bucket_batches", crash_in_epoch_2)
    with pytest.raises(TypeError):
        train(overrides=tiny_overrides(tmp_path / "runs", tiny_csv, tiny_model_dir, **EXTRA), show_progress=False)
    monkeypatch.setattr(loop, "bucket_batches", real)
    run = tmp_path / "runs" / "tiny"
    assert torch.load(run / "checkpoint/state.pt", weights_only=True)["progress"]["epoch"] == 2
    train(resume=run, show_progress=False)
    _same_run(run, reference)


def test_resume_needs_a_checkpoint_and_the_same_data(tmp_path, tiny_csv, tiny_model_dir, tiny_run):
    with pytest.raises(RunError, match="no checkpoint to resume from"):
        train(resume=tmp_path / "nothing", show_progress=False)
    tiny_csv.write_text(tiny_csv.read_text().replace("good", "nice"))
    with pytest.raises(Exception, match="training data changed"):
        train(resume=tiny_run, show_progress=False)


def test_resume_of_a_finished_run_changes_nothing(tiny_run):
    before = _adapter(tiny_run)
    m = train(resume=tiny_run, show_progress=False)
    assert len(m["history"]) == 6
    after = _adapter(tiny_run)
    assert all(torch.equal(before[k], after[k]) for k in before)
