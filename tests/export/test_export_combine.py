"""Combine: PEFT's weighted combinations, heads included; incompatible inputs refused in one line."""

import json
import shutil

import pytest
import torch
from export_helpers import peft_logits

from lorakit.errors import LorakitError
from lorakit.export.combine import combine


def as_run(adapter_folder, tmp_path, name):
    """peft_logits reads RUN/adapter: put a combined adapter folder where it looks."""
    run = tmp_path / name
    shutil.copytree(adapter_folder, run / "adapter")
    return run


@pytest.mark.parametrize("method", ["linear", "cat", "dare_linear", "svd"])
def test_weights_one_zero_give_the_first_adapter(trained, tmp_path, method):
    a, b = trained("lora", seed=0), trained("lora", seed=1)
    combine([a, b], tmp_path / "c", weights=[1.0, 0.0], method=method, density=1.0)
    got = peft_logits(as_run(tmp_path / "c", tmp_path, "run"))
    first, second = peft_logits(a), peft_logits(b)
    assert (first - second).abs().max() > 1e-2  # the two adapters differ, so the check below can fail
    assert torch.allclose(got, first, atol=1e-5), (got - first).abs().max()


def test_ties_of_an_adapter_with_itself_is_that_adapter(trained, tmp_path):
    """TIES elects signs from the unweighted updates, so [1, 0] does not isolate the first adapter
    (by design); its fixed point is an adapter combined with itself."""
    a = trained("lora", seed=0)
    combine([a, a], tmp_path / "c", weights=[1.0, 1.0], method="ties", density=1.0)
    assert torch.allclose(peft_logits(as_run(tmp_path / "c", tmp_path, "run")), peft_logits(a), atol=1e-5)


def test_cat_is_the_weighted_sum_of_updates_and_heads(trained, tmp_path):
    """cat is exact: the combined update is w1*delta1 + w2*delta2 and the head w1*h1 + w2*h2."""
    from lorakit.export.adapter import read_lora

    a, b = trained("lora", seed=0), trained("rslora", seed=0)  # different scalings: both must be folded in
    combine([a, b], tmp_path / "c", weights=[0.7, 0.3], method="cat")
    ra, rb, rc = read_lora(a, "combine"), read_lora(b, "combine"), read_lora(tmp_path / "c", "combine")
    assert rc.config["r"] == 8 and not rc.config["use_rslora"]
    for module, u in ra.updates.items():
        expected = 0.7 * u.delta() + 0.3 * rb.updates[module].delta()
        assert torch.allclose(torch.from_numpy(rc.updates[module].delta()), torch.from_numpy(expected), atol=1e-6)
    for key, file_key in ra.whole.items():
        expected = 0.7 * ra.weights.array(file_key) + 0.3 * rb.weights.array(rb.whole[key])
        assert torch.allclose(torch.from_numpy(rc.weights.array(rc.whole[key]).copy()), torch.from_numpy(expected))
    meta = json.loads((tmp_path / "c" / "lorakit.json").read_text())
    assert meta["labels"] == ra.labels and meta["combined"]["weights"] == [0.7, 0.3]


def _with_meta(run, tmp_path, name, **changes):
    copy = tmp_path / name
    shutil.copytree(run / "adapter", copy)
    meta = json.loads((copy / "lorakit.json").read_text())
    meta.update(changes)
    (copy / "lorakit.json").write_text(json.dumps(meta))
    return copy


def test_incompatible_adapters_are_refused_in_one_line(trained, tmp_path, tiny_model_dir):
    from helpers import make_tiny_model

    a = trained("lora")
    other_base = make_tiny_model(tmp_path / "other-base", seed=1)
    cases = [
        ([a, _with_meta(a, tmp_path, "labels", labels=["x", "y", "z"])], "linear", "different labels"),
        ([a, _with_meta(a, tmp_path, "base", base=str(other_base), base_path=str(other_base))], "linear",
         "different base models"),
        ([a, trained("dora")], "cat", "DoRA"),
        ([a, trained("lora", r=2)], "linear", "one rank"),
        ([a], "linear", "at least two"),
        ([a, a], "mean", "unknown combination method"),
    ]
    for sources, method, expected in cases:
        with pytest.raises(LorakitError, match=expected) as e:
            combine(sources, tmp_path / "c", weights=[0.5] * len(sources), method=method)
        assert "\n" not in e.value.message
    with pytest.raises(LorakitError, match="3 weights for 2 adapters"):
        combine([a, a], tmp_path / "c", weights=[0.3, 0.3, 0.4])
    assert not (tmp_path / "c").exists()
    # cat and svd accept different ranks
    combine([a, trained("lora", r=2)], tmp_path / "c", weights=[0.5, 0.5], method="svd")
    assert json.loads((tmp_path / "c" / "adapter_config.json").read_text())["r"] == 4
