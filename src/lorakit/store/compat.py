"""Does an adapter fit a base model? Decided from safetensors headers alone (no weights loaded).

For every adapted module the base must hold the module, and the LoRA factors must fit its
weight W [out, in]: lora_A [r, in], lora_B [out, r] (embeddings: A [r, vocab], B [dim, r]),
DoRA magnitude [out], AdaLoRA E [r, 1]. Saved heads (modules_to_save) must take the base's
hidden size. Module paths are compared without the base-model prefix (``bert.`` ...), since a
base saved from BertModel and an adapter trained on BertForSequenceClassification differ by it.
"""

import math
import re
from pathlib import Path

from lorakit.store.safetensors_check import read_header, shapes

PEFT_PREFIX = "base_model.model."
_ROLE = re.compile(r"^(?P<mod>.+)\.(?P<role>lora_A|lora_B|lora_embedding_A|lora_embedding_B|lora_magnitude_vector"
                   r"|lora_E)(?:\.default)?(?:\.weight)?$")
# Attribute names under which a task model holds its base model (``bert.`` in BertForSequenceClassification).
MODEL_PREFIXES = {"bert", "roberta", "distilbert", "deberta", "electra", "model", "transformer", "albert",
                  "xlm_roberta"}
SUPPORTED = {"LORA", "ADALORA"}
TASK_TYPES = {None, "SEQ_CLS", "SEQ_2_SEQ_LM", "CAUSAL_LM", "TOKEN_CLS", "QUESTION_ANS", "FEATURE_EXTRACTION"}


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def config_problems(cfg: dict) -> list[str]:
    """Values PEFT would accept silently and then fail on (or misbehave with) at load time."""
    peft_type = str(cfg.get("peft_type", "LORA")).upper()
    if peft_type not in SUPPORTED:
        return [f"adapter type {peft_type[:30]} is not supported (LoRA, rsLoRA, DoRA, AdaLoRA are)"]
    p = []
    r = cfg.get("r")
    if type(r) is not int or r <= 0:
        p.append(f"adapter_config r must be a positive integer, got {str(r)[:30]!r}")
    if "lora_alpha" in cfg and not _number(cfg["lora_alpha"]):
        p.append(f"adapter_config lora_alpha must be a number, got {str(cfg['lora_alpha'])[:30]!r}")
    for key in ("rank_pattern", "alpha_pattern"):
        v = cfg.get(key)
        if v and not (isinstance(v, dict) and all(isinstance(k, str) and _pattern_value(key, x) for k, x in v.items())):
            p.append(f"adapter_config {key} must map module names to numbers")
    t = cfg.get("target_modules")
    if not (t is None or isinstance(t, str) or (isinstance(t, list) and all(isinstance(x, str) for x in t))):
        p.append("adapter_config target_modules must be a name, a list of names or a regex")
    if cfg.get("task_type") not in TASK_TYPES:
        p.append(f"adapter_config task_type {str(cfg.get('task_type'))[:30]!r} is not a PEFT task type")
    for key in ("fan_in_fan_out", "use_dora", "use_rslora"):
        if key in cfg and not isinstance(cfg[key], bool):
            p.append(f"adapter_config {key} must be true or false")
    return p


def _pattern_value(key: str, x) -> bool:
    """A rank or alpha; AdaLoRA's rank_pattern holds each module's kept-rank mask instead."""
    return _number(x) or (key == "rank_pattern" and isinstance(x, list) and all(isinstance(b, bool) for b in x))


def _expected_rank(module: str, cfg: dict) -> int | None:
    """PEFT's rule: the rank_pattern key that matches the end of the module path, else r."""
    for pattern, r in (cfg.get("rank_pattern") or {}).items():
        try:
            if re.match(rf"(.*\.)?({pattern})$", module):
                return r
        except re.error:
            return None
    return cfg.get("r")


def base_prefixes(base_cfg: dict) -> set[str]:
    """The prefixes a module path may carry for this base: the usual ones and its own model_type."""
    return MODEL_PREFIXES | {str(base_cfg.get("model_type", "")).replace("-", "_")}


def strip_prefix(key: str, prefixes: set[str]) -> str:
    """``bert.encoder.layer.0...`` -> ``encoder.layer.0...``: the path without its base-model prefix."""
    first, _, rest = key.partition(".")
    return rest if rest and first in prefixes else key


def base_shapes(model_dir: Path) -> dict[str, list[int]]:
    out = {}
    for f in sorted(model_dir.rglob("*.safetensors")):
        out.update(shapes(read_header(f)))
    return out


def lora_keys(adapter_shapes: dict) -> dict[str, dict[str, list[int]]]:
    """{module path (no PEFT prefix): {role: shape}} for the LoRA tensors of an adapter."""
    mods: dict[str, dict] = {}
    for key, shape in adapter_shapes.items():
        m = _ROLE.match(key.removeprefix(PEFT_PREFIX))
        if m:
            mods.setdefault(m["mod"], {})[m["role"]] = shape
    return mods


def mismatches(adapter_shapes: dict, adapter_cfg: dict, base: dict[str, list[int]], base_cfg: dict) -> list[str]:
    """Every reason the adapter does not fit the base, most specific first; [] when it fits."""
    prefixes = base_prefixes(base_cfg)
    norm_base = {}
    for k, s in base.items():
        norm_base.setdefault(strip_prefix(k, prefixes), s)
    hidden = base_cfg.get("hidden_size") or base_cfg.get("dim") or base_cfg.get("d_model")
    fan_in_fan_out = bool(adapter_cfg.get("fan_in_fan_out"))

    peft_type = str(adapter_cfg.get("peft_type", "LORA")).upper()
    problems = config_problems(adapter_cfg)
    if problems:
        return problems
    mods = lora_keys(adapter_shapes)
    if not mods:
        return ["no LoRA tensors (lora_A / lora_B) in the adapter weights"]

    for mod, roles in mods.items():
        path = strip_prefix(mod, prefixes)
        w = norm_base.get(path + ".weight")
        if w is None:
            problems.append(f"module {path} is not in the base")
            continue
        a = roles.get("lora_A") or roles.get("lora_embedding_A")
        b = roles.get("lora_B") or roles.get("lora_embedding_B")
        if a is None or b is None:
            problems.append(f"{path}: lora_A or lora_B is missing")
            continue
        if "lora_embedding_A" in roles:
            want_in, want_out = (w[0], w[1]) if len(w) == 2 else (None, None)
        elif len(w) == 2:
            want_out, want_in = (w[1], w[0]) if fan_in_fan_out else (w[0], w[1])
        else:  # convolutions: out and in channels lead
            want_out, want_in = w[0], (w[1] if len(w) > 1 else None)
        if len(a) < 2 or len(b) < 2:
            problems.append(f"{path}: lora_A {a} / lora_B {b} are not matrices")
            continue
        r = a[0]
        if a[1] != want_in:
            problems.append(f"{path}: lora_A is {a}, the base needs [r, {want_in}] (weight {w})")
        if b[0] != want_out:
            problems.append(f"{path}: lora_B is {b}, the base needs [{want_out}, r] (weight {w})")
        if b[1] != r:
            problems.append(f"{path}: rank of lora_A ({r}) and lora_B ({b[1]}) differ")
        want_r = _expected_rank(mod, adapter_cfg)
        if peft_type == "LORA" and want_r is not None and r != want_r:
            problems.append(f"{path}: the weights have rank {r}, adapter_config says r={want_r}")
        mag = roles.get("lora_magnitude_vector")
        if mag is not None and mag[-1] != want_out:
            problems.append(f"{path}: DoRA magnitude is {mag}, the base needs [{want_out}]")
        e = roles.get("lora_E")
        if e is not None and e[0] != r:
            problems.append(f"{path}: AdaLoRA lora_E is {e}, needs [{r}, 1]")

    for key, shape in adapter_shapes.items():  # saved heads and biases (modules_to_save)
        k = key.removeprefix(PEFT_PREFIX)
        if _ROLE.match(k):
            continue
        k = re.sub(r"\.modules_to_save\.[^.]+", "", k)
        path = strip_prefix(k, prefixes)
        if path in norm_base:
            if norm_base[path] != shape:
                problems.append(f"{path}: saved as {shape}, the base has {norm_base[path]}")
        elif len(shape) == 2 and hidden and shape[1] != hidden:
            problems.append(f"head {path} takes inputs of size {shape[1]}, the base's hidden size is {hidden}")

    targets = adapter_cfg.get("target_modules")
    if isinstance(targets, list):
        base_modules = {k[: -len(".weight")] for k in norm_base if k.endswith(".weight")}
        for t in targets:
            t = strip_prefix(str(t), prefixes)
            if not any(m == t or m.endswith("." + t) for m in base_modules):
                problems.append(f"target module {t!r} is not in the base")
    return problems


def summary(problems: list[str], shown: int = 3) -> str:
    text = "; ".join(problems[:shown])
    return text + (f" (+{len(problems) - shown} more)" if len(problems) > shown else "")
