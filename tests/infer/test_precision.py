"""bf16 inference with fp32's labels: close calls are computed again in fp32."""

import pytest
import torch
from transformers.modeling_outputs import SequenceClassifierOutput

from helpers import synthetic_rows
from lorakit.data.batching import encode
from lorakit.errors import LorakitError
from lorakit.infer.precision import CloseCalls
from lorakit.model.device import native_bf16, resolve_precision as resolve
from lorakit.model.forward import batched_logits
from lorakit.infer.predictor import load

TEXTS = [t for t, _ in synthetic_rows(400, seed=7)]


class Nudged(torch.nn.Module):
    """The exact model's logits with its top logit lowered by ``size``: every row closer than that flips."""

    def __init__(self, exact, size: float):
        super().__init__()
        self.exact, self.size = exact, size

    def forward(self, input_ids, attention_mask):
        logits = self.exact(input_ids=input_ids, attention_mask=attention_mask).logits
        top = torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1])
        return SequenceClassifierOutput(logits=logits - self.size * top)


def test_close_calls_are_decided_by_the_exact_model(trained_run):
    p = load(trained_run, precision="fp32")
    seqs = encode(p.tokenizer, TEXTS, p.max_length)
    exact = p.logits(TEXTS)
    top2 = exact.topk(2, -1).values
    margins = top2[:, 0] - top2[:, 1]
    size = float(margins.quantile(0.2)) + 1e-3  # flips the closest fifth if left alone, not the clear ones
    assert float(margins.max()) > 4 * size
    fast = Nudged(p.model, size)
    alone = batched_logits(fast, seqs, p.tokenizer.pad_token_id, 32)
    assert (alone.argmax(-1) != exact.argmax(-1)).sum() > 10
    calls = CloseCalls(warmup=64, every=16)
    logits, recomputed = calls.resolve(alone, lambda rows: exact[rows])
    assert torch.equal(logits.argmax(-1), exact.argmax(-1))
    assert 64 < recomputed < len(TEXTS)  # the probes plus the close calls, not the clear rows
    assert calls.eps == pytest.approx(size, rel=1e-4)


def test_a_shift_of_every_logit_alike_sends_nothing_to_fp32():
    """Only the spread of a row's error across its logits can move the gap between two of them."""
    torch.manual_seed(0)
    exact = torch.randn(300, 3)
    calls = CloseCalls(warmup=32, every=16)
    logits, recomputed = calls.resolve(exact + 0.5, lambda rows: exact[rows])
    assert calls.eps < 1e-6  # float rounding of the shift, no more
    assert recomputed == 32 + len(range(32, 300, 16))  # the probes only
    assert torch.equal(logits.argmax(-1), exact.argmax(-1))


def test_bf16_predictor_gives_fp32_labels(trained_run):
    exact, fast = load(trained_run, precision="fp32"), load(trained_run, precision="bf16")
    assert fast.fast is not None and next(fast.fast.parameters()).dtype == torch.bfloat16
    a, b = exact.predict(TEXTS), fast.predict(TEXTS)
    assert [r["label"] for r in a] == [r["label"] for r in b]
    for x, y in zip(a, b):
        assert x["probs"] == pytest.approx(y["probs"], abs=2e-2)
    assert fast.rows == len(TEXTS) and fast.rows_fp32 >= 256  # the first 256 rows calibrate


def test_precision_choices(trained_run):
    assert resolve("auto") == ("bf16" if native_bf16() else "fp32")
    assert load(trained_run, precision="bf16", quantize="int8").fast is None  # int8 is its own path
    with pytest.raises(LorakitError, match="unknown precision"):
        load(trained_run, precision="fp16")
