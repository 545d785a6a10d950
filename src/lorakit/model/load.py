"""Load a base model and its tokenizer with the class a task asks for, quietly."""

import logging
import warnings

import torch
from transformers import AutoTokenizer
from transformers.utils import logging as hf_logging


def quiet_transformers() -> None:
    """The expected 'classifier newly initialised' report and load bars are noise for our users."""
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("peft").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")


def load_pretrained(auto_class, base_dir, **kwargs):
    """(model, tokenizer) of ``base_dir``: ``auto_class.from_pretrained`` in fp32, with the task's kwargs."""
    quiet_transformers()
    model = auto_class.from_pretrained(base_dir, dtype=torch.float32, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    return model, tokenizer


def readable_length(model, tokenizer) -> int | None:
    """The most tokens one text can have for ``model``: its position table or its tokenizer's
    stated limit, whichever is smaller (None when neither says)."""
    limits = [n for n in (getattr(model.config, "max_position_embeddings", None), tokenizer.model_max_length)
              if isinstance(n, int) and n < 1_000_000]  # tokenizers without a limit say 1e30
    return min(limits) if limits else None
