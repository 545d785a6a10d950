"""ONNX export of a merged classifier (torch.onnx, dynamic batch and length) and an onnxruntime runner."""

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch

from lorakit.errors import LorakitError

ONNX_FILE = "model.onnx"
INPUTS = ("input_ids", "attention_mask")


class _Logits(torch.nn.Module):
    """The classifier as a function of (input_ids, attention_mask) -> logits: what the graph computes."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def _need(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise LorakitError(f"ONNX export needs the {module} package", "run: pip install 'lorakit[export]'") from None


def to_onnx(model, example: dict[str, torch.Tensor], path: Path) -> None:
    """Write ``model`` as one self-contained .onnx file with dynamic batch and sequence axes."""
    _need("onnx")
    _need("onnxscript")
    batch, length = torch.export.Dim("batch"), torch.export.Dim("sequence")
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # exporter progress and deprecation chatter
        torch.onnx.export(_Logits(model).eval(), tuple(example[k] for k in INPUTS), str(path),
                          input_names=list(INPUTS), output_names=["logits"],
                          dynamic_shapes={k: {0: batch, 1: length} for k in INPUTS},
                          dynamo=True, external_data=False)


class OnnxClassifier:
    """Runs a model.onnx with onnxruntime on CPU; called like a transformers model for the check."""

    def __init__(self, path: Path, threads: int):
        ort = _need("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        if token_type_ids is not None and bool(token_type_ids.any()):
            raise LorakitError("the exported graph classifies single texts (token_type_ids must be all 0)")
        feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        return torch.from_numpy(self.session.run(["logits"], feeds)[0])
