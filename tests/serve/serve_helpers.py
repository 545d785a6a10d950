"""Helpers of the serving tests: tiny adapters that disagree on purpose, and installing one into the store.

``plain`` learns the synthetic labels; ``flipped`` learns them with positive and negative swapped,
so a mixed batch shows at a glance whether each row went through its own adapter;
``binary`` has two labels, so it lives in a second pool of the engine.
"""

from pathlib import Path

from helpers import synthetic_rows, tiny_overrides, write_csv

FLIP = {"positive": "negative", "negative": "positive", "neutral": "neutral"}


def train_tiny(root: Path, base: Path, name: str, flip: bool = False, two_labels: bool = False, **extra) -> Path:
    from lorakit.training.loop import train

    rows = synthetic_rows(600, seed=1)
    if flip:
        rows = [(t, FLIP[label]) for t, label in rows]
    if two_labels:
        rows = [(t, label) for t, label in rows if label != "neutral"]
    csv_path = write_csv(root / f"{name}.csv", rows)
    m = train(overrides=tiny_overrides(root / "runs", csv_path, base, name=name, **extra), show_progress=False)
    return Path(m["run"])


def install_adapter(run: Path, name: str) -> Path:
    """Put a run's adapter into the (per-test) store the way an installed adapter is laid out."""
    import shutil

    from lorakit.store.layout import entry_dir

    dest = entry_dir("adapters", name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run / "adapter", dest)
    return dest
