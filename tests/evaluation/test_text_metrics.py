import math

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from lorakit.evaluation.text_baselines import copy_source, first_words, task_baseline
from lorakit.evaluation.text_metrics import (METRICS_BY_KIND, UnicodeTokenizer, bleu_tokenizer_for, kind_of_dataset,
                                             looks_english, perplexity, pick_metrics, score_texts)

REFS = ["Shares in the carmaker rose 5% after record sales", "Ministers reject calls for an early election"]
PREDS = ["Carmaker shares rising after record sales", "Minister rejects call for early elections"]


def test_rouge_on_english_equals_rouge_scores_own_scorer():
    ours = score_texts(PREDS, REFS, ["rouge1", "rouge2", "rougeL"])
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    rows = [scorer.score(r, p) for p, r in zip(PREDS, REFS)]
    for t in ("rouge1", "rouge2", "rougeL"):
        assert ours[t] == pytest.approx(100 * sum(s[t].fmeasure for s in rows) / 2)
    assert 0 < ours["rouge2"] < ours["rouge1"] < 100


def test_rouge_by_hand():
    # unigrams: 2 of 4 shared each way -> F 0.5; bigrams: "the cat" of 3 each way -> 1/3; LCS "the cat" -> 0.5
    s = score_texts(["the cat sat down"], ["the cat ran away"], ["rouge1", "rouge2", "rougeL"])
    assert s == pytest.approx({"rouge1": 50.0, "rouge2": 100 / 3, "rougeL": 50.0})


def test_tokenizer_matches_rouge_score_on_ascii_and_keeps_other_scripts():
    text = "Running 3 races, the U.K.'s runner_up won: 10-2!"
    assert UnicodeTokenizer().tokenize(text) == rouge_scorer.tokenizers.DefaultTokenizer(True).tokenize(text)
    assert UnicodeTokenizer(stem=False).tokenize("L'élève 起初 abc中文") == ["l", "élève", "起", "初", "abc", "中", "文"]


def test_rouge_keeps_accented_words_whole():
    assert score_texts(["élève"], ["élève"], ["rougeL"])["rougeL"] == pytest.approx(100)
    assert score_texts(["eleve"], ["élève"], ["rougeL"])["rougeL"] == 0


def test_rouge_on_chinese_counts_characters():
    assert score_texts(["起初神创造天地"], ["起初神创造天地"], ["rouge1"])["rouge1"] == pytest.approx(100)
    # 5 of the reference's 7 characters, all 5 predicted ones right: P 1, R 5/7, F 2*5/7 / (1 + 5/7) = 10/12
    assert score_texts(["神创造天地"], ["起初神创造天地"], ["rouge1"])["rouge1"] == pytest.approx(100 * 10 / 12)


def test_stemming_only_for_english_references_unless_asked():
    assert score_texts(["the cats"], ["the cat"], ["rouge1"])["rouge1"] == pytest.approx(100)
    assert score_texts(["the cats"], ["the cat"], ["rouge1"], stem=False)["rouge1"] == pytest.approx(50)
    fr_pred, fr_ref = ["Les enfant de l'école"], ["Les enfants de l'école"]  # 5 tokens each, 4 shared
    assert score_texts(fr_pred, fr_ref, ["rouge1"])["rouge1"] == pytest.approx(80)
    assert score_texts(fr_pred, fr_ref, ["rouge1"], stem=True)["rouge1"] == pytest.approx(100)
    assert looks_english(REFS) and not looks_english(fr_ref)


def test_bleu_and_chrf_equal_sacrebleus_corpus_scores():
    s = score_texts(PREDS, REFS, ["bleu", "chrf"])
    assert s["bleu"] == pytest.approx(sacrebleu.corpus_bleu(PREDS, [REFS]).score)
    assert s["chrf"] == pytest.approx(sacrebleu.corpus_chrf(PREDS, [REFS]).score)
    assert score_texts(REFS, REFS, ["bleu", "chrf"]) == pytest.approx({"bleu": 100, "chrf": 100})


def test_bleu_on_chinese_uses_the_zh_tokenizer():
    preds, refs = ["神创造了天地。"], ["起初，神创造天地。"]
    assert bleu_tokenizer_for(refs) == "zh" and bleu_tokenizer_for(["Au commencement, Dieu créa"]) == "13a"
    zh = sacrebleu.corpus_bleu(preds, [refs], tokenize="zh").score
    assert score_texts(preds, refs, ["bleu"])["bleu"] == pytest.approx(zh)
    assert zh > 0 and sacrebleu.corpus_bleu(preds, [refs], tokenize="13a").score == 0  # one "word" each
    assert score_texts(preds, refs, ["bleu"], bleu_tokenize="13a")["bleu"] == 0


def test_exact_match_strips_but_keeps_case():
    s = score_texts(["Paris ", " paris", "London"], ["Paris", "Paris", "London\n"], ["exact_match"])
    assert s["exact_match"] == pytest.approx(200 / 3)


def test_empty_predictions_score_zero():
    metrics = ["rouge1", "rouge2", "rougeL", "bleu", "chrf", "exact_match"]
    assert score_texts(["", ""], REFS, metrics) == dict.fromkeys(metrics, 0)


def test_returns_the_metrics_asked_in_order():
    assert list(score_texts(PREDS, REFS, ["chrf", "rougeL"])) == ["chrf", "rougeL"]


@pytest.mark.parametrize("preds, refs, metrics, match", [
    (["a"], ["a", "b"], ["rougeL"], "1 predictions for 2 references"),
    ([], [], ["rougeL"], "no rows"),
    (["a"], ["a"], ["meteor"], "unknown metrics"),
])
def test_bad_input_is_refused(preds, refs, metrics, match):
    with pytest.raises(ValueError, match=match):
        score_texts(preds, refs, metrics)


def test_perplexity():
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(7.0)) == pytest.approx(7.0)
    assert perplexity(1e6) == math.inf


def test_kinds_and_their_metrics():
    assert kind_of_dataset("bbc-headlines") == "headline"
    assert kind_of_dataset("bible-en-fr") == "translation"
    assert kind_of_dataset("data/my_pairs.jsonl") == "general"
    assert pick_metrics("translation") == ["bleu", "chrf"]
    assert pick_metrics("general") == ["rougeL", "chrf", "exact_match"]
    pick_metrics("headline").append("bleu")  # a copy: the table itself stays as it is
    assert METRICS_BY_KIND["headline"] == ["rougeL", "rouge1", "rouge2"]
    with pytest.raises(ValueError, match="unknown kind"):
        pick_metrics("poetry")


def test_first_words_of_the_first_paragraph():
    article = "\n  \nShares in  Acme rose\tsharply today as the firm beat forecasts\n\nSecond paragraph."
    assert first_words(article) == "Shares in Acme rose sharply today as the"
    assert first_words(article, 3) == "Shares in Acme"
    assert first_words("Short lead.\nNext line") == "Short lead."
    assert first_words(" \n ") == ""


def test_task_baselines():
    name, fn = task_baseline("headline")
    assert name == "first 8 words" and fn("a b c d e f g h i j") == "a b c d e f g h"
    name, fn = task_baseline("translation")
    assert name == "source copied" and fn is copy_source
    assert copy_source("  In the beginning\n") == "In the beginning"
    assert task_baseline("general") is None
    with pytest.raises(ValueError, match="unknown kind"):
        task_baseline("poetry")


def test_headline_baseline_scores_the_lead_against_the_headline():
    article = "Acme profits jumped 20% in the last quarter on strong phone sales, the firm said.\nMore."
    # stemmed: acme profit jump 20 in the last quarter vs acme profit jump on phone sale: 3 shared, F = 2*3 / (8+6)
    s = score_texts([first_words(article)], ["Acme profits jump on phone sales"], ["rouge1"])
    assert s["rouge1"] == pytest.approx(100 * 6 / 14)
