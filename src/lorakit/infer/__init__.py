"""Inference: the predictor over a trained run."""

from lorakit.infer.predictor import Predictor, load

__all__ = ["Predictor", "load"]
