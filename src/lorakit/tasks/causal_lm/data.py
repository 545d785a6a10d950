"""Causal-LM data: the recipe's data section, generation rows from built-in datasets and files, splits."""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from lorakit.data.args import DataArgs
from lorakit.data.builtin_generation import (BUILTIN_GENERATION, bbc_headlines, bbc_splits, bible_en_fr,
                                             chapter_splits, default_template)
from lorakit.data.files import SUFFIXES
from lorakit.data.rows import Rows
from lorakit.data.rows_files import read_generation_file
from lorakit.data.splits import make_splits
from lorakit.errors import DataError


class CausalLMData(DataArgs):
    dataset: str = "bbc-headlines"
    """Built-in dataset (bbc-headlines: article -> headline; bible-en-fr: verse translation) or a
    .jsonl/.json/.csv/.parquet file."""
    format: Literal["auto", "prompt-completion", "messages", "alpaca", "text", "source-target"] = "auto"
    """How a file's rows read. auto: the first format whose columns the first row has, in the order
    messages, prompt + completion, instruction + output (alpaca), source + target, text."""
    direction: Literal["en-fr", "fr-en"] = "en-fr"
    """bible-en-fr only: English -> French, or French -> English."""
    prompt_column: str = "prompt"
    """Column holding the prompt (prompt-completion files)."""
    completion_column: str = "completion"
    """Column holding the completion the model learns to write (prompt-completion files)."""
    messages_column: str = "messages"
    """Column holding a chat: a list of {role, content}, or that list as JSON text (messages files)."""
    text_column: str = "text"
    """Column holding plain text (text files)."""
    source_column: str = "source"
    """Column holding the input put into data.prompt_template (source-target files; optional in
    prompt-completion files, where it is the raw input that baselines read)."""
    target_column: str = "target"
    """Column holding the output for a source (source-target files)."""
    instruction_column: str = "instruction"
    """Column holding the instruction (alpaca files)."""
    input_column: str = "input"
    """Column holding the optional input, appended to the instruction after a blank line (alpaca files)."""
    output_column: str = "output"
    """Column holding the answer (alpaca files)."""
    prompt_template: str | None = None
    """The prompt made from a source, with "{source}" where it goes (source-target files and the
    built-in datasets). Default: bbc-headlines "Write a short headline for this news article.\\n\\n{source}",
    bible-en-fr "Translate English to French:\\n{source}" (or French to English), files "{source}"."""
    template: Literal["auto", "chat", "plain"] = "auto"
    """How a row becomes the model's text: chat (the base's chat template; a prompt is a user turn, its
    completion the assistant's answer), plain (the prompt, then the completion and the end-of-text token),
    or auto (chat when the tokenizer has a chat template)."""
    train_on_prompt: bool = False
    """Take the loss on the prompt's tokens too, not only on the completion's."""
    packing: bool = False
    """Put several short examples in one row of a training batch (attention kept within each example,
    positions restarted) instead of padding each to the batch's longest: see docs/generation.md for
    what it measured."""
    on_bad_rows: Literal["error", "skip"] = "error"
    """What to do with rows that cannot be trained on (empty completion, unknown chat role, ...): stop with
    their line numbers, or skip and count them."""
    test_fraction: float = Field(0.1, gt=0, lt=1)
    """Held-out test share (files and bbc-headlines; bible-en-fr holds out 500 verses)."""
    val_fraction: float = Field(0.1111, gt=0, lt=1)
    """Validation share of what remains after the test split: 0.1111 of 0.9 makes the splits 80/10/10
    (bible-en-fr: 500 verses)."""
    max_length: int = Field(512, ge=8, le=8192)
    """Rows are truncated to this many tokens (prompt and completion together)."""

    @field_validator("prompt_template")
    @classmethod
    def _has_source(cls, v: str | None) -> str | None:
        if v is not None and "{source}" not in v:
            raise ValueError("must contain {source}")  # the config error puts the key (data.prompt_template) first
        return v


@dataclass
class Splits:
    train: Rows
    val: Rows
    test: Rows
    skipped: int = 0


def _columns(data: CausalLMData) -> dict[str, str]:
    roles = ("prompt", "completion", "messages", "text", "source", "target", "instruction", "input", "output")
    return {r: getattr(data, f"{r}_column") for r in roles}


def load_rows(data: CausalLMData) -> Rows:
    template = data.prompt_template or default_template(data.dataset, data.direction)
    if data.dataset == "bbc-headlines":
        return bbc_headlines(template)
    if data.dataset == "bible-en-fr":
        return bible_en_fr(data.direction, template)
    path = Path(data.dataset).expanduser()
    if path.suffix.lower() in SUFFIXES or path.exists():
        return read_generation_file(path, data.format, _columns(data), template, data.on_bad_rows)
    raise DataError(f"unknown dataset {data.dataset!r}",
                    f"use a built-in one ({', '.join(BUILTIN_GENERATION)}) or a .jsonl/.json/.csv/.parquet file")


def _check_size(rows: Rows, data: CausalLMData) -> None:
    """Every split must get a row (sizes as scikit-learn rounds them: held-out shares round up)."""
    test = math.ceil(data.test_fraction * len(rows))
    val = math.ceil(data.val_fraction * (len(rows) - test))
    if len(rows) - test - val < 1 or len(rows) - test < 2:
        raise DataError(f"{rows.source}: {len(rows)} usable row{'s' * (len(rows) != 1)}, too few for "
                        f"train / validation / test splits",
                        "add rows, or lower data.test_fraction and data.val_fraction")


def file_splits(rows: Rows, data: CausalLMData) -> dict[str, list[int]]:
    """Random, seeded splits (a file's rows have no groups): make_splits with one label for every row."""
    _check_size(rows, data)
    return make_splits(["all"] * len(rows), None, data)


def prepare(data: CausalLMData) -> Splits:
    rows = load_rows(data)
    if data.dataset == "bbc-headlines":
        idx = bbc_splits(rows, data)
    elif data.dataset == "bible-en-fr":
        idx = chapter_splits(rows, data)
    else:
        idx = file_splits(rows, data)
    return Splits(rows.subset(idx["train"]), rows.subset(idx["val"]), rows.subset(idx["test"]), rows.skipped)
