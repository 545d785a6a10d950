import json

import pytest
import torch

from lorakit.data.batching import padded_width
from lorakit.errors import LorakitError, RunError
from lorakit.infer.predictor import load

TEXTS = ["good", "the movie was bad and awful today", "love it", "this film is a boring film and sad",
         "happy fun great", "it", "the the the movie", "hate"]


def test_merged_model_equals_unmerged_within_1e5(trained_run):
    merged, plain = load(trained_run, precision="fp32"), load(trained_run, merge=False)
    assert not any("lora_" in name for name, _ in merged.model.named_modules())  # really merged away
    assert any("lora_" in name for name, _ in plain.model.named_modules())
    a, b = merged.logits(TEXTS), plain.logits(TEXTS)
    assert a.shape == (len(TEXTS), len(merged.labels))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_length_sorted_batches_come_back_in_input_order(trained_run):
    p = load(trained_run, batch_size=3)
    together = p.predict(TEXTS)
    alone = [p.predict([t])[0] for t in TEXTS]
    for x, y in zip(together, alone):
        assert x["label"] == y["label"]
        assert x["probs"] == pytest.approx(y["probs"], abs=1e-5)
    assert p.predict([]) == []


def test_stream_pairs_texts_with_results_and_reads_ahead_at_most_one_chunk(trained_run):
    p = load(trained_run, batch_size=2)
    consumed = 0

    def source():
        nonlocal consumed
        for i in range(20):
            consumed += 1
            yield TEXTS[i % len(TEXTS)]

    stream = p.predict_stream(source(), chunk=4)
    first = next(stream)
    assert consumed <= 5  # one chunk (plus the look-ahead that ends it), not all 20
    rest = list(stream)
    pairs = [first, *rest]
    assert [t for t, _ in pairs] == [TEXTS[i % len(TEXTS)] for i in range(20)]
    assert [r["label"] for _, r in pairs] == [r["label"] for r in p.predict([t for t, _ in pairs])]


def test_int8_quantization_runs_and_reports_accuracy_change(trained_run):
    from lorakit.infer.quality import REPORT, int8_report

    q = load(trained_run, quantize="int8")
    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

    assert not any(type(m) is torch.nn.Linear for m in q.model.modules())
    assert sum(isinstance(m, DynamicInt8Linear) for m in q.model.modules()) >= 12
    assert len(q.predict(TEXTS)) == len(TEXTS)
    r = int8_report(trained_run, batch_size=64)
    assert r["n"] == sum(1 for _ in open(trained_run / "data" / "test.jsonl"))
    assert r["change"] == pytest.approx(r["int8_accuracy"] - r["fp32_accuracy"])
    assert 0 <= r["int8_accuracy"] <= 1
    saved = json.loads((trained_run / REPORT).read_text())
    assert saved["int8_accuracy"] == r["int8_accuracy"]
    assert int8_report(trained_run) == r  # cached while the adapter is unchanged


def test_int8_sees_no_padding_beyond_the_longest_text(trained_run):
    # dynamic int8 scales each activation by its largest value, padded positions included: a text
    # classified alone must give what the quantized model gives on its own tokens, unpadded
    q = load(trained_run, quantize="int8")
    ids = q.tokenizer(TEXTS[1])["input_ids"]
    assert padded_width(len(ids)) != len(ids)  # a width that the default rounding would change
    with torch.inference_mode():
        direct = q.model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long))
    torch.testing.assert_close(q.logits([TEXTS[1]]), direct.logits.float(), atol=0, rtol=0)


def test_user_errors_are_lorakit_errors(trained_run, tmp_path):
    with pytest.raises(LorakitError, match="unknown quantization"):
        load(trained_run, quantize="int4")
    with pytest.raises(RunError, match="not found") as e:
        load(tmp_path / "missing")
    assert e.value.hint
    with pytest.raises(RunError, match="no trained adapter"):
        load(tmp_path)
