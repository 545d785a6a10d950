"""Trained tiny runs shared by the export tests (training once per method keeps the suite fast)."""

from pathlib import Path

import pytest

from helpers import synthetic_rows, tiny_overrides, write_csv


@pytest.fixture(scope="session")
def trained(tmp_path_factory, tiny_model_dir):
    """``trained(method, seed=..., r=...)`` -> a run folder of the tiny model, trained once per arguments."""
    from lorakit.training.loop import train

    root = tmp_path_factory.mktemp("export-runs")
    csv = write_csv(root / "synthetic.csv", synthetic_rows(300))
    cache: dict[tuple, Path] = {}

    def get(method: str = "lora", seed: int = 0, r: int = 4) -> Path:
        key = (method, seed, r)
        if key not in cache:
            name = f"{method}-s{seed}-r{r}"
            o = tiny_overrides(root / "runs", csv, tiny_model_dir, name=name, **{
                "lora.method": method, "train.seed": seed, "lora.r": r, "train.epochs": 4, "train.lr": 0.01})
            cache[key] = Path(train(overrides=o, show_progress=False)["run"])
        return cache[key]

    return get

