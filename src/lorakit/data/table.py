"""The in-memory form of a labelled dataset: parallel lists, with the source line of every row."""

import hashlib
from dataclasses import dataclass, field


@dataclass
class Table:
    texts: list[str]
    labels: list[str]
    source: str
    lines: list[int] = field(default_factory=list)  # 1-based line (or file) numbers, for error messages
    test: "Table | None" = None                     # an official test split, where the dataset has one
    skipped: int = 0                                # bad rows dropped with on_bad_rows: skip

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: list[int]) -> "Table":
        return Table([self.texts[i] for i in idx], [self.labels[i] for i in idx], self.source,
                     [self.lines[i] for i in idx] if self.lines else [])

    def records(self) -> list[dict]:
        """The rows as JSON-able dicts (a run's data/*.jsonl)."""
        return [{"text": t, "label": y} for t, y in zip(self.texts, self.labels)]

    def fingerprint(self) -> str:
        """Of the rows in order: a resumed run must see the same data."""
        h = hashlib.sha256()
        for t, y in zip(self.texts, self.labels):
            h.update(t.encode("utf-8", "surrogatepass") + b"\0" + y.encode() + b"\1")
        return h.hexdigest()
