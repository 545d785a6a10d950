"""Merge adapters into plain weights, undo a merge, combine adapters, export int8 and ONNX.

    from lorakit.export import merge, unmerge, combine, export
    merge("runs/demo", "merged/demo")                       # HF folder any transformers code loads
    combine(["runs/a", "runs/b"], "runs/ab/adapter", weights=[0.7, 0.3], method="cat")
    export("runs/demo", "int8")                              # runs/demo/export/int8 + check.json

Merge and unmerge use numpy only (no torch import), so a merge's memory stays near one tensor.
"""

from lorakit.export.merge import merge
from lorakit.export.unmerge import unmerge


def combine(sources, out, **kwargs) -> dict:
    from lorakit.export.combine import combine as _combine

    return _combine(sources, out, **kwargs)


def export(run, fmt: str, out=None, **kwargs) -> dict:
    from lorakit.export.package import export as _export

    return _export(run, fmt, out, **kwargs)


__all__ = ["combine", "export", "merge", "unmerge"]
