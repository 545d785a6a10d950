"""The classification model: a sequence classifier with a fresh head over the base, and its merged form.

(torch and transformers are imported where a model is built: merging reads this module without them.)
"""

import re

from lorakit.errors import LorakitError

# Attention and feed-forward projections per architecture ('auto' target modules).
TARGET_PRESETS = {
    "bert": ["query", "key", "value", "dense"],
    "roberta": ["query", "key", "value", "dense"],
    "xlm-roberta": ["query", "key", "value", "dense"],
    "electra": ["query", "key", "value", "dense"],
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"],
    "deberta-v2": ["query_proj", "key_proj", "value_proj", "dense"],
}


def load_classifier(base_dir, labels: list[str]):
    """(model, tokenizer): the base with a classifier head for ``labels`` (new, unless the base has one)."""
    from transformers import AutoModelForSequenceClassification

    from lorakit.model.load import load_pretrained

    return load_pretrained(AutoModelForSequenceClassification, base_dir, num_labels=len(labels),
                           id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)})


def classifier_architecture(config: dict) -> str:
    """BertModel / BertForMaskedLM -> BertForSequenceClassification (transformers' naming rule)."""
    arch = (config.get("architectures") or [""])[0]
    m = re.match(r"^(.+?)(Model|LMHeadModel|For[A-Z]\w*)$", arch)
    if not m:
        raise LorakitError(f"base config.json names no architecture ({arch!r})", "add 'architectures' to config.json")
    return m[1] + "ForSequenceClassification"


def merged_config(config: dict, labels: list[str]) -> dict:
    out = dict(config, architectures=[classifier_architecture(config)],
               id2label={str(i): n for i, n in enumerate(labels)}, label2id={n: i for i, n in enumerate(labels)})
    out.pop("num_labels", None)
    return out
