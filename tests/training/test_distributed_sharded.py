"""Sharded training (FSDP, DeepSpeed ZeRO): recipe -> accelerate plugin, and whole runs on CPU processes.

accelerate turns FSDP and DeepSpeed on only for accelerator devices; on CPU processes it would
quietly fall back to DDP. Run as a script (under torchrun, by the tests below), this file first lets
accelerate shard on CPU processes exactly as it does on GPUs, then runs ``lorakit train``: the real
loop, accelerate's own FSDP / DeepSpeed wrapping and torch's collectives over gloo. So the tests
check what matters on GPUs too: the same adapter as one process, and whole (gathered) ``lora_B``
tensors in the saved adapter and checkpoints, never empty or partial ones. The DeepSpeed runs need
``pip install deepspeed`` (skipped without it).
"""

import json
import subprocess
import sys
from pathlib import Path
import time
from types import SimpleNamespace

import psutil
import pytest
import torch
from accelerate.utils import DistributedType
from safetensors.torch import load_file

from lorakit.config import load_config
from lorakit.errors import ConfigError
from lorakit.training import strategy
from lorakit.training.distributed import passes

sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/: also when torchrun runs this file as a script
from helpers import tiny_overrides  # noqa: E402

# fp32: these compare the arithmetic of different splits of a batch, which bf16 would round differently.
EXTRA = {"train.epochs": 2, "train.batch_size": 16, "lora.dropout": 0.0, "train.checkpoint_every": 5,
         "train.precision": "fp32"}


# --- recipe -> accelerate plugin ----------------------------------------------------------------

def _cfg(**overrides):
    return load_config(None, {f"train.distributed.{k}": v for k, v in overrides.items()})


def test_ddp_and_single_process_need_no_plugin():
    assert strategy.plugins(_cfg(), world=4) == {}
    assert strategy.plugins(_cfg(strategy="fsdp"), world=1) == {}  # nothing to shard


def test_fsdp_options_map_to_accelerates_plugin():
    from torch.distributed.fsdp import CPUOffloadPolicy, ShardingStrategy
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

    p = strategy.plugins(_cfg(strategy="fsdp"), world=2)["fsdp_plugin"]
    assert p.fsdp_version == 2 and p.reshard_after_forward is True
    assert p.auto_wrap_policy is transformer_auto_wrap_policy and not isinstance(p.cpu_offload, CPUOffloadPolicy)
    p = strategy.plugins(_cfg(strategy="fsdp", reshard_after_forward=False, auto_wrap="none", cpu_offload=True),
                         world=2)["fsdp_plugin"]
    assert p.reshard_after_forward is False and p.auto_wrap_policy is None
    assert isinstance(p.cpu_offload, CPUOffloadPolicy)
    p = strategy.plugins(_cfg(strategy="fsdp", fsdp_version=1, reshard_after_forward=False), world=2)["fsdp_plugin"]
    assert p.fsdp_version == 1 and p.use_orig_params  # frozen base and trainable adapter share flat units
    assert ShardingStrategy.SHARD_GRAD_OP in (p.sharding_strategy, p.reshard_after_forward)


def test_deepspeed_options_map_to_accelerates_plugin():
    pytest.importorskip("deepspeed")
    cfg = load_config(None, {"train.distributed.strategy": "deepspeed", "train.distributed.zero_stage": 3,
                             "train.distributed.cpu_offload": True, "train.batch_size": 32, "train.max_grad_norm": 0.5})
    ds = strategy.plugins(cfg, world=4)["deepspeed_plugin"].deepspeed_config
    zero = ds["zero_optimization"]
    assert zero["stage"] == 3 and zero["offload_optimizer"]["device"] == zero["offload_param"]["device"] == "cpu"
    assert ds["train_micro_batch_size_per_gpu"] == 8 and ds["train_batch_size"] == 32
    assert ds["gradient_accumulation_steps"] == 1 and ds["gradient_clipping"] == 0.5


def test_deepspeed_missing_is_one_line_with_the_next_step(monkeypatch):
    monkeypatch.setattr(strategy, "find_spec", lambda name: None)
    with pytest.raises(ConfigError) as e:
        strategy.plugins(_cfg(strategy="deepspeed"), world=2)
    assert str(e.value) == ("train.distributed.strategy=deepspeed: DeepSpeed is not installed "
                            "(pip install deepspeed, or use train.distributed.strategy=fsdp)")


@pytest.mark.parametrize("overrides, message", [
    ({"lora.method": "adalora", "train.distributed.strategy": "fsdp"}, "lora.method=adalora cannot train with"),
    ({"train.distributed.strategy": "deepspeed", "train.micro_batch_size": 4},
     "train.micro_batch_size does not apply with train.distributed.strategy=deepspeed"),
])
def test_combinations_that_cannot_work_are_refused(overrides, message, monkeypatch):
    monkeypatch.setattr(strategy, "find_spec", lambda name: object())
    with pytest.raises(ConfigError, match=message):
        strategy.plugins(load_config(None, overrides), world=2)


def test_sharding_on_cpu_processes_is_refused_not_silently_ddp():
    cpu_run = SimpleNamespace(distributed_type=DistributedType.MULTI_CPU, num_processes=2)
    with pytest.raises(ConfigError) as e:
        strategy.check_active(cpu_run, "fsdp")
    assert "runs on GPUs only" in e.value.message and e.value.hint == "use train.distributed.strategy=ddp on CPUs"
    strategy.check_active(cpu_run, "ddp")
    fsdp_run = SimpleNamespace(distributed_type=DistributedType.FSDP, num_processes=2)
    strategy.check_active(fsdp_run, "fsdp")
    with pytest.raises(ConfigError, match="strategy=ddp, but accelerate set up FSDP"):  # accelerate launch --use_fsdp
        strategy.check_active(fsdp_run, "ddp")


@pytest.mark.parametrize("world", [2, 3])
def test_sharded_passes_are_as_many_on_every_process(world):
    lengths = [30 if i % 2 else 3 for i in range(40)]  # long and short texts: uneven shares of tokens
    batch = list(range(37))
    for same in (False, True):
        per_rank = [passes(batch, r, world, 4, lengths, 48, same_count=same) for r in range(world)]
        # Each pass's loss is its mean; averaged over processes, every example weighs 1 / len(batch).
        share = {i: 0.0 for i in batch}
        for idx, w in (pw for ps in per_rank for pw in ps):
            for i in idx:
                share[i] += w / (world * len(idx))
        assert share == pytest.approx({i: 1 / len(batch) for i in batch})
        if same:
            assert len({len(ps) for ps in per_rank}) == 1
    assert len({len(passes(batch, r, world, 4, lengths, 48)) for r in range(world)}) > 1  # without: uneven here
    # A final batch smaller than the process count: the idle process still joins, with weight 0.
    assert passes([5], 1, 2, 4, lengths, None) == [([5], 0.0)]


# --- whole runs on CPU processes ----------------------------------------------------------------

def _shard_on_cpu() -> None:
    """Make accelerate set up FSDP / DeepSpeed on CPU processes the way it does on GPUs."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import InitProcessGroupKwargs

    state_init = AcceleratorState.__init__

    def fsdp_too(self, *args, fsdp_plugin=None, **kwargs):
        state_init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type = PartialState._shared_state["distributed_type"] = DistributedType.FSDP
            self.fsdp_plugin = fsdp_plugin

    accelerator_init = Accelerator.__init__

    def deepspeed_too(self, *args, deepspeed_plugin=None, kwargs_handlers=(), **kwargs):
        if deepspeed_plugin is not None:  # DeepSpeed's CPU accelerator, over gloo
            kwargs["cpu"] = False
            # ZeRO-3 keeps small weights whole on every process; partition them all, as big ones are.
            deepspeed_plugin.deepspeed_config["zero_optimization"]["stage3_param_persistence_threshold"] = 0
            for h in kwargs_handlers:
                if isinstance(h, InitProcessGroupKwargs):
                    h.backend = "gloo"
        accelerator_init(self, *args, deepspeed_plugin=deepspeed_plugin, kwargs_handlers=kwargs_handlers, **kwargs)

    AcceleratorState.__init__ = fsdp_too
    Accelerator.__init__ = deepspeed_too


def _cli(tmp_path, csv, model, name, *extra, **overrides):
    args = [f"{k}={v}" for k, v in tiny_overrides(tmp_path / "runs", csv, model, name=name,
                                                   **{**EXTRA, **overrides}).items()]
    recipe = tmp_path / "r.yaml"
    recipe.write_text("{}\n")
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", __file__, "train", str(recipe),
            *args, "--quiet", *extra]


def _adapter(run):
    return load_file(run / "adapter" / "adapter_model.safetensors")


def _checkpoint(run):
    return torch.load(run / "checkpoint" / "state.pt", weights_only=True)


def _close(a, b, atol=2e-4):
    """Same best adapter, and the same weights at the end (the last checkpoint)."""
    for wa, wb in ((_adapter(a), _adapter(b)), (_checkpoint(a)["model"], _checkpoint(b)["model"])):
        assert wa.keys() == wb.keys()
        for k in wa:
            torch.testing.assert_close(wa[k], wb[k], atol=atol, rtol=1e-3)


def _whole_lora_b(run, reference):
    """The sharded run saved whole tensors (a process holds half of each): the shapes of the one-process run."""
    weights, ref = _adapter(run), _adapter(reference)
    lora_b = [k for k in weights if "lora_B" in k]
    assert lora_b and all(weights[k].shape == ref[k].shape and weights[k].abs().sum() > 0 for k in lora_b)
    state = _checkpoint(run)
    shapes = {k: v.shape for k, v in _checkpoint(reference)["model"].items()}
    assert {k: v.shape for k, v in state["model"].items()} == shapes
    optim = state["optimizer"]["state"]
    assert all(optim[k][m].shape == shapes[k] for k in shapes for m in ("exp_avg", "exp_avg_sq"))


@pytest.fixture
def one_process(tmp_path, tiny_csv, tiny_model_no_dropout):
    from lorakit.training.loop import train

    train(overrides=tiny_overrides(tmp_path / "runs", tiny_csv, tiny_model_no_dropout, name="one", **EXTRA),
          show_progress=False)
    return tmp_path / "runs" / "one"


def _run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


STRATEGIES = {
    "fsdp": {"train.distributed.strategy": "fsdp"},
    "zero2": {"train.distributed.strategy": "deepspeed", "train.distributed.zero_stage": 2},
    "zero3": {"train.distributed.strategy": "deepspeed", "train.distributed.zero_stage": 3},
}


def _kill_after_first_checkpoint(cmd, run):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (run / "checkpoint" / "state.pt").exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.02)
    for p in [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]:  # a machine crash
        p.kill()
    proc.wait()
    assert _checkpoint(run)["progress"]["epoch"] == 1  # killed in the first of two epochs


def _resume(cmd, run):
    return cmd[:cmd.index("train") + 1] + ["--resume", str(run), "--quiet"]


@pytest.mark.slow
@pytest.mark.parametrize("name", STRATEGIES)
def test_two_sharded_processes_match_one_with_whole_lora_b(name, tmp_path, tiny_csv, tiny_model_no_dropout,
                                                           one_process):
    if name.startswith("zero"):
        pytest.importorskip("deepspeed")
    _run(_cli(tmp_path, tiny_csv, tiny_model_no_dropout, name, **STRATEGIES[name]))
    run = tmp_path / "runs" / name
    _close(one_process, run)
    _whole_lora_b(run, one_process)
    assert json.loads((run / "metrics.json").read_text())["processes"] == 2


@pytest.mark.slow
def test_fsdp_run_killed_then_resumed_matches_one_process(tmp_path, tiny_csv, tiny_model_no_dropout, one_process):
    cmd = _cli(tmp_path, tiny_csv, tiny_model_no_dropout, "fsdp", **STRATEGIES["fsdp"])
    run = tmp_path / "runs" / "fsdp"
    _kill_after_first_checkpoint(cmd, run)
    _run(_resume(cmd, run))  # sharded optimizer state: gathered whole into the checkpoint, sharded again here
    _close(one_process, run)


@pytest.mark.slow
def test_zero3_checkpoint_resumes_under_ddp_not_deepspeed(tmp_path, tiny_csv, tiny_model_no_dropout, one_process):
    pytest.importorskip("deepspeed")
    cmd = _cli(tmp_path, tiny_csv, tiny_model_no_dropout, "zero3", **STRATEGIES["zero3"])
    run = tmp_path / "runs" / "zero3"
    _kill_after_first_checkpoint(cmd, run)
    r = subprocess.run(_resume(cmd, run), capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "error: a run cannot resume under DeepSpeed" in r.stderr
    config = run / "config.yaml"  # what the refusal says to do
    config.write_text(config.read_text().replace("strategy: deepspeed", "strategy: ddp"))
    _run(_resume(cmd, run))
    _close(one_process, run)


if __name__ == "__main__":  # under torchrun, started by the tests above
    from lorakit.cli import main

    _shard_on_cpu()
    sys.exit(main(sys.argv[1:]))
