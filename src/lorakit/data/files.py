"""Read labelled rows from .csv, .jsonl and .parquet files; find and report bad rows."""

import csv
import json
from pathlib import Path

from lorakit.errors import DataError
from lorakit.data.table import Table

SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")


def _csv_rows(path: Path):
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            raise DataError(f"{path}: empty file")
        line = reader.line_num
        for row in reader:
            yield line + 1, row  # the row starts on the line after the previous row ended
            line = reader.line_num


def _jsonl_rows(path: Path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError:
                yield n, None
                continue
            yield n, row if isinstance(row, dict) else None


def _parquet_rows(path: Path, columns: list[str] | None):
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a broken file
        raise DataError(f"{path}: not a readable parquet file ({str(e).splitlines()[0]})") from None
    columns = table.column_names if columns is None else columns
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: no column {missing[0]!r}", f"columns are: {', '.join(table.column_names)}")
    cols = [table.column(c).to_pylist() for c in columns]
    for n, values in enumerate(zip(*cols), 1):
        yield n, dict(zip(columns, values))


def file_rows(path: Path, parquet_columns: list[str] | None = None):
    """(line number, row dict or None for an unreadable row) of every row of a .csv, .jsonl/.json or .parquet
    file (a parquet file's ``parquet_columns`` only, when given: it stores them apart)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(path)
    if suffix in (".jsonl", ".json"):
        return _jsonl_rows(path)
    if suffix == ".parquet":
        return _parquet_rows(path, parquet_columns)
    raise DataError(f"{path}: unsupported file type {suffix!r}", f"use one of {', '.join(SUFFIXES)}")


def read_file(path: Path, text_column: str, label_column: str,
              labels: list[str] | None, on_bad_rows: str) -> Table:
    """Rows with an empty text, a missing label or a label outside ``labels`` are bad rows."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    rows = file_rows(path, [text_column, label_column])

    allowed = set(labels) if labels else None
    texts, out_labels, lines, bad = [], [], [], []
    checked_columns = False
    for line, row in rows:
        if row is None:
            bad.append((line, "not a JSON object"))
            continue
        if not checked_columns and suffix == ".csv":
            missing = [c for c in (text_column, label_column) if c not in row]
            if missing:
                raise DataError(f"{path}: no column {missing[0]!r}",
                                f"columns are: {', '.join(row)}; set data.text_column / data.label_column")
            checked_columns = True
        text, label = row.get(text_column), row.get(label_column)
        label = None if label is None else str(label).strip()
        if not isinstance(text, str) or not text.strip():
            bad.append((line, "empty text"))
        elif not label:
            bad.append((line, "missing label"))
        elif allowed is not None and label not in allowed:
            bad.append((line, f"unknown label {label!r}"))
        else:
            texts.append(text)
            out_labels.append(label)
            lines.append(line)
    if bad and on_bad_rows == "error":
        shown = "; ".join(f"line {n}: {why}" for n, why in bad[:5])
        more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise DataError(f"{path}: {len(bad)} bad row{'s' * (len(bad) > 1)} ({shown}{more})",
                        "fix them, or set data.on_bad_rows=skip to skip and count them")
    if not texts:
        raise DataError(f"{path}: no usable rows", f"check data.text_column={text_column!r} and data.label_column={label_column!r}")
    return Table(texts, out_labels, str(path), lines, skipped=len(bad))
