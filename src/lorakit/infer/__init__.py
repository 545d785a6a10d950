"""Inference: the predictor over a trained run, and the multi-adapter batch engine."""

from lorakit.infer.predictor import Predictor, load

__all__ = ["Predictor", "load"]
