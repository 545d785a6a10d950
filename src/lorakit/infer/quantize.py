"""Dynamic int8 quantization of a merged model's Linear layers for CPU inference, and its file.

One scheme for ``predict --quantize int8`` and ``export --format int8``: every nn.Linear weight as int8
with one scale per output row (per channel), activations quantized on the fly per batch; the rest
stays float32. A quantized model has no safetensors form of its own (its packed weights only
pickle), so the file holds, per quantized layer, ``NAME.weight`` (I8), ``NAME.weight_scale`` (F64 per
row), ``NAME.weight_zero_point`` (I64 per row) and ``NAME.bias``; everything else is the float tensor
of the same name. Loading rebuilds the architecture from config.json, quantizes it and puts the int8
values back.
"""

import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from lorakit.errors import LorakitError
from lorakit.model.merged import INT8_WEIGHTS

MODES = ("int8",)


def quantize_int8(model: torch.nn.Module, inplace: bool = False) -> torch.nn.Module:
    """A merged (plain transformers) model quantized, as a copy or ``inplace``; LoRA layers must be merged first."""
    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao, which is not a dependency; the eager
        # dynamic path still works on the pinned torch.
        warnings.simplefilter("ignore")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        return quantize_dynamic(model.eval(), {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8,
                                inplace=inplace)


def _quantized_linears(model) -> dict:
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    return {name: m for name, m in model.named_modules() if isinstance(m, QLinear)}


def save_int8(qmodel, path: Path) -> None:
    tensors = {}
    linears = _quantized_linears(qmodel)
    for name, m in linears.items():
        w = m.weight()
        tensors[f"{name}.weight"] = w.int_repr().contiguous()
        tensors[f"{name}.weight_scale"] = w.q_per_channel_scales().contiguous()
        tensors[f"{name}.weight_zero_point"] = w.q_per_channel_zero_points().contiguous()
        if m.bias() is not None:
            tensors[f"{name}.bias"] = m.bias().detach().contiguous()
    for key, value in qmodel.state_dict().items():
        if isinstance(value, torch.Tensor) and not value.is_quantized and key.rpartition(".")[0] not in linears \
                and not key.rpartition(".")[0].endswith("_packed_params"):
            tensors.setdefault(key, value.contiguous())
    # tied weights share storage; safetensors wants each stored once
    seen, unique = set(), {}
    for key, value in tensors.items():
        ptr = (value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape))
        unique[key] = value.clone() if ptr in seen else value
        seen.add(ptr)
    # Written by Python (not safetensors' own writer, which creates 0600 files): the folder's usual modes.
    Path(path).write_bytes(save(unique, metadata={"format": "pt", "lorakit": "int8-dynamic-per-channel"}))


def load_int8(folder: str | Path):
    """The int8 model saved in ``folder`` (config.json + model.int8.safetensors), ready for CPU inference."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    folder = Path(folder)
    if not (folder / INT8_WEIGHTS).is_file():
        raise LorakitError(f"{folder}: no {INT8_WEIGHTS}", "write one with: lorakit export RUN --format int8")
    config = AutoConfig.from_pretrained(folder)
    model = quantize_int8(AutoModelForSequenceClassification.from_config(config, dtype=torch.float32), inplace=True)
    tensors = load_file(str(folder / INT8_WEIGHTS))
    linears = _quantized_linears(model)
    for name, m in linears.items():
        scale, zero = tensors.pop(f"{name}.weight_scale"), tensors.pop(f"{name}.weight_zero_point")
        ints = tensors.pop(f"{name}.weight")
        # (int - zero) * scale is exactly representable, so re-quantizing returns the same ints
        real = (ints.double() - zero[:, None].double()) * scale[:, None]
        q = torch.quantize_per_channel(real.float(), scale, zero, 0, torch.qint8)
        m.set_weight_bias(q, tensors.pop(f"{name}.bias", None))
    # The float tensors: copied in place (a quantized layer's own state_dict entries are not ours to load).
    targets = {k: v for k, v in model.state_dict().items() if k.rpartition(".")[0] not in linears
               and "_packed_params" not in k and isinstance(v, torch.Tensor)}
    missing = sorted(set(targets) - set(tensors))
    unexpected = sorted(set(tensors) - set(targets))
    if missing or unexpected:
        raise LorakitError(f"{folder / INT8_WEIGHTS} does not fit config.json "
                           f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    with torch.no_grad():
        for key, target in targets.items():
            target.copy_(tensors[key])
    return model.eval()
