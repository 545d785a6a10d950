"""Task baselines for generation: what a model's output has to beat without any learning.

A headline model must do better than the article's opening words (news leads restate the
headline); a translation model must do better than the untranslated source (names, numbers and
shared words score a little BLEU and chrF on their own).
"""

from collections.abc import Callable


def first_words(source: str, n: int = 8) -> str:
    """The first ``n`` whitespace-separated words of the first non-empty line of ``source``."""
    for line in source.splitlines():
        if line.strip():
            return " ".join(line.split()[:n])
    return ""


def copy_source(source: str) -> str:
    """The source itself, untranslated."""
    return source.strip()


BASELINES: dict[str, tuple[str, Callable[[str], str]] | None] = {
    "headline": ("first 8 words", first_words),
    "translation": ("source copied", copy_source),
    "general": None,  # a user's task has no baseline everyone would agree on
}


def task_baseline(kind: str) -> tuple[str, Callable[[str], str]] | None:
    """(the baseline's name, source -> output) for a kind of dataset, or None when it has none."""
    if kind not in BASELINES:
        raise ValueError(f"unknown kind of dataset {kind!r}; known: {', '.join(BASELINES)}")
    return BASELINES[kind]
