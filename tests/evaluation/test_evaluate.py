import json

import pytest

from lorakit.errors import RunError
from lorakit.tasks.classification.metrics import classification_metrics
from lorakit.evaluation.report import evaluate


def test_metrics_by_hand():
    m = classification_metrics([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert m["per_class"]["b"] == {"precision": pytest.approx(2 / 3), "recall": 1.0, "f1": pytest.approx(0.8),
                                   "support": 2}
    assert m["per_class"]["c"]["f1"] == 0.0
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_eval_writes_json_and_plot_and_compares_with_baselines(tiny_run):
    r = evaluate(tiny_run, "val", with_baselines=True)
    saved = json.loads((tiny_run / "eval_val.json").read_text())
    assert saved["accuracy"] == r["accuracy"] and saved["split"] == "val"
    assert (tiny_run / "plots/confusion_val.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    b = r["baselines"]
    assert set(b) == {"majority class", "tf-idf + logistic regression", "tf-idf + linear SVM"}
    assert b["majority class"]["accuracy"] == pytest.approx(1 / 3, abs=0.02)  # balanced synthetic classes
    assert b["tf-idf + linear SVM"]["accuracy"] > 0.9  # the synthetic labels are decided by words


def test_eval_rejects_unknown_split(tiny_run):
    with pytest.raises(RunError, match="unknown split 'train'"):
        evaluate(tiny_run, "train")
