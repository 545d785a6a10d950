"""Does a base model's tokenizer know the words of the data? A base trained on another language splits
most words into sub-word pieces (or unknown tokens), and LoRA on it learns far less than it could.

The measure: the share of the data's words (letters only, three or more) that the tokenizer keeps
whole as one known token, and the share of all tokens that are the unknown token. English text on an
English base keeps most words whole; other languages and scripts keep few (benchmarks/README.md,
Measurements behind the code, has the figures the thresholds come from).
"""

import re

WORD = re.compile(r"[^\W\d_]{3,}")
MIN_KNOWN_WORDS = 0.7
MAX_UNKNOWN_TOKENS = 0.05
MULTILINGUAL = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"


def vocabulary_fit(tokenizer, texts: list[str], sample: int = 2000) -> dict:
    """{"known_words", "unknown_tokens", "words"} over the first ``sample`` texts."""
    texts = texts[:sample]
    words = [w for t in texts for w in WORD.findall(t)]
    if not words:
        return {"known_words": 1.0, "unknown_tokens": 0.0, "words": 0}
    unk = tokenizer.unk_token_id
    whole = sum(len(ids) == 1 and ids[0] != unk for ids in tokenizer(words, add_special_tokens=False)["input_ids"])
    pieces = [i for ids in tokenizer(texts, add_special_tokens=False)["input_ids"] for i in ids]
    unknown = sum(i == unk for i in pieces) / len(pieces) if unk is not None and pieces else 0.0
    return {"known_words": whole / len(words), "unknown_tokens": unknown, "words": len(words)}


def fit_warning(fit: dict, base: str) -> str | None:
    """One line when the data looks foreign to the base, naming what to use instead; None when it fits."""
    if fit["words"] == 0 or (fit["known_words"] >= MIN_KNOWN_WORDS and fit["unknown_tokens"] <= MAX_UNKNOWN_TOKENS):
        return None
    return (f"the base model {base} knows few of these texts' words: it keeps {fit['known_words']:.0%} of them whole "
            f"and {fit['unknown_tokens']:.1%} of the tokens are unknown (English tweets and news on an English base: "
            f"79-94%, under 1%); it may be the wrong language for this data. A multilingual base fits better: "
            f"lorakit install {MULTILINGUAL} --name multilingual, then train with base=multilingual")
