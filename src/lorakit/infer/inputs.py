"""Texts to classify, read lazily from a .txt, .csv or .jsonl file (or any line stream).

Readers are generators, so a file of any size is classified with bounded memory; ``count``
makes one cheap pass first so that progress can show a total.
"""

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from lorakit.errors import LorakitError

SUFFIXES = (".txt", ".csv", ".jsonl")


def _open(path: Path) -> TextIO:
    return open(path, encoding="utf-8", errors="replace", newline="")


def lines(stream: TextIO) -> Iterator[str]:
    for line in stream:
        line = line.rstrip("\r\n")
        if line.strip():
            yield line


def _csv(path: Path, column: str) -> Iterator[str]:
    with _open(path) as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        if column not in columns:
            raise LorakitError(f"{path}: no column {column!r} (its columns: {', '.join(columns) or 'none'})",
                               "set --text-column to the one holding the texts")
        for row in reader:
            yield row[column] or ""


def _jsonl(path: Path, field: str) -> Iterator[str]:
    with _open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise LorakitError(f"{path}: line {n} is not valid JSON") from None
            if not isinstance(row, dict) or field not in row:
                fields = ", ".join(row) if isinstance(row, dict) else "none: not a JSON object"
                raise LorakitError(f"{path}: line {n} has no {field!r} field (its fields: {fields})",
                                   "set --text-column to the one holding the texts")
            text = row[field]
            if not isinstance(text, str):
                raise LorakitError(f"{path}: line {n}: {field!r} is not a string")
            yield text


def read_file(path: str | Path, column: str = "text") -> Iterator[str]:
    """Texts of a file, one at a time: .csv and .jsonl by column/field, anything else one per non-empty line."""
    path = Path(path)
    if not path.is_file():
        raise LorakitError(f"{path}: file not found", "give an existing .txt, .csv or .jsonl file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv(path, column)
    if suffix == ".jsonl":
        return _jsonl(path, column)

    def _txt():
        with _open(path) as f:
            yield from lines(f)
    return _txt()


def count(path: str | Path) -> int:
    """Number of texts in a file, without keeping them (csv: rows; others: non-empty lines)."""
    path = Path(path)
    with _open(path) as f:
        if path.suffix.lower() == ".csv":
            return max(0, sum(1 for row in csv.reader(f) if row) - 1)
        return sum(1 for line in f if line.strip())
