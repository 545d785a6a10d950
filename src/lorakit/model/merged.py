"""A merged model folder written by ``lorakit merge`` or ``lorakit export``: plain weights (fp32
safetensors, or lorakit's int8 file) with a record of the adapter that was merged in."""

import json
from dataclasses import dataclass
from pathlib import Path

MERGE_RECORD = "lorakit-merge.json"
INT8_WEIGHTS = "model.int8.safetensors"


@dataclass(frozen=True)
class MergedInfo:
    path: Path
    task: str
    labels: list[str]
    max_length: int
    int8: bool      # weights in lorakit's int8 file rather than model.safetensors


def read_merged(path: str | Path) -> MergedInfo | None:
    """The merged model in ``path``, or None when ``path`` is not a folder written by merge or export."""
    path = Path(path).expanduser()
    record, labels = path / MERGE_RECORD, path / "labels.json"
    if not (path / "config.json").is_file() or not record.is_file() or not labels.is_file():
        return None
    adapter = json.loads(record.read_text())["adapter"]
    return MergedInfo(path, str(adapter.get("task") or "classification"), json.loads(labels.read_text()),
                      int(adapter.get("max_length") or 512), (path / INT8_WEIGHTS).is_file())
