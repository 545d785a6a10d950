"""Merge adapters into plain weights, undo a merge, combine adapters, export int8 and ONNX.

Merge and unmerge use numpy only (no torch import), so a merge's memory stays near one base.
"""
