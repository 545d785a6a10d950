"""Merge a LoRA adapter into its base: a standalone HF folder that plain transformers loads.

For each adapted module W' = W + s * B @ A (s = alpha/r, or alpha/sqrt(r) for rsLoRA); for DoRA,
W' = m / ||W + s*B@A||_row * (W + s*B@A). The classifier head and any trained biases are copied
from the adapter. The merge streams: one base tensor in memory at a time, written straight to
the output, so peak memory stays near one tensor plus the interpreter, not two copies of the base.
The base is only ever opened for reading, and checked afterwards.
"""

import json
from pathlib import Path

import numpy as np

from lorakit import tasks
from lorakit.errors import LorakitError, NotInstalledError
from lorakit.export.adapter import Adapter, AdapterError, ModuleUpdate, read_lora
from lorakit.export.folder import copy_side_files, fingerprint, open_weights, staged_folder, verify_unchanged
from lorakit.model.merged import MERGE_RECORD
from lorakit.export.tensors import FLOATS, StreamWriter, to_dtype
from lorakit.store import home, model_dir


def base_dir_of(adapter: Adapter) -> Path:
    """The adapter's base: the installed model it names, else the folder it was trained from."""
    try:
        return model_dir(adapter.meta["base"])
    except NotInstalledError:
        path = Path(adapter.meta.get("base_path", ""))
        if (path / "config.json").is_file():
            return path
        raise


def key_prefix(adapter: Adapter, base_keys: set[str]) -> str:
    """What to put before base keys to get the classifier model's names ('' or e.g. 'bert.').

    Adapter names are the classifier's (bert.encoder...); a bare base checkpoint lacks the 'bert.'.
    """
    module = next(iter(adapter.updates))
    if f"{module}.weight" in base_keys:
        return ""
    head, _, rest = module.partition(".")
    if rest and f"{rest}.weight" in base_keys:
        return head + "."
    raise AdapterError(f"adapter module {module!r} is not in the base model's weights",
                       "this adapter was trained on another base; pass the right one with --base")


def merged_weight(w: np.ndarray, u: ModuleUpdate) -> np.ndarray:
    """W' for one module, computed in float32 (float64 for float64 bases)."""
    work = np.float64 if w.dtype == np.float64 else np.float32
    delta = u.delta().astype(work)
    if delta.shape != w.shape:
        raise AdapterError(f"adapter module {u.module!r} has an update of shape {list(delta.shape)}, "
                           f"the base weight is {list(w.shape)}", "this adapter was trained on another base")
    merged = w.astype(work) + delta
    if u.magnitude is not None:  # DoRA: rescale each output row to the learned magnitude
        rows = merged.T if u.fan_in_fan_out else merged
        factor = u.magnitude.astype(work) / np.linalg.norm(rows, axis=1)
        rows = rows * factor[:, None]
        merged = rows.T if u.fan_in_fan_out else rows
    return merged


def merge(source: str | Path, out: str | Path, *, base: str | Path | None = None, force: bool = False,
          install: str | None = None) -> dict:
    """Write base+adapter as plain weights into ``out``; optionally install it as model ``install``."""
    adapter = read_lora(source, "merge")
    task = tasks.get(adapter.meta["task"])
    base_dir = model_dir(str(base)) if base is not None else base_dir_of(adapter)
    target = Path(out).expanduser().resolve()
    if target == base_dir.resolve() or base_dir.resolve().is_relative_to(target) or target.is_relative_to(home()):
        raise LorakitError(f"--out {out} would write over the base model or into the store",
                           "choose a folder outside the store; use --install NAME to add the result to the store")
    adapter_sha = adapter.sha256()
    record_path = base_dir / MERGE_RECORD
    if record_path.is_file() and json.loads(record_path.read_text())["adapter"]["sha256"] == adapter_sha:
        raise AdapterError(f"{base_dir} already has this adapter merged into it; merging again would apply it twice",
                           "merge into the original base (see lorakit-merge.json), or unmerge first")
    before = fingerprint(base_dir)
    base_weights = open_weights(base_dir)
    prefix = key_prefix(adapter, set(base_weights))
    config = json.loads((base_dir / "config.json").read_text())
    out_config = task.merged_config(config, adapter.meta)

    # The output tensor table: every base tensor (renamed into the classifier's names), the
    # adapter's whole tensors replacing or extending them.
    plan, updated = {}, {}
    for key, tf in base_weights.items():
        plan[prefix + key] = tf.info(key)
    replaced = sorted(k for k in adapter.whole if k in plan)
    added = sorted(k for k in adapter.whole if k not in plan)
    for model_key, file_key in adapter.whole.items():
        plan[model_key] = adapter.weights.info(file_key)
    for module, u in adapter.updates.items():
        for key in (f"{module}.weight",) + ((f"{module}.bias",) if u.bias is not None else ()):
            if key not in plan:
                raise AdapterError(f"adapter module {module!r} is not in the base model's weights",
                                   "this adapter was trained on another base; pass the right one with --base")
            if plan[key][0] not in FLOATS:
                raise AdapterError(f"base tensor {key!r} is {plan[key][0]}; only float weights can be merged")
            updated[key] = u

    with staged_folder(Path(out), force) as tmp:
        writer = StreamWriter(tmp / "model.safetensors", plan)
        try:
            for key in writer.order:
                if key in adapter.whole:
                    writer.write(key, adapter.weights.array(adapter.whole[key]))
                    continue
                base_key = key[len(prefix):]
                tf = base_weights[base_key]
                if key not in updated:
                    writer.copy(key, tf, base_key)
                    continue
                dtype = plan[key][0]
                u = updated[key]
                w = tf.array(base_key)
                if key.endswith(".weight"):
                    new = merged_weight(w, u)
                else:  # lora_bias: B's bias joins the base bias, scaled like the weights
                    new = w.astype(np.float32) + u.bias.astype(np.float32) * np.float32(u.scale)
                writer.write(key, to_dtype(new, dtype))
            writer.close()
        except BaseException:
            writer.abort()
            raise
        (tmp / "config.json").write_text(json.dumps(out_config, indent=2))
        copy_side_files(base_dir, tmp)
        if "labels" in adapter.meta:  # a classifier's label names, in the head's order
            (tmp / "labels.json").write_text(json.dumps(adapter.labels, indent=2))
        record = {
            "adapter": {"path": str(adapter.path.resolve()), "sha256": adapter_sha, "task": task.name,
                        "method": adapter.meta.get("method"), "max_length": adapter.meta.get("max_length"),
                        **({"chat": adapter.meta["chat"]} if "chat" in adapter.meta else {})},
            "base": {"path": str(base_dir), "name": adapter.meta.get("base")},
            "base_config": config,
            "prefix_added": prefix,
            "added": added,
            "replaced": replaced,
            "updated": sorted(updated),
            "dora": adapter.dora,
        }
        (tmp / MERGE_RECORD).write_text(json.dumps(record, indent=2))
    checked = verify_unchanged(base_dir, before)
    result = {"out": str(Path(out)), "base": str(base_dir), "adapter": str(adapter.path),
              "modules": len(adapter.updates), "tensors": len(plan), "head": added, "dora": adapter.dora,
              "base_check": checked}
    if install:
        from lorakit.store import install_model

        result["installed"] = install_model(str(Path(out).resolve()), name=install, force=force)["name"]
    return result
