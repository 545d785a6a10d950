"""Data-parallel training through torchrun on CPU (gloo): same result as one process, clean failures."""

import json
import subprocess
import sys
import time

import psutil
import pytest
import torch
from safetensors.torch import load_file

from lorakit.data.batching import bucket_batches, chunks
from lorakit.training.distributed import shard
from lorakit.training.loop import train

from helpers import tiny_overrides

# fp32: these compare the arithmetic of different splits of a batch, which bf16 would round differently.
EXTRA = {"train.epochs": 2, "train.batch_size": 16, "lora.dropout": 0.0, "train.checkpoint_every": 5,
         "train.precision": "fp32"}


@pytest.mark.parametrize("world", [1, 2, 3])
def test_every_example_once_per_epoch_across_processes(world):
    lengths = [(i * 37) % 101 + 1 for i in range(1001)]
    seen = []
    for batch in bucket_batches(lengths, 32, seed=0, epoch=1):
        shares = [shard(batch, r, world) for r in range(world)]
        assert sorted(i for s in shares for i in s) == sorted(batch)
        assert max(map(len, shares)) - min(map(len, shares)) <= 1  # balanced
        for s in shares:
            assert [i for m in chunks(s, 5) for i in m] == s
        seen += batch
    assert sorted(seen) == list(range(1001))


def _cli(tmp_path, csv, model, name, *extra, **overrides):
    args = [f"{k}={v}" for k, v in tiny_overrides(tmp_path / "runs", csv, model, name=name,
                                                   **{**EXTRA, **overrides}).items()]
    recipe = tmp_path / "r.yaml"
    recipe.write_text("{}\n")
    return [sys.executable, "-m", "lorakit", "train", str(recipe), *args, "--quiet", *extra]


@pytest.fixture
def one_process(tmp_path, tiny_csv, tiny_model_no_dropout):
    train(overrides=tiny_overrides(tmp_path / "runs", tiny_csv, tiny_model_no_dropout, name="one", **EXTRA),
          show_progress=False)
    return tmp_path / "runs" / "one"


def _close(a, b, atol=2e-4, rtol=1e-3):
    wa, wb = (load_file(r / "adapter/adapter_model.safetensors") for r in (a, b))
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=atol, rtol=rtol)


@pytest.mark.slow
def test_two_processes_match_one(tmp_path, tiny_csv, tiny_model_no_dropout, one_process):
    r = subprocess.run(_cli(tmp_path, tiny_csv, tiny_model_no_dropout, "two", "--nproc", "2"),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    two = tmp_path / "runs" / "two"
    assert r.stdout.count("best epoch") == 1  # only process 0 reports and writes
    _close(one_process, two)
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one_process, two))
    assert m2["processes"] == 2 and m1["processes"] == 1
    assert m1["tokens"] == m2["tokens"]  # the same examples, each once per epoch
    assert [h["step"] for h in m1["history"]] == [h["step"] for h in m2["history"]]


@pytest.mark.slow
def test_accelerate_launch_runs_two_processes_that_match_one(tmp_path, tiny_csv, tiny_model_no_dropout, one_process):
    """`accelerate launch` with no config file (HF_HOME is a fresh folder): its torchrun launcher
    (--multi_gpu, the one that starts N processes; on CPUs they use gloo) runs the same training."""
    cmd = _cli(tmp_path, tiny_csv, tiny_model_no_dropout, "acc")
    cmd[1:3] = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "lorakit"]
    assert not (tmp_path / "hf" / "accelerate").exists()  # no user config to read
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("best epoch") == 1
    run = tmp_path / "runs" / "acc"
    assert json.loads((run / "metrics.json").read_text())["processes"] == 2
    _close(one_process, run)


def _wait_for_checkpoint(proc, run, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not (run / "checkpoint" / "state.pt").exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.02)


@pytest.mark.slow
def test_a_dead_process_stops_the_run_and_resume_finishes_it(tmp_path, tiny_csv, tiny_model_no_dropout, one_process):
    proc = subprocess.Popen(_cli(tmp_path, tiny_csv, tiny_model_no_dropout, "two", "--nproc", "2"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = tmp_path / "runs" / "two"
    _wait_for_checkpoint(proc, run)
    workers = [p for p in psutil.Process(proc.pid).children(recursive=True)
               if p.environ().get("LOCAL_RANK") == "1"]
    assert workers, "no worker with LOCAL_RANK=1"
    workers[0].kill()
    killed = time.time()
    out, err = proc.communicate(timeout=120)
    assert time.time() - killed < 60  # the other process does not hang in a collective
    assert proc.returncode == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: training stopped: a process of the 2-process run failed")
    assert f"lorakit train --resume {run}" in last
    # Resume with a different process count (1) completes the run to the same adapter.
    train(resume=run, show_progress=False)
    _close(one_process, run)


@pytest.mark.slow
def test_resume_replays_each_processs_own_dropout_masks(tmp_path, tiny_csv, tiny_model_dir):
    """Each process draws its own dropout masks; a checkpoint keeps every process's RNG state, so a run
    killed and resumed with the same process count ends exactly where the uninterrupted run does."""
    dropout = {"lora.dropout": 0.1}
    r = subprocess.run(_cli(tmp_path, tiny_csv, tiny_model_dir, "whole", "--nproc", "2", **dropout),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    proc = subprocess.Popen(_cli(tmp_path, tiny_csv, tiny_model_dir, "killed", "--nproc", "2", **dropout),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = tmp_path / "runs" / "killed"
    _wait_for_checkpoint(proc, run)
    for p in psutil.Process(proc.pid).children(recursive=True):
        p.kill()
    proc.communicate(timeout=120)
    state = torch.load(run / "checkpoint" / "state.pt", weights_only=True)
    assert state["progress"]["epoch"] == 1 and len(state["rng"]) == 2
    assert not torch.equal(state["rng"][0]["cpu"], state["rng"][1]["cpu"])
    r = subprocess.run([sys.executable, "-m", "lorakit", "train", "--resume", str(run), "--nproc", "2", "--quiet"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    whole = tmp_path / "runs" / "whole"
    _close(whole, run, atol=1e-6, rtol=0)  # the best adapter
    final = [torch.load(r / "checkpoint" / "state.pt", weights_only=True)["model"] for r in (whole, run)]
    for k in final[0]:
        torch.testing.assert_close(final[0][k], final[1][k], atol=1e-6, rtol=0)


ADALORA = {"lora.method": "adalora", "lora.r": 2, "lora.adalora_init_r": 6, "lora.adalora_tinit": 0.1,
           "lora.adalora_tfinal": 0.2, "lora.adalora_delta_t": 2}


@pytest.mark.slow
def test_adalora_two_processes_match_one(tmp_path, tiny_csv, tiny_model_no_dropout):
    """AdaLoRA reallocates ranks from the gradients: after DDP's all-reduce they are the same on every
    process, so two processes prune the same ranks as one does."""
    train(overrides=tiny_overrides(tmp_path / "runs", tiny_csv, tiny_model_no_dropout, name="one",
                                   **{**EXTRA, **ADALORA}), show_progress=False)
    r = subprocess.run(_cli(tmp_path, tiny_csv, tiny_model_no_dropout, "two", "--nproc", "2", **ADALORA),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    one, two = tmp_path / "runs" / "one", tmp_path / "runs" / "two"
    patterns = [json.loads((d / "adapter" / "adapter_config.json").read_text())["rank_pattern"] for d in (one, two)]
    ranks = [sum(mask) for mask in patterns[1].values()]
    assert sum(ranks) < 6 * len(ranks) and len(set(ranks)) > 1  # pruned from 6, unevenly: ranks moved
    assert patterns[0] == patterns[1]
    _close(one, two)
