"""Undo a merge where that is exact: W = W' - s * B @ A, back to the base's names and config.

Exact means float32/float64 weights and a plain LoRA update: DoRA's row rescaling cannot be
inverted without the base's norms, a tensor the adapter replaced is gone, and a 16-bit weight
rounded the sum. Those cases are refused instead of returning an approximate base.
"""

import json
from pathlib import Path

import numpy as np

from lorakit.errors import LorakitError
from lorakit.export.adapter import AdapterError, read_lora
from lorakit.export.folder import UNMERGE_RECORD, copy_side_files, open_weights, staged_folder
from lorakit.model.merged import MERGE_RECORD
from lorakit.export.tensors import StreamWriter


def unmerge(merged: str | Path, out: str | Path, *, adapter: str | Path | None = None, force: bool = False) -> dict:
    """Write the base model back out of a merged folder (the adapter must be the one merged in)."""
    merged = Path(merged).expanduser()
    record_path = merged / MERGE_RECORD
    if not record_path.is_file():
        raise LorakitError(f"{merged}: no {MERGE_RECORD}; not a folder written by lorakit merge",
                           "give the --out folder of a lorakit merge")
    record = json.loads(record_path.read_text())
    if record["dora"]:
        raise AdapterError("a DoRA merge cannot be undone exactly (the base's row norms are not kept)",
                           "merge again from the original base instead")
    if record["replaced"]:
        raise AdapterError(f"the adapter replaced {len(record['replaced'])} base tensors "
                           f"(e.g. {record['replaced'][0]!r}); the originals are not in the merged folder",
                           "merge again from the original base instead")
    lora = read_lora(adapter if adapter is not None else record["adapter"]["path"], "unmerge")
    if lora.sha256() != record["adapter"]["sha256"]:
        raise AdapterError(f"{lora.path} is not the adapter merged into {merged}",
                           f"pass the adapter that was merged: {record['adapter']['path']}")

    weights = open_weights(merged)
    prefix, added = record["prefix_added"], set(record["added"])
    plan, updates = {}, {}
    for key, tf in weights.items():
        if key in added:
            continue
        if not key.startswith(prefix):
            raise LorakitError(f"{merged}: tensor {key!r} does not start with {prefix!r}")
        plan[key[len(prefix):]] = tf.info(key)
    for module, u in lora.updates.items():
        for key in (f"{module}.weight",) + ((f"{module}.bias",) if u.bias is not None else ()):
            dtype = weights[key].info(key)[0]
            if dtype not in ("F32", "F64"):
                raise AdapterError(f"{key} is {dtype}: unmerging 16-bit weights is not exact",
                                   "merge again from the original base instead")
            updates[key] = u

    with staged_folder(Path(out), force) as tmp:
        writer = StreamWriter(tmp / "model.safetensors", plan)
        try:
            for name in writer.order:
                key = prefix + name
                tf = weights[key]
                if key not in updates:
                    writer.copy(name, tf, key)
                    continue
                u, w = updates[key], tf.array(key)
                delta = u.delta() if key.endswith(".weight") else u.bias.astype(np.float32) * np.float32(u.scale)
                writer.write(name, (w - delta.astype(w.dtype)).astype(w.dtype))
            writer.close()
        except BaseException:
            writer.abort()
            raise
        (tmp / "config.json").write_text(json.dumps(record["base_config"], indent=2))
        copy_side_files(merged, tmp)
        (tmp / UNMERGE_RECORD).write_text(json.dumps({"merged": str(merged.resolve()), "adapter": str(lora.path),
                                                      "adapter_sha256": record["adapter"]["sha256"]}, indent=2))
    return {"out": str(out), "merged": str(merged), "adapter": str(lora.path), "modules": len(lora.updates),
            "tensors": len(plan)}
