"""A LoRA adapter's per-module updates read from disk (numpy, no torch), for merging and combining.

The adapter is found as everywhere else (lorakit.model.adapters: a run folder, its adapter/ folder,
or an installed adapter's name). PEFT saves weights under the wrapped model's names, e.g.
``base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight``; anything that is not
a LoRA factor (the classifier head from ``modules_to_save``, trained biases) is a whole tensor
that replaces or extends the base.
"""

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lorakit import tasks
from lorakit.export.tensors import TensorFile
from lorakit.model.adapters import CONFIG, WEIGHTS, AdapterError, locate, read_info

PREFIX = "base_model.model."
_FACTOR = re.compile(r"^(?P<module>.+)\.(?P<part>lora_A\.weight|lora_B\.weight|lora_B\.bias|lora_embedding_A|"
                     r"lora_embedding_B|lora_magnitude_vector)$")
# Config switches whose adapters are not (known to be) a plain sum of per-module updates.
_UNSUPPORTED = ("layer_replication", "target_parameters", "trainable_token_indices", "alora_invocation_tokens",
                "use_qalora", "use_bdlora", "megatron_config", "arrow_config", "kasa_config", "velora_config",
                "monteclora_config")


@dataclass
class ModuleUpdate:
    """The low-rank update of one base weight: delta = scale * B @ A (transposed for embeddings)."""
    module: str
    A: np.ndarray
    B: np.ndarray
    scale: float
    embedding: bool = False
    fan_in_fan_out: bool = False
    magnitude: np.ndarray | None = None   # DoRA
    bias: np.ndarray | None = None        # lora_bias: B's own bias, scaled like the weights

    def delta(self) -> np.ndarray:
        d = (self.B.astype(np.float32) @ self.A.astype(np.float32)) * np.float32(self.scale)
        return d.T if (self.embedding or self.fan_in_fan_out) else d


@dataclass
class Adapter:
    path: Path
    config: dict
    meta: dict
    updates: dict[str, ModuleUpdate] = field(default_factory=dict)
    whole: dict[str, str] = field(default_factory=dict)  # model key -> key in the adapter file
    weights: TensorFile | None = None

    @property
    def labels(self) -> list[str]:
        return self.meta["labels"]

    @property
    def dora(self) -> bool:
        return any(u.magnitude is not None for u in self.updates.values())

    def sha256(self) -> str:
        h = hashlib.sha256()
        with open(self.path / WEIGHTS, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return h.hexdigest()


def _pattern_value(patterns: dict, module: str, default):
    """PEFT's rank/alpha pattern rule: the first key that matches the end of the module name."""
    for key in patterns:
        if re.match(rf"(.*\.)?({key})$", module):
            return patterns[key]
    return default


def read_lora(source: str | Path, command: str) -> Adapter:
    """The adapter of ``source`` with its updates, for ``lorakit command`` (merge, combine, ...)."""
    path = locate(source)
    if not (path / WEIGHTS).is_file():
        raise AdapterError(f"{path}: no {WEIGHTS}", "give a run folder written by lorakit train, or its adapter/ folder")
    config = json.loads((path / CONFIG).read_text())
    info = read_info(path)
    meta = {**info.meta, "task": tasks.require(info.task, command, "adapter").name}
    if config.get("peft_type") != "LORA":
        raise AdapterError(f"{path}: a {config.get('peft_type')} adapter; only LoRA-family adapters can be merged")
    for key in _UNSUPPORTED:
        if config.get(key):
            raise AdapterError(f"{path}: adapters with {key} set cannot be merged into plain weights")

    weights = TensorFile(path / WEIGHTS)
    parts: dict[str, dict[str, str]] = {}
    whole = {}
    for key in weights.keys():
        if not key.startswith(PREFIX):
            raise AdapterError(f"{path / WEIGHTS}: unexpected tensor {key!r} (not saved by PEFT)")
        name = key[len(PREFIX):]
        m = _FACTOR.match(name)
        if m:
            parts.setdefault(m["module"], {})[m["part"]] = key
        elif "lora_" in name:
            raise AdapterError(f"{path / WEIGHTS}: unsupported LoRA tensor {key!r}")
        else:
            whole[name] = key

    adapter = Adapter(path, config, meta, whole=whole, weights=weights)
    alpha, rslora = config["lora_alpha"], config.get("use_rslora", False)
    for module, p in sorted(parts.items()):
        embedding = "lora_embedding_A" in p
        a_key, b_key = (("lora_embedding_A", "lora_embedding_B") if embedding else ("lora_A.weight", "lora_B.weight"))
        if a_key not in p or b_key not in p:
            raise AdapterError(f"{path / WEIGHTS}: module {module!r} lacks one of its two LoRA factors")
        A, B = weights.array(p[a_key]), weights.array(p[b_key])
        r = A.shape[0]
        a = _pattern_value(config.get("alpha_pattern") or {}, module, alpha)
        scale = a / math.sqrt(r) if rslora else a / r
        magnitude = weights.array(p["lora_magnitude_vector"]) if "lora_magnitude_vector" in p else None
        if magnitude is not None and (embedding or A.ndim != 2):
            raise AdapterError(f"{path}: DoRA on {module!r} (not a linear layer) cannot be merged here")
        bias = weights.array(p["lora_B.bias"]) if "lora_B.bias" in p else None
        adapter.updates[module] = ModuleUpdate(module, A, B, scale, embedding, config.get("fan_in_fan_out", False),
                                               magnitude, bias)
    if not adapter.updates:
        raise AdapterError(f"{path / WEIGHTS}: no LoRA weights in this adapter")
    return adapter
