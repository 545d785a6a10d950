"""The in-memory form of a generation dataset: one dict per example, with the source line of each."""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Rows:
    """Generation examples, one dict per row, each one of three shapes:
       {"prompt": str, "completion": str, "source": str (optional: the raw input, for baselines and reports)}
       {"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}   (chat; trained on assistant turns)
       {"text": str}                                                              (plain text: continued pretraining)
    """
    rows: list[dict]
    source: str                       # where they came from (file path, pip:...)
    lines: list[int]                  # 1-based line / file number of each row, for error messages
    groups: list[str] | None = None   # a group per row for stratified splits (bbc category, bible book:chapter)
    skipped: int = 0                  # bad rows skipped (on_bad_rows: skip)

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, idx: list[int]) -> "Rows":
        return Rows([self.rows[i] for i in idx], self.source, [self.lines[i] for i in idx],
                    None if self.groups is None else [self.groups[i] for i in idx])

    @property
    def texts(self) -> list[str]:
        """All the text of each row joined (vocabulary checks). ``source`` is left out: the prompt holds it."""
        return [_row_text(r) for r in self.rows]

    def records(self) -> list[dict]:
        """The rows as JSON-able dicts (a run's data/val.jsonl and data/test.jsonl)."""
        return [dict(r) for r in self.rows]

    def fingerprint(self) -> str:
        """Of the rows in order: a resumed run must see the same data."""
        h = hashlib.sha256()
        for record in self.records():
            # sort_keys: the same row built with its keys in another order is the same row
            h.update(json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8", "surrogatepass") + b"\n")
        return h.hexdigest()


def _row_text(row: dict) -> str:
    if "messages" in row:
        return "\n".join(m["content"] for m in row["messages"])
    if "text" in row:
        return row["text"]
    return row["prompt"] + "\n" + row["completion"]


def read_rows(path: Path) -> Rows:
    """Rows written by ``lorakit.data.write_split`` (a run's saved splits)."""
    rows, lines = [], []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            if raw.strip():
                rows.append(json.loads(raw))
                lines.append(n)
    return Rows(rows, str(path), lines)
