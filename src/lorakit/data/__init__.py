"""Datasets: load (built-in or file), split (stratified, seeded), save the splits into the run."""

import json
from dataclasses import dataclass
from pathlib import Path

from lorakit.data.builtin import BUILTIN, load_builtin
from lorakit.data.files import SUFFIXES, read_file
from lorakit.data.splits import make_splits
from lorakit.data.table import Table
from lorakit.errors import DataError


def load_table(data) -> Table:
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

    def ids(self, table: Table) -> list[int]:
        index = {name: i for i, name in enumerate(self.label_names)}
        return [index[label] for label in table.labels]


def prepare(data) -> Splits:
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


def write_split(table: Table, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for text, label in zip(table.texts, table.labels):
            f.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")


def read_split(path: Path) -> Table:
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(row["label"])
    return Table(texts, labels, str(path), list(range(1, len(texts) + 1)))
