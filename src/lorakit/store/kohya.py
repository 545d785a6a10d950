"""kohya-style LoRA files (``<module>.lora_down.weight`` / ``.lora_up.weight`` / ``.alpha``) -> PEFT.

kohya names a module by its path with '.' replaced by '_' under a prefix (``lora_te_``,
``lora_unet_``...). The base's own module paths decide the mapping, so only modules that
exist in the base convert; anything else is reported. The scale is the same in both formats
(alpha / r), so lora_down -> lora_A, lora_up -> lora_B, alpha -> lora_alpha (per module via
alpha_pattern / rank_pattern where they differ).
"""

from collections import Counter
from pathlib import Path

from lorakit.errors import StoreError
from lorakit.store.compat import MODEL_PREFIXES, PEFT_PREFIX, base_prefixes, strip_prefix

KOHYA_PREFIXES = ("lora_unet_", "lora_te1_", "lora_te2_", "lora_te_", "lora_transformer_", "lora_")
DOWN, UP = ".lora_down.weight", ".lora_up.weight"


def is_kohya(keys) -> bool:
    return any(k.endswith(DOWN) for k in keys)


def _seq_cls_prefix(model_type: str) -> str:
    """The attribute under which a sequence classifier holds its base (``bert.``), as PEFT keys need."""
    try:
        import transformers
        from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES as NAMES

        prefix = getattr(transformers, NAMES[model_type]).base_model_prefix
        return prefix + "." if prefix else ""
    except (KeyError, AttributeError, ImportError):
        return ""


def module_map(base_shapes: dict, base_cfg: dict) -> dict[str, str]:
    """kohya name (without prefix) -> base module path, for every matrix in the base."""
    prefixes = base_prefixes(base_cfg)
    out = {}
    for key, shape in base_shapes.items():
        if key.endswith(".weight") and len(shape) == 2:
            path = strip_prefix(key, prefixes)[: -len(".weight")]
            out[path.replace(".", "_")] = path
    return out


def _lookup(name: str, mapping: dict[str, str]) -> str | None:
    for p in KOHYA_PREFIXES:
        if name.startswith(p):
            rest = name[len(p):]
            if rest in mapping:
                return mapping[rest]
            first, _, tail = rest.partition("_")
            if tail in mapping and first in MODEL_PREFIXES:
                return mapping[tail]
    return mapping.get(name)


def _alpha(f, name: str, path: Path) -> float:
    t = f.get_tensor(name + ".alpha")
    if t.numel() != 1 or t.is_complex() or not bool(t.float().isfinite().all()):
        raise StoreError(f"{path.name}: {name}.alpha must be one finite number, got shape {list(t.shape)}")
    return float(t.float().item())


def convert(path: Path, header: dict, base_shapes: dict, base_cfg: dict, out_dir: Path) -> Path:
    """Write adapter_config.json + adapter_model.safetensors for the kohya file ``path`` into out_dir."""
    from peft import LoraConfig
    from safetensors import safe_open
    from safetensors.torch import save_file

    mapping = module_map(base_shapes, base_cfg)
    names = sorted(k[: -len(DOWN)] for k in header if k.endswith(DOWN))
    unknown = [n for n in names if _lookup(n, mapping) is None]
    if unknown:
        shown = ", ".join(unknown[:3]) + (f" (+{len(unknown) - 3} more)" if len(unknown) > 3 else "")
        raise StoreError(f"{path.name}: {len(unknown)} of {len(names)} kohya modules have no counterpart in the base: "
                         f"{shown}", "install it with --base set to the model it was trained for")
    missing = [n for n in names if n + UP not in header]
    if missing:
        raise StoreError(f"{path.name}: {missing[0]} has lora_down but no lora_up",
                         "the file is incomplete: export the LoRA again")
    prefix = _seq_cls_prefix(str(base_cfg.get("model_type", "")))
    tensors, ranks, alphas = {}, {}, {}
    with safe_open(str(path), framework="pt") as f:
        for n in names:
            module = _lookup(n, mapping)
            down, up = f.get_tensor(n + DOWN), f.get_tensor(n + UP)
            if down.dim() != 2 or up.dim() != 2:
                raise StoreError(f"{path.name}: {n} is not a linear-layer LoRA (lora_down {list(down.shape)}); "
                                 "only linear layers convert")
            r = down.shape[0]
            alpha = _alpha(f, n, path) if n + ".alpha" in header else float(r)
            tensors[f"{PEFT_PREFIX}{prefix}{module}.lora_A.weight"] = down.contiguous()
            tensors[f"{PEFT_PREFIX}{prefix}{module}.lora_B.weight"] = up.contiguous()
            ranks[module], alphas[module] = r, alpha
    r = Counter(ranks.values()).most_common(1)[0][0]
    alpha = Counter(alphas.values()).most_common(1)[0][0]
    config = LoraConfig(
        r=r,
        lora_alpha=int(alpha) if float(alpha).is_integer() else alpha,
        target_modules=sorted(ranks),
        rank_pattern={m: v for m, v in ranks.items() if v != r},
        alpha_pattern={m: v for m, v in alphas.items() if v != alpha},
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(out_dir))
    save_file(tensors, str(out_dir / "adapter_model.safetensors"),
              metadata={"format": "pt", "converted_from": f"kohya:{path.name}"})
    return out_dir
