"""What a predictor takes: a lone string is one text, empty texts are refused, and the folders that
lorakit merge and lorakit export write are models lorakit itself can use."""

import stat

import pytest
import torch

from lorakit.errors import LorakitError, RunError
from lorakit.infer.predictor import load

TEXTS = ["good great love", "bad awful hate", "the movie was it"]


def test_a_lone_string_is_one_text(trained_run):
    p = load(trained_run)
    one = p.predict("good great love")
    assert len(one) == 1 and one[0] == p.predict(["good great love"])[0]
    assert [t for t, _ in p.predict_stream("bad awful")] == ["bad awful"]


@pytest.mark.parametrize("texts, which", [(["good", ""], "text 2 is empty"), (["  \t"], "text 1 is empty")])
def test_empty_texts_are_refused_as_training_refuses_them(trained_run, texts, which):
    p = load(trained_run)
    with pytest.raises(LorakitError, match=which):
        p.predict(texts)
    with pytest.raises(LorakitError, match=which):
        list(p.predict_stream(iter(texts)))


def test_a_merged_folder_predicts_like_its_run(trained_run, tmp_path):
    from lorakit.export.merge import merge

    merge(trained_run, tmp_path / "merged")
    run, merged = load(trained_run, precision="fp32"), load(tmp_path / "merged", precision="fp32")
    assert merged.labels == run.labels and merged.max_length == run.max_length
    torch.testing.assert_close(merged.logits(TEXTS), run.logits(TEXTS), atol=1e-5, rtol=0)


def test_an_int8_export_predicts_like_predict_quantize_int8(trained_run, tmp_path):
    """One int8 scheme: the export folder and predict --quantize int8 give the same logits."""
    from lorakit.export.package import export

    export(trained_run, "int8", tmp_path / "q")
    mode = stat.S_IMODE((tmp_path / "q" / "model.int8.safetensors").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "q" / "config.json").stat().st_mode)  # not 0600 beside 0644
    exported, quantized = load(tmp_path / "q"), load(trained_run, quantize="int8")
    assert exported.quantize == "int8"
    torch.testing.assert_close(exported.logits(TEXTS), quantized.logits(TEXTS), atol=1e-5, rtol=0)


def test_eval_says_what_it_takes_when_given_a_merged_folder(trained_run, tmp_path):
    from lorakit.evaluation.report import evaluate
    from lorakit.export.merge import merge

    merge(trained_run, tmp_path / "merged")
    with pytest.raises(RunError, match="is a merged model: lorakit eval scores a run"):
        evaluate(tmp_path / "merged")


def test_commands_that_take_adapters_say_so_for_a_merged_folder(trained_run, tmp_path):
    from lorakit.export.merge import merge
    from lorakit.model.adapters import resolve

    merge(trained_run, tmp_path / "merged")
    with pytest.raises(RunError, match="is a merged model, not an adapter") as e:
        resolve(tmp_path / "merged")  # serve --adapter, merge, combine, install --adapter read adapters this way
    assert "lorakit predict takes merged and exported folders" in e.value.hint
