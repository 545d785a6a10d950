"""Which precision this machine runs fast: decided at run time, never by assumption."""

import torch

from lorakit.errors import LorakitError

PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16() -> bool:
    """True where bf16 matmuls run in hardware (and beat fp32); elsewhere bf16 is emulated and slower."""
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:
        return False


def resolve_precision(precision: str) -> str:
    """Inference precision: ``auto`` is bf16 on CPUs with native bf16, fp32 elsewhere."""
    if precision not in PRECISIONS:
        raise LorakitError(f"unknown precision {precision!r}", f"use one of: {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if native_bf16() else "fp32"
    return precision
