"""A LoRA adapter read from disk: where it is, its base, and its per-module updates (numpy, no torch).

Accepts a run folder (runs/NAME), its adapter/ folder, or the name of an adapter installed in the
store. PEFT saves weights under the wrapped model's names, e.g.
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

from lorakit.errors import LorakitError, NotInstalledError, RunError
from lorakit.export.tensors import TensorFile
from lorakit.store.layout import entry_dir, home

WEIGHTS = "adapter_model.safetensors"
PREFIX = "base_model.model."
_FACTOR = re.compile(r"^(?P<module>.+)\.(?P<part>lora_A\.weight|lora_B\.weight|lora_B\.bias|lora_embedding_A|"
                     r"lora_embedding_B|lora_magnitude_vector)$")
# Config switches whose adapters are not (known to be) a plain sum of per-module updates.
_UNSUPPORTED = ("layer_replication", "target_parameters", "trainable_token_indices", "alora_invocation_tokens",
                "use_qalora", "use_bdlora", "megatron_config", "arrow_config", "kasa_config", "velora_config",
                "monteclora_config")


class AdapterError(LorakitError):
    """An adapter cannot be merged or combined as asked."""


def adapter_dir(source: str | Path) -> Path:
    """The folder holding adapter_config.json: a run folder, an adapter folder or a store name."""
    path = Path(source).expanduser()
    for d in (path / "adapter", path):
        if (d / "adapter_config.json").is_file() and (d / WEIGHTS).is_file():
            return d
    if path.exists():
        raise RunError(f"{source}: no adapter here (no adapter_config.json and {WEIGHTS})",
                       "give a run folder written by lorakit train, its adapter/ folder, or an installed adapter name")
    if "/" not in str(source) and not str(source).startswith("."):
        try:
            d = entry_dir("adapters", str(source))
        except LorakitError:
            d = None
        if d is not None and (d / "adapter_config.json").is_file():
            return d
        raise NotInstalledError(f"adapter {str(source)!r} is neither a folder nor installed in {home()}",
                                "give a run folder such as runs/demo, or run: lorakit list")
    raise RunError(f"{source}: no such run or adapter folder", "give a run folder such as runs/demo")


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


def read_adapter(source: str | Path) -> Adapter:
    path = adapter_dir(source)
    config = json.loads((path / "adapter_config.json").read_text())
    meta_path = path / "lorakit.json"
    if not meta_path.is_file():
        raise AdapterError(f"{path}: no lorakit.json (labels and base model)", "give an adapter written by lorakit")
    meta = json.loads(meta_path.read_text())
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
