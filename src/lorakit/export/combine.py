"""Combine adapters of one base into a new adapter with PEFT's ``add_weighted_adapter``.

PEFT combines the LoRA factors (linear, cat, ties, dare_linear, svd) but refuses adapters that
each carry a classifier head (``modules_to_save``), so the heads are set aside while PEFT works
and combined here: the weighted sum sum(w_i * head_i), or for ties PEFT's sign election and
disjoint mean without pruning (a head is a whole layer, not a sparse update; dare's random drop is
not applied to it either). Every combined factor already folds in its adapter's scaling, so the
new adapter is saved with scaling 1 (lora_alpha = r, no rsLoRA).
"""

import json
import warnings
from pathlib import Path

from lorakit.errors import LorakitError
from lorakit import tasks
from lorakit.export.adapter import WEIGHTS, Adapter, AdapterError, read_lora
from lorakit.export.folder import staged_folder
from lorakit.export.merge import base_dir_of

METHODS = ("linear", "cat", "ties", "dare_linear", "svd")
SAME_RANK = ("linear", "ties", "dare_linear")
DENSITY = ("ties", "dare_linear")


def check_compatible(adapters: list[Adapter], weights: list[float], method: str, density: float | None) -> Path:
    """Refuse, with one line each, inputs PEFT would reject late or combine into nonsense. Returns the base."""
    if method not in METHODS:
        raise LorakitError(f"unknown combination method {method!r}", f"use one of: {', '.join(METHODS)}")
    if len(adapters) < 2:
        raise LorakitError("combine needs at least two adapters", "e.g. lorakit combine runs/a runs/b --out runs/ab")
    if len(weights) != len(adapters):
        raise LorakitError(f"{len(weights)} weights for {len(adapters)} adapters",
                           "give one weight per adapter, e.g. --weights 0.7,0.3")
    if method in DENSITY and not (density is not None and 0 < density <= 1):
        raise LorakitError(f"--density must be in (0, 1] for {method}, got {density}")
    first, base = adapters[0], base_dir_of(adapters[0]).resolve()
    for a in adapters:
        if a.dora:
            raise AdapterError(f"{a.path} is a DoRA adapter; PEFT combines LoRA factors only",
                               "merge DoRA adapters one at a time with lorakit merge")
        other = base_dir_of(a).resolve()
        if other != base:
            raise AdapterError(f"{first.path} and {a.path} were trained on different base models ({base} vs {other})",
                               "combine adapters of the same base model")
        if a.labels != first.labels:
            raise AdapterError(f"{first.path} and {a.path} have different labels ({first.labels} vs {a.labels})",
                               "combine adapters trained on the same label set")
        if set(a.whole) != set(first.whole):
            raise AdapterError(f"{first.path} and {a.path} save different extra modules "
                               f"({sorted(first.whole)} vs {sorted(a.whole)})")
        for key, file_key in a.whole.items():
            if a.weights.info(file_key)[1] != first.weights.info(first.whole[key])[1]:
                raise AdapterError(f"{first.path} and {a.path} have {key!r} of different shapes")
        if type(a.config["target_modules"]) is not type(first.config["target_modules"]):
            raise AdapterError(f"{first.path} and {a.path} name their target modules differently (list vs pattern)",
                               "retrain one of them with the same lora.target_modules")
    ranks = {a.path: {u.A.shape[0] for u in a.updates.values()} for a in adapters}
    if method in SAME_RANK and len(set().union(*ranks.values())) > 1:
        shown = ", ".join(f"{p}: r={sorted(r)}" for p, r in ranks.items())
        raise AdapterError(f"{method} needs adapters of one rank ({shown})", "use --method cat or svd")
    return base


def combine_heads(heads: list, weights: list[float], method: str):
    import torch
    from peft.utils.merge_utils import ties

    if method == "ties":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "density 1: no pruning" is what is meant here
            return ties(heads, torch.tensor(weights, dtype=heads[0].dtype), density=1.0).contiguous()
    return sum(w * h for h, w in zip(heads, weights)).contiguous()


def combine(sources: list[str | Path], out: str | Path, *, weights: list[float], method: str = "linear",
            density: float | None = None, svd_rank: int | None = None, seed: int = 0, force: bool = False) -> dict:
    """Write the weighted combination of ``sources`` as a run-like adapter folder ``out``."""
    import torch
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file, save_file

    if method in DENSITY and density is None:
        density = 0.5
    adapters = [read_lora(s, "combine") for s in sources]
    base_dir = check_compatible(adapters, weights, method, density)
    labels = adapters[0].labels
    names = [f"a{i}" for i in range(len(adapters))]

    task = tasks.get(adapters[0].meta["task"])
    model, _ = task.load_model(base_dir, adapters[0].meta)
    peft_model = None
    heads = {}
    for name, a in zip(names, adapters):
        config = LoraConfig.from_pretrained(a.path)
        # Heads are combined below, outside PEFT: no task type, so PEFT wraps no classifier.
        config.modules_to_save, config.task_type = None, None
        state = load_file(a.path / WEIGHTS)
        heads[name] = {f: state.pop(f) for f in a.whole.values()}
        if peft_model is None:
            peft_model = get_peft_model(model, config, adapter_name=name)
        else:
            peft_model.add_adapter(name, config)
        result = set_peft_model_state_dict(peft_model, state, adapter_name=name)
        missing = [k for k in result.missing_keys if f".{name}." in k and "lora_" in k]
        if missing:
            raise AdapterError(f"{a.path}: {len(missing)} LoRA weights did not load (e.g. {missing[0]})")
    torch.manual_seed(seed)  # dare drops weights at random
    try:
        peft_model.add_weighted_adapter(names, list(weights), "combined", combination_type=method, density=density,
                                        svd_rank=svd_rank)
    except ValueError as e:
        raise AdapterError(f"PEFT cannot combine these adapters: {str(e).splitlines()[0]}") from None

    state = get_peft_model_state_dict(peft_model, adapter_name="combined")
    for key in heads[names[0]]:
        state[key] = combine_heads([heads[n][key] for n in names], weights, method)
    config = peft_model.peft_config["combined"]
    config.use_rslora = False  # the factors carry their scaling; lora_alpha = r gives scaling 1
    config.modules_to_save = adapters[0].config.get("modules_to_save")
    config.task_type = adapters[0].config.get("task_type")
    config.base_model_name_or_path = str(base_dir)
    meta = {"labels": labels, "base": adapters[0].meta["base"], "base_path": str(base_dir),
            "max_length": max(a.meta.get("max_length", 0) for a in adapters), "method": "lora",
            "task": task.name,
            "combined": {"method": method, "weights": list(weights), "density": density,
                         "from": [str(a.path) for a in adapters]}}
    with staged_folder(Path(out), force) as tmp:
        config.save_pretrained(tmp)
        save_file({k: v.contiguous() for k, v in state.items()}, tmp / WEIGHTS, metadata={"format": "pt"})
        (tmp / "labels.json").write_text(json.dumps(labels, indent=2))
        (tmp / "lorakit.json").write_text(json.dumps(meta, indent=2))
    return {"out": str(out), "method": method, "weights": list(weights), "rank": config.r,
            "adapters": [str(a.path) for a in adapters], "modules": len(adapters[0].updates)}
