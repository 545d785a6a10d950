"""Classification data: the recipe's data section, labelled tables, stratified splits, label ids."""

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lorakit.data.args import DataArgs
from lorakit.data.builtin import BUILTIN, load_builtin
from lorakit.data.files import SUFFIXES, read_file
from lorakit.data.splits import make_splits
from lorakit.data.table import Table
from lorakit.errors import DataError


class ClassificationData(DataArgs):
    dataset: str = "tweets-sentiment"
    """Built-in dataset name (tweets-sentiment, bbc-news, imdb) or a .csv/.jsonl/.parquet file."""
    path: str | None = None
    """For imdb: the aclImdb/ folder or aclImdb_v1.tar.gz. Otherwise unused."""
    text_column: str = "text"
    """Column holding the text (files only)."""
    label_column: str = "label"
    """Column holding the label (files only)."""
    labels: list[str] | None = None
    """Allowed labels in order; other labels are bad rows. Default: the sorted labels found."""
    on_bad_rows: Literal["error", "skip"] = "error"
    """What to do with empty texts and missing or unknown labels: stop with their line numbers, or skip and count."""


def load_table(data: ClassificationData) -> Table:
    if data.dataset in BUILTIN:
        return load_builtin(data.dataset, data.path)
    path = Path(data.dataset).expanduser()
    if path.suffix.lower() in SUFFIXES or path.exists():
        return read_file(path, data.text_column, data.label_column, data.labels, data.on_bad_rows)
    raise DataError(f"unknown dataset {data.dataset!r}",
                    f"use a built-in one ({', '.join(BUILTIN)}) or a .csv/.jsonl/.parquet file")


@dataclass
class Splits:
    train: Table
    val: Table
    test: Table
    label_names: list[str]
    skipped: int = 0


def label_ids(table: Table, label_names: list[str]) -> list[int]:
    index = {name: i for i, name in enumerate(label_names)}
    return [index[label] for label in table.labels]


def prepare(data: ClassificationData) -> Splits:
    table = load_table(data)
    skipped = table.skipped
    test_labels = table.test.labels if table.test is not None else None
    names = data.labels or sorted(set(table.labels) | set(test_labels or []))
    unknown = (set(table.labels) | set(test_labels or [])) - set(names)
    if unknown:  # only reachable for built-in datasets restricted with data.labels
        keep = [i for i, label in enumerate(table.labels) if label in names]
        table = table.subset(keep)
        if table.test is not None:
            table.test = table.test.subset([i for i, label in enumerate(test_labels) if label in names])
            test_labels = table.test.labels
    if len(names) < 2:
        raise DataError(f"{table.source}: only one label ({names[0]!r}) found", "a classifier needs at least two labels")
    idx = make_splits(table.labels, test_labels, data)
    test_table = table.test if table.test is not None else table
    return Splits(table.subset(idx["train"]), table.subset(idx["val"]), test_table.subset(idx["test"]),
                  names, skipped)
