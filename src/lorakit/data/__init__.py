"""Datasets: built-in ones and user files read into tables, seeded splits, the splits saved into a run."""

import json
from pathlib import Path

from lorakit.data.table import Table


def write_split(table, path: Path) -> None:
    """A split's rows (a Table's or Rows', see their ``records``) as JSON lines."""
    with open(path, "w", encoding="utf-8") as f:
        for record in table.records():
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_split(path: Path) -> Table:
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(row["label"])
    return Table(texts, labels, str(path), list(range(1, len(texts) + 1)))
